/* Files and directories below a held directory descriptor (see fsat.h). */
#include "core/fsat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Deeper trees are left in place rather than holding a descriptor per level. */
#define FSAT_REMOVE_DEPTH_MAX 64

int fsat_dir_private(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    return st.st_uid == geteuid() && (st.st_mode & 022) == 0 ? 0 : -EPERM;
}

int fsat_mkdir_open(int dirfd, const char *name, mode_t mode, bool must_be_new)
{
    bool made = mkdirat(dirfd, name, mode) == 0;
    if (!made && (errno != EEXIST || must_be_new))
        return -errno;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOTDIR || errno == ELOOP ? -ENOTDIR : -errno;
    int rc = made ? 0 : fsat_dir_private(fd);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

int fsat_create(int dirfd, const char *name)
{
    /* O_EXCL with O_CREAT never follows a symlink nor opens a FIFO;
     * O_NONBLOCK and the type check are a second line. */
    int fd =
        openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = fstat(fd, &st) < 0 ? -errno : S_ISREG(st.st_mode) ? 0 : -EINVAL;
    if (rc == 0 && fcntl(fd, F_SETFL, 0) < 0)
        rc = -errno;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

int fsat_replace(int dirfd, const char *name, const void *data, size_t len)
{
    char *tmp = xasprintf(".%s.new", name);
    /* Whatever sits at the temporary name is removed as itself. */
    if (unlinkat(dirfd, tmp, 0) < 0 && errno != ENOENT && errno != EISDIR && errno != EPERM) {
        free(tmp);
        return -errno;
    }
    int fd = fsat_create(dirfd, tmp);
    int rc = fd < 0 ? fd : write_all(fd, data, len);
    if (fd >= 0 && close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
        rc = -errno;
    if (rc < 0 && fd >= 0)
        (void)unlinkat(dirfd, tmp, 0);
    free(tmp);
    return rc;
}

int fsat_read_fd(int fd, int64_t max, struct strbuf *out)
{
    char buf[65536];
    int64_t off = 0;
    while (off < max) {
        size_t want = max - off < (int64_t)sizeof(buf) ? (size_t)(max - off) : sizeof(buf);
        ssize_t n = pread(fd, buf, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        strbuf_append(out, buf, (size_t)n);
        off += n;
    }
    if (!out->data)
        strbuf_append(out, "", 0);
    return 0;
}

static int fsat_remove_at(int dirfd, const char *name, int depth);

/* Empties the directory open at fd (taken). */
static int fsat_empty_dir(int fd, int depth)
{
    DIR *dir = fdopendir(fd);
    if (!dir) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(dir))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        int r = fsat_remove_at(dirfd(dir), de->d_name, depth + 1);
        if (r < 0 && rc == 0)
            rc = r;
    }
    closedir(dir);
    return rc;
}

static int fsat_remove_at(int dirfd, const char *name, int depth)
{
    if (unlinkat(dirfd, name, 0) == 0)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return -errno;
    if (depth >= FSAT_REMOVE_DEPTH_MAX)
        return -ELOOP;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsat_empty_dir(fd, depth);
    if (rc == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0)
        rc = -errno;
    return rc;
}

int fsat_remove_tree(int dirfd, const char *name)
{
    return fsat_remove_at(dirfd, name, 0);
}
