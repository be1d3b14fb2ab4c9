/* Staging, publishing and checking a pack release folder (see release.h); the
 * archive itself is written by release_archive.c. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"
#include "ctl/release.h"
#include "ctl/release_archive.h"
#include "mq/envelope.h"

#define COPY_CHUNK 65536

struct file_list {
    struct release_file *items;
    size_t len;
};

static void file_list_free(struct file_list *l)
{
    for (size_t i = 0; i < l->len; i++) {
        free(l->items[i].path);
        free(l->items[i].full);
    }
    free(l->items);
    l->items = NULL;
    l->len = 0;
}

static int sys_error(char *err, size_t errlen, const char *what, const char *path)
{
    int code = errno ? errno : EIO;
    return set_error(err, errlen, code, "cannot %s %s: %s", what, path, strerror(code));
}

/* Streams fd into a SHA-256; the file's size comes back in *size. */
static int sha256_fd(int fd, char hex[65], uint64_t *size)
{
    unsigned char buf[COPY_CHUNK], md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
    ssize_t n;
    *size = 0;
    while (ok && (n = read(fd, buf, sizeof(buf))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        ok = n > 0 && EVP_DigestUpdate(ctx, buf, (size_t)n) == 1;
        *size += n > 0 ? (uint64_t)n : 0;
    }
    ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32;
    EVP_MD_CTX_free(ctx);
    if (ok)
        release_hex(md, hex);
    return ok ? 0 : -EIO;
}

static int sha256_path(const char *path, char hex[65], uint64_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    int rc = sha256_fd(fd, hex, size);
    close(fd);
    return rc;
}

/* A copy with the source's permission bits, as Rust's fs::copy makes. */
static int copy_file(const char *src, const char *dst, mode_t mode, char *err, size_t errlen)
{
    char buf[COPY_CHUNK];
    int in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (in < 0)
        return sys_error(err, errlen, "read", src);
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int rc = out < 0 ? sys_error(err, errlen, "create", dst) : 0;
    ssize_t n;
    while (rc == 0 && (n = read(in, buf, sizeof(buf))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || write_all(out, buf, (size_t)n) < 0)
            rc = sys_error(err, errlen, "copy", src);
    }
    if (rc == 0 && fchmod(out, mode & 0777) < 0)
        rc = sys_error(err, errlen, "set the mode of", dst);
    if (out >= 0)
        close(out);
    close(in);
    return rc;
}

/* copy_release_tree: every entry but .git, at any depth; no links, no
 * special files. */
static int copy_tree(const char *src, const char *dst, char *err, size_t errlen)
{
    if (mkdir(dst, 0755) < 0)
        return sys_error(err, errlen, "create", dst);
    DIR *d = opendir(src);
    if (!d)
        return sys_error(err, errlen, "read", src);
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, ".git"))
            continue;
        char *s = xasprintf("%s/%s", src, e->d_name), *t = xasprintf("%s/%s", dst, e->d_name);
        struct stat st;
        if (lstat(s, &st) < 0)
            rc = sys_error(err, errlen, "inspect", s);
        else if (S_ISLNK(st.st_mode))
            rc =
                set_error(err, errlen, EINVAL, "%s: a pack release cannot hold a symbolic link", s);
        else if (S_ISDIR(st.st_mode))
            rc = copy_tree(s, t, err, errlen);
        else if (S_ISREG(st.st_mode))
            rc = copy_file(s, t, st.st_mode, err, errlen);
        else
            rc = set_error(err, errlen, EINVAL, "%s: a pack release cannot hold a special file", s);
        free(s);
        free(t);
    }
    closedir(d);
    return rc;
}

static bool utf8_ok(const char *s)
{
    struct strbuf sb;
    strbuf_init(&sb);
    utf8_sanitize(s, strlen(s), &sb);
    bool same = sb.len == strlen(s) && memcmp(sb.data, s, sb.len) == 0;
    strbuf_free(&sb);
    return same;
}

