/* Small shared helpers: allocation that aborts on failure, a growable byte
 * buffer, time, file and UTF-8 utilities used across the worker. */
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void out_of_memory(size_t size)
{
    fprintf(stderr, "attune: out of memory allocating %zu bytes\n", size);
    abort();
}

void *xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        out_of_memory(size);
    return p;
}

void *xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        out_of_memory(count * size);
    return p;
}

void *xrealloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (!p)
        out_of_memory(size);
    return p;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *out = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&out, fmt, ap);
    va_end(ap);
    if (n < 0)
        out_of_memory(0);
    return out;
}

void strbuf_init(struct strbuf *sb)
{
    sb->data = NULL;
    sb->len = 0;
    sb->cap = 0;
}

void strbuf_free(struct strbuf *sb)
{
    free(sb->data);
    strbuf_init(sb);
}

void strbuf_reset(struct strbuf *sb)
{
    sb->len = 0;
    if (sb->data)
        sb->data[0] = '\0';
}

static void strbuf_grow(struct strbuf *sb, size_t extra)
{
    size_t need = sb->len + extra + 1;
    if (need <= sb->cap)
        return;
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < need)
        cap *= 2;
    sb->data = xrealloc(sb->data, cap);
    sb->cap = cap;
}

void strbuf_append(struct strbuf *sb, const void *data, size_t len)
{
    strbuf_grow(sb, len);
    if (len)
        memcpy(sb->data + sb->len, data, len);
    sb->len += len;
    sb->data[sb->len] = '\0';
}

void strbuf_puts(struct strbuf *sb, const char *s)
{
    strbuf_append(sb, s, strlen(s));
}

void strbuf_putc(struct strbuf *sb, char c)
{
    strbuf_append(sb, &c, 1);
}

void strbuf_put_sh_quoted(struct strbuf *sb, const char *s)
{
    strbuf_putc(sb, '\'');
    for (; *s; s++) {
        if (*s == '\'')
            strbuf_puts(sb, "'\\''");
        else
            strbuf_putc(sb, *s);
    }
    strbuf_putc(sb, '\'');
}

void strbuf_printf(struct strbuf *sb, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n > 0) {
        strbuf_grow(sb, (size_t)n);
        vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap2);
        sb->len += (size_t)n;
    }
    va_end(ap2);
}

char *strbuf_detach(struct strbuf *sb, size_t *len)
{
    strbuf_grow(sb, 0);
    sb->data[sb->len] = '\0';
    char *p = sb->data;
    if (len)
        *len = sb->len;
    strbuf_init(sb);
    return p;
}

void strv_init(struct strv *v)
{
    v->items = xcalloc(1, sizeof(char *));
    v->len = 0;
    v->cap = 1;
}

void strv_free(struct strv *v)
{
    for (size_t i = 0; i < v->len; i++)
        free(v->items[i]);
    free(v->items);
    v->items = NULL;
    v->len = v->cap = 0;
}

void strv_push_owned(struct strv *v, char *s)
{
    if (v->len + 1 >= v->cap) {
        v->cap = v->cap ? v->cap * 2 : 8;
        v->items = xrealloc(v->items, v->cap * sizeof(char *));
    }
    v->items[v->len++] = s;
    v->items[v->len] = NULL;
}

void strv_push(struct strv *v, const char *s)
{
    strv_push_owned(v, xstrdup(s));
}

void strv_setenv(struct strv *v, const char *name, const char *value)
{
    size_t nlen = strlen(name);
    char *entry = xasprintf("%s=%s", name, value);
    for (size_t i = 0; i < v->len; i++) {
        if (strncmp(v->items[i], name, nlen) == 0 && v->items[i][nlen] == '=') {
            free(v->items[i]);
            v->items[i] = entry;
            return;
        }
    }
    strv_push_owned(v, entry);
}

const char *envp_getenv(char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (char *const *e = envp; *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

const char *strv_getenv(const struct strv *v, const char *name)
{
    return v->items ? envp_getenv(v->items, name) : NULL;
}

int set_error(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code > 0 ? -code : code;
}

uint64_t time_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t time_monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void time_rfc3339_now(char *out, size_t outlen)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char base[32];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, outlen, "%s.%06ldZ", base, ts.tv_nsec / 1000);
}

int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int read_file(const char *path, size_t max, struct strbuf *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = read_fd(fd, max, out);
    close(fd);
    return rc;
}

int read_fd(int fd, size_t max, struct strbuf *out)
{
    char buf[65536];
    int rc = 0;
    for (;;) {
        size_t want = sizeof(buf);
        if (max && out->len >= max)
            break;
        if (max && out->len + want > max)
            want = max - out->len;
        if (want == 0)
            break;
        ssize_t n = read(fd, buf, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            break;
        }
        if (n == 0)
            break;
        strbuf_append(out, buf, (size_t)n);
    }
    /* What was read may be a secret (a secrets or parameters file). */
    secure_zero(buf, sizeof(buf));
    if (!out->data)
        strbuf_append(out, "", 0);
    return rc;
}

int mkdir_p(const char *path, mode_t mode)
{
    /* Usually only the last component is new: one call instead of one per level. */
    if (mkdir(path, mode) == 0)
        return 0;
    char *copy = xstrdup(path);
    int rc = 0;
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, mode) < 0 && errno != EEXIST) {
            rc = -errno;
            break;
        }
        *p = '/';
    }
    struct stat st;
    if (rc == 0 && mkdir(copy, mode) < 0)
        rc = errno != EEXIST       ? -errno
             : stat(copy, &st) < 0 ? -errno
             : S_ISDIR(st.st_mode) ? 0
                                   : -ENOTDIR;
    free(copy);
    return rc;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) < 0 ? -1 : 0;
}

int remove_tree(const char *path)
{
    if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) < 0)
        return errno ? -errno : -EIO;
    return 0;
}

/* Length of the valid UTF-8 sequence at s (at most len bytes), or 0. */
static size_t utf8_sequence_length(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return c ? 1 : 0;
    if ((c & 0xE0) == 0xC0) {
        n = 2;
        cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3;
        cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n > len)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    static const uint32_t min_for_length[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_for_length[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

void utf8_sanitize(const char *s, size_t len, struct strbuf *out)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    strbuf_append(out, "", 0);
    while (i < len) {
        size_t start = i;
        size_t n;
        while (i < len && (n = utf8_sequence_length(p + i, len - i)) > 0)
            i += n;
        strbuf_append(out, s + start, i - start);
        if (i < len) {
            strbuf_puts(out, "\xEF\xBF\xBD");
            i++;
        }
    }
}

bool str_starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool str_ends_with(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && memcmp(s + ls - lx, suffix, lx) == 0;
}

static bool is_ascii_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

void str_trim(const char **s, size_t *len)
{
    while (*len > 0 && is_ascii_space(**s)) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && is_ascii_space((*s)[*len - 1]))
        (*len)--;
}

bool parse_int64(const char *s, int64_t *out)
{
    if (!s || !((*s >= '0' && *s <= '9') || *s == '-' || *s == '+'))
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end != '\0' || end == s)
        return false;
    *out = v;
    return true;
}

void secure_zero(void *p, size_t len)
{
    explicit_bzero(p, len);
}
