/* Small shared helpers: allocation that aborts on failure, a growable byte
 * buffer, time, file and UTF-8 utilities used across the worker. */
#ifndef ATTUNE_CORE_UTIL_H
#define ATTUNE_CORE_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
/* A macro's value as a string literal. */
#define STRINGIFY(x) STRINGIFY_TEXT(x)
#define STRINGIFY_TEXT(x) #x

void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable byte buffer, always NUL-terminated after len bytes. */
struct strbuf {
    char *data;
    size_t len;
    size_t cap;
};

void strbuf_init(struct strbuf *sb);
void strbuf_free(struct strbuf *sb);
void strbuf_reset(struct strbuf *sb);
void strbuf_append(struct strbuf *sb, const void *data, size_t len);
void strbuf_puts(struct strbuf *sb, const char *s);
void strbuf_putc(struct strbuf *sb, char c);
/* Appends s as one single-quoted sh word: ' becomes '\'' and everything
 * else stays literal. */
void strbuf_put_sh_quoted(struct strbuf *sb, const char *s);
void strbuf_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the buffer to the caller (free() it) and leaves sb empty. */
char *strbuf_detach(struct strbuf *sb, size_t *len);

/* A NULL-terminated vector of owned strings (argv, envp). */
struct strv {
    char **items;
    size_t len;
    size_t cap;
};

void strv_init(struct strv *v);
void strv_free(struct strv *v);
void strv_push(struct strv *v, const char *s);
void strv_push_owned(struct strv *v, char *s);
/* Adds NAME=value, replacing an earlier entry of the same NAME. */
void strv_setenv(struct strv *v, const char *name, const char *value);
/* The value of NAME in a NAME=value vector, or NULL. */
const char *strv_getenv(const struct strv *v, const char *name);
/* The same in a NULL-terminated environment array. */
const char *envp_getenv(char *const *envp, const char *name);

/* Writes an error message into a caller's buffer; always returns -code so a
 * caller can write `return set_error(err, errlen, EINVAL, "...")`. */
int set_error(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

uint64_t time_monotonic_ms(void);
uint64_t time_monotonic_us(void);
/* RFC 3339 UTC timestamp with microseconds, e.g. 2026-01-27T10:00:00.123456Z. */
void time_rfc3339_now(char *out, size_t outlen);

/* Writes all of buf, retrying on EINTR. Returns 0 or -errno. */
int write_all(int fd, const void *buf, size_t len);
/* Reads a whole file, at most max bytes (0: no limit). Returns 0 or -errno. */
int read_file(const char *path, size_t max, struct strbuf *out);
/* The same from an open descriptor (standard input), which stays open. */
int read_fd(int fd, size_t max, struct strbuf *out);
/* Creates a directory and its parents with the given mode. Returns 0 or -errno. */
int mkdir_p(const char *path, mode_t mode);
/* Removes a directory tree. Returns 0 or -errno of the first failure. */
int remove_tree(const char *path);

/* Appends s to out, replacing each invalid UTF-8 sequence and each NUL by
 * U+FFFD, so that the result can always go into a JSON string. */
void utf8_sanitize(const char *s, size_t len, struct strbuf *out);

bool str_starts_with(const char *s, const char *prefix);
bool str_ends_with(const char *s, const char *suffix);
/* Narrows [*s, *s + *len) to its text without ASCII white space
 * (" \t\n\v\f\r") at either end. */
void str_trim(const char **s, size_t *len);
/* Parses a whole decimal integer; returns false on anything else or overflow. */
bool parse_int64(const char *s, int64_t *out);

/* Wipes memory that held a secret in a way the compiler cannot drop. */
void secure_zero(void *p, size_t len);

#endif