/* release_files: the regular files below root, by relative path. */
static int collect(const char *root, const char *rel, struct file_list *l, char *err, size_t errlen)
{
    char *dir = rel[0] ? xasprintf("%s/%s", root, rel) : xstrdup(root);
    DIR *d = opendir(dir);
    int rc = d ? 0 : sys_error(err, errlen, "read", dir);
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *path = rel[0] ? xasprintf("%s/%s", rel, e->d_name) : xstrdup(e->d_name);
        char *full = xasprintf("%s/%s", root, path);
        struct stat st;
        if (lstat(full, &st) < 0)
            rc = sys_error(err, errlen, "inspect", full);
        else if (S_ISLNK(st.st_mode))
            rc = set_error(err, errlen, EINVAL, "%s: a pack release cannot hold a symbolic link",
                           full);
        else if (S_ISDIR(st.st_mode))
            rc = collect(root, path, l, err, errlen);
        else if (S_ISREG(st.st_mode) && !utf8_ok(path))
            rc = set_error(err, errlen, EINVAL, "%s: a pack path must be UTF-8", full);
        if (rc == 0 && S_ISREG(st.st_mode)) {
            l->items = xrealloc(l->items, (l->len + 1) * sizeof(*l->items));
            struct release_file *f = &l->items[l->len++];
            *f = (struct release_file){.path = path, .full = full};
            f->executable = (st.st_mode & 0111) != 0;
            path = full = NULL;
        }
        free(path);
        free(full);
    }
    if (d)
        closedir(d);
    free(dir);
    return rc;
}

static int compare_files(const void *a, const void *b)
{
    return strcmp(((const struct release_file *)a)->path, ((const struct release_file *)b)->path);
}

/* build_release_manifest: each file's path, size, SHA-256 and execute bit. */
static int build_manifest(const char *root, const char *pack_ref, const char *version,
                          struct file_list *l, json_t **out, char *err, size_t errlen)
{
    int rc = collect(root, "", l, err, errlen);
    if (rc < 0)
        return rc;
    if (l->len > 1)
        qsort(l->items, l->len, sizeof(*l->items), compare_files);
    json_t *files = json_array();
    for (size_t i = 0; rc == 0 && i < l->len; i++) {
        struct release_file *f = &l->items[i];
        if (sha256_path(f->full, f->sha256, &f->size) < 0)
            rc = sys_error(err, errlen, "read", f->full);
        else
            json_array_append_new(files, json_pack("{s:s, s:I, s:s, s:b}", "path", f->path, "size",
                                                   (json_int_t)f->size, "sha256", f->sha256,
                                                   "executable", f->executable));
    }
    *out = json_pack("{s:i, s:s, s:s, s:o}", "format_version", 1, "pack_ref", pack_ref, "version",
                     version, "files", files);
    return rc;
}

static int make_read_only_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)ftw;
    mode_t mode = (type == FTW_DP || (st->st_mode & 0111)) ? 0555 : 0444;
    return chmod(path, mode) < 0 ? -1 : 0;
}

/* A real directory (not a link), created when missing: open to every user
 * whatever the umask, since actions run under other users read releases. */
static int real_dir(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (mkdir(path, 0755) == 0 ? chmod(path, 0755) < 0 : errno != EEXIST)
        return sys_error(err, errlen, "create", path);
    if (lstat(path, &st) < 0)
        return sys_error(err, errlen, "inspect", path);
    if (!S_ISDIR(st.st_mode))
        return set_error(err, errlen, ENOTDIR, "%s must be a real directory, not a link", path);
    return 0;
}

