/* The pack.tar.gz of a release, by Attune's rule (write_deterministic_archive in
 * crates/common/src/pack_registry/storage.rs@03eeaa5b): the tar crate's GNU
 * headers (mode 0755 or 0644, uid, gid and mtime 0, type byte left NUL), a GNU
 * long-name entry before a name over 100 bytes, two zero blocks at the end; then
 * gzip with mtime 0, XFL 2 and OS 255 at level 9, as flate2's GzBuilder. */
#define ZLIB_CONST
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "core/util.h"
#include "ctl/release_archive.h"

#define BLOCK 512
#define CHUNK 65536
#define NAME_MAX_BYTES 100

struct gz {
    int fd;
    z_stream zs;
    EVP_MD_CTX *md;
    uLong crc;
    uint64_t in;  /* uncompressed bytes; the trailer keeps them mod 2^32 */
    uint64_t out; /* bytes written to fd */
    unsigned char buf[CHUNK];
};

void release_hex(const unsigned char md[32], char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int sink(struct gz *g, const void *data, size_t len)
{
    int rc = write_all(g->fd, data, len);
    if (rc == 0 && EVP_DigestUpdate(g->md, data, len) != 1)
        rc = -EIO;
    g->out += len;
    return rc;
}

/* Runs deflate over the pending input and writes what it produces. */
static int pump(struct gz *g, int flush)
{
    int zrc;
    do {
        g->zs.next_out = g->buf;
        g->zs.avail_out = sizeof(g->buf);
        zrc = deflate(&g->zs, flush);
        if (zrc == Z_STREAM_ERROR)
            return -EIO;
        size_t n = sizeof(g->buf) - g->zs.avail_out;
        if (n > 0 && sink(g, g->buf, n) < 0)
            return -EIO;
    } while (g->zs.avail_out == 0 || (flush == Z_FINISH && zrc != Z_STREAM_END));
    return 0;
}

static int gz_write(struct gz *g, const void *data, size_t len)
{
    g->crc = crc32(g->crc, data, (uInt)len);
    g->in += len;
    g->zs.next_in = data;
    g->zs.avail_in = (uInt)len;
    return pump(g, Z_NO_FLUSH);
}

static int gz_zeros(struct gz *g, size_t len)
{
    static const unsigned char zeros[2 * BLOCK];
    return gz_write(g, zeros, len);
}

static int gz_finish(struct gz *g)
{
    unsigned char trailer[8];
    if (pump(g, Z_FINISH) < 0)
        return -EIO;
    for (int i = 0; i < 4; i++) {
        trailer[i] = (unsigned char)(g->crc >> (8 * i));
        trailer[4 + i] = (unsigned char)(g->in >> (8 * i));
    }
    return sink(g, trailer, sizeof(trailer));
}

/* width-1 octal digits, zero-padded; the field's last byte stays NUL. */
static void octal(unsigned char *field, size_t width, uint64_t value)
{
    for (size_t i = width - 1; i-- > 0; value >>= 3)
        field[i] = (unsigned char)('0' + (value & 7));
}

/* The tar crate's numeric fields: binary (high bit set) past what octal holds. */
static void number(unsigned char *field, size_t width, uint64_t value)
{
    if (value >= 8589934592ULL || (value >= 2097152 && width == 8)) {
        memset(field, 0, width);
        for (size_t i = 0; i < 8; i++)
            field[width - 1 - i] = (unsigned char)(value >> (8 * i));
        field[0] |= 0x80;
    } else {
        octal(field, width, value);
    }
}

static void header_init(unsigned char h[BLOCK], uint64_t size, unsigned mode, char type)
{
    memset(h, 0, BLOCK);
    memcpy(h + 257, "ustar ", 6); /* GNU magic, then version " \0" */
    h[263] = ' ';
    octal(h + 100, 8, mode);
    number(h + 108, 8, 0);
    number(h + 116, 8, 0);
    number(h + 124, 12, size);
    number(h + 136, 12, 0);
    h[156] = (unsigned char)type;
}

static void header_checksum(unsigned char h[BLOCK])
{
    uint64_t sum = 8 * ' '; /* the checksum field counts as spaces */
    for (size_t i = 0; i < BLOCK; i++)
        if (i < 148 || i >= 156)
            sum += h[i];
    octal(h + 148, 8, sum);
}

static int write_padding(struct gz *g, uint64_t size)
{
    size_t pad = (size_t)((BLOCK - size % BLOCK) % BLOCK);
    return pad ? gz_zeros(g, pad) : 0;
}

/* A name over 100 bytes: a "././@LongLink" entry holding it, then the header
 * keeps its first 100 bytes, cut back to whole UTF-8 characters and read as a
 * path (so a trailing "/." component drops out). */
static int write_long_name(struct gz *g, const char *name, size_t len, unsigned char h[BLOCK])
{
    unsigned char link[BLOCK];
    header_init(link, len + 1, 0644, 'L');
    memcpy(link, "././@LongLink", 13);
    header_checksum(link);
    int rc = gz_write(g, link, BLOCK);
    if (rc == 0)
        rc = gz_write(g, name, len + 1);
    if (rc == 0)
        rc = write_padding(g, len + 1);
    size_t cut = NAME_MAX_BYTES;
    while (cut > 0 && ((unsigned char)name[cut] & 0xC0) == 0x80)
        cut--;
    if (cut >= 2 && name[cut - 1] == '.' && name[cut - 2] == '/')
        cut -= 2;
    memcpy(h, name, cut);
    return rc;
}

static int write_file(struct gz *g, const char *pack_ref, const struct release_file *f, char *err,
                      size_t errlen)
{
    unsigned char h[BLOCK], buf[CHUNK];
    char *name = xasprintf("%s/%s", pack_ref, f->path);
    size_t len = strlen(name);
    int rc = 0;
    header_init(h, f->size, f->executable ? 0755 : 0644, '\0');
    if (len <= NAME_MAX_BYTES)
        memcpy(h, name, len);
    else
        rc = write_long_name(g, name, len, h);
    free(name);
    header_checksum(h);
    if (rc == 0)
        rc = gz_write(g, h, BLOCK);
    int fd = rc == 0 ? open(f->full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
    if (rc == 0 && fd < 0)
        return set_error(err, errlen, errno, "cannot read %s: %s", f->full, strerror(errno));
    uint64_t copied = 0;
    ssize_t n;
    while (rc == 0 && (n = read(fd, buf, sizeof(buf))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = set_error(err, errlen, errno, "cannot read %s: %s", f->full, strerror(errno));
            break;
        }
        copied += (uint64_t)n;
        rc = gz_write(g, buf, (size_t)n);
    }
    if (fd >= 0)
        close(fd);
    if (rc == 0 && copied != f->size)
        return set_error(err, errlen, EAGAIN, "%s changed while the release was built", f->full);
    return rc == 0 ? write_padding(g, f->size) : rc;
}

int release_archive_write(int fd, const char *pack_ref, const struct release_file *files,
                          size_t nfiles, char digest[65], uint64_t *size, char *err, size_t errlen)
{
    static const unsigned char gzip_header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 255};
    struct gz *g = xcalloc(1, sizeof(*g));
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    int rc;
    if (errlen > 0)
        err[0] = '\0';
    g->fd = fd;
    g->crc = crc32(0L, Z_NULL, 0);
    g->md = EVP_MD_CTX_new();
    if (!g->md || EVP_DigestInit_ex(g->md, EVP_sha256(), NULL) != 1 ||
        deflateInit2(&g->zs, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        EVP_MD_CTX_free(g->md);
        free(g);
        return set_error(err, errlen, ENOMEM, "cannot start the release archive");
    }
    rc = sink(g, gzip_header, sizeof(gzip_header));
    for (size_t i = 0; rc == 0 && i < nfiles; i++)
        rc = write_file(g, pack_ref, &files[i], err, errlen);
    if (rc == 0)
        rc = gz_zeros(g, 2 * BLOCK);
    if (rc == 0)
        rc = gz_finish(g);
    if (rc == 0 && (EVP_DigestFinal_ex(g->md, md, &mdlen) != 1 || mdlen != 32))
        rc = -EIO;
    if (rc == 0) {
        release_hex(md, digest);
        *size = g->out;
    } else if (errlen > 0 && !err[0]) {
        set_error(err, errlen, -rc, "cannot write the release archive: %s", strerror(-rc));
    }
    deflateEnd(&g->zs);
    EVP_MD_CTX_free(g->md);
    free(g);
    return rc;
}
