/* Output capture: bytes a child writes to stdout or stderr go straight to the
 * artifact log file up to a cap; the rest is counted and dropped, and a closing
 * notice records how much was cut. The child is never blocked by the cap. On
 * request the sink also keeps the SHA-256 of what the file holds, for the
 * log's database row (Attune records each log's size and digest). */
#ifndef ATTUNE_EXEC_OUTPUT_H
#define ATTUNE_EXEC_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evp_md_ctx_st;

struct output_sink {
    int fd;          /* the log file, owned */
    int64_t cap;     /* bytes kept in the file */
    int64_t kept;    /* bytes written to the file so far */
    int64_t dropped; /* bytes received past the cap */
    int write_error; /* first write error (negative errno), 0 if none */
    /* The digest, when asked for: running until close, then final. */
    struct evp_md_ctx_st *md;
    int64_t file_bytes; /* what the file holds: kept plus the notice */
    unsigned char sha256[32];
    bool digested; /* sha256 holds the digest of the whole file */
};

/* Opens (creates, truncates, mode 0600) the log file at path. */
int output_sink_open(struct output_sink *sink, const char *path, int64_t cap);
/* Keeps what fits under the cap, counts the rest. */
void output_sink_write(struct output_sink *sink, const void *data, size_t len);
/* Appends the truncation notice if anything was dropped, closes the file. */
void output_sink_close(struct output_sink *sink);
bool output_sink_truncated(const struct output_sink *sink);

/* Keeps the SHA-256 of everything the file will hold; call right after a
 * successful open. */
void output_sink_start_digest(struct output_sink *sink);
/* After close: the file's size and its SHA-256 as lowercase hex. False when
 * no digest was kept, or a write failed and the file's content is unknown. */
bool output_sink_digest(const struct output_sink *sink, int64_t *size, char hex[65]);

#endif