static int write_manifest_file(const char *path, const json_t *manifest, char *err, size_t errlen)
{
    char *text = json_dumps(manifest, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    int rc =
        fd < 0 || write_all(fd, text, strlen(text)) < 0 ? sys_error(err, errlen, "write", path) : 0;
    if (fd >= 0)
        close(fd);
    free(text);
    return rc;
}

static int stage(const char *releases, const char *source, const char *pack_ref,
                 const char *version, struct release *r, char *err, size_t errlen)
{
    char uuid[37];
    uuid_v4(uuid);
    r->staging = xasprintf("%s/.%s.staging", releases, uuid);
    if (mkdir(r->staging, 0755) < 0) {
        int rc = sys_error(err, errlen, "create", r->staging);
        free(r->staging);
        r->staging = NULL;
        return rc;
    }
    char *pack = xasprintf("%s/pack", r->staging);
    char *archive = xasprintf("%s/pack.tar.gz", r->staging);
    char *manifest = xasprintf("%s/manifest.json", r->staging);
    struct file_list files = {0};
    int rc = copy_tree(source, pack, err, errlen);
    if (rc == 0)
        rc = build_manifest(pack, pack_ref, version, &files, &r->manifest, err, errlen);
    int fd = rc == 0 ? open(archive, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644) : -1;
    if (rc == 0 && fd < 0)
        rc = sys_error(err, errlen, "create", archive);
    if (rc == 0)
        rc = release_archive_write(fd, pack_ref, files.items, files.len, r->digest,
                                   &r->archive_size, err, errlen);
    if (fd >= 0 && close(fd) < 0 && rc == 0)
        rc = sys_error(err, errlen, "write", archive);
    if (rc == 0)
        rc = write_manifest_file(manifest, r->manifest, err, errlen);
    file_list_free(&files);
    free(pack);
    free(archive);
    free(manifest);
    return rc;
}

int release_stage(const char *packs_base_dir, const char *source, const char *pack_ref,
                  const char *version, struct release *r, char *err, size_t errlen)
{
    char base[PATH_MAX];
    *r = (struct release){0};
    if (mkdir_p(packs_base_dir, 0755) < 0 || !realpath(packs_base_dir, base))
        return sys_error(err, errlen, "use packs_base_dir", packs_base_dir);
    char *releases = xasprintf("%s/.releases", base);
    char *sha256 = xasprintf("%s/sha256", releases);
    char *inside = xasprintf("%s/", source);
    int rc = 0;
    /* The copy would take in the releases themselves. */
    if (str_starts_with(releases, inside))
        rc = set_error(err, errlen, EINVAL,
                       "packs_base_dir %s is inside the pack folder %s; releases are kept in "
                       "packs_base_dir/.releases",
                       base, source);
    if (rc == 0)
        rc = real_dir(releases, err, errlen);
    if (rc == 0)
        rc = real_dir(sha256, err, errlen);
    if (rc == 0)
        rc = stage(releases, source, pack_ref, version, r, err, errlen);
    if (rc == 0) {
        r->dir = xasprintf("%s/%s", sha256, r->digest);
        r->content_path = xasprintf("%s/pack", r->dir);
        r->archive_path = xasprintf("%s/pack.tar.gz", r->dir);
    }
    free(releases);
    free(sha256);
    free(inside);
    return rc;
}

/* verify_published_release: the archive hashes to the digest, the manifest
 * names this pack and version, and the files are those it lists. */
static int verify_existing(const struct release *r, char *err, size_t errlen)
{
    char hex[65], *path = xasprintf("%s/manifest.json", r->dir);
    uint64_t size;
    const char *why = NULL;
    json_t *stored = json_load_file(path, 0, NULL), *found = NULL;
    struct file_list files = {0};
    char ignored[256];
    if (sha256_path(r->archive_path, hex, &size) < 0 || strcmp(hex, r->digest) != 0)
        why = "its pack.tar.gz does not match the digest";
    else if (!json_is_object(stored) ||
             !json_equal(json_object_get(stored, "pack_ref"),
                         json_object_get(r->manifest, "pack_ref")) ||
             !json_equal(json_object_get(stored, "version"),
                         json_object_get(r->manifest, "version")))
        why = "its manifest.json names another pack or version";
    else if (build_manifest(r->content_path, json_string_value(json_object_get(stored, "pack_ref")),
                            json_string_value(json_object_get(stored, "version")), &files, &found,
                            ignored, sizeof(ignored)) < 0 ||
             !json_equal(found, stored))
        why = "its files differ from its manifest.json";
    file_list_free(&files);
    json_decref(found);
    json_decref(stored);
    free(path);
    return why ? set_error(err, errlen, EEXIST, "the release folder %s is there but %s", r->dir,
                           why)
               : 0;
}

int release_publish(struct release *r, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(r->dir, &st) < 0 && rename(r->staging, r->dir) == 0) {
        free(r->staging);
        r->staging = NULL;
        if (nftw(r->dir, make_read_only_entry, 16, FTW_DEPTH | FTW_PHYS) < 0)
            return sys_error(err, errlen, "make read-only", r->dir);
        return 0;
    }
    /* There already, or put there meanwhile by another load. */
    if (lstat(r->dir, &st) < 0)
        return sys_error(err, errlen, "publish the release as", r->dir);
    r->existed = true;
    return verify_existing(r, err, errlen);
}

void release_free(struct release *r)
{
    if (r->staging)
        remove_tree(r->staging);
    free(r->staging);
    free(r->dir);
    free(r->content_path);
    free(r->archive_path);
    json_decref(r->manifest);
    *r = (struct release){0};
}
