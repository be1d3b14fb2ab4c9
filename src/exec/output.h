/* Output capture: bytes a child writes to stdout or stderr go straight to the
 * artifact log file up to a cap; the rest is counted and dropped, and a closing
 * notice records how much was cut. The child is never blocked by the cap. On
 * request the sink also keeps the SHA-256 of what the file holds, for the
 * log's database row (Attune records each log's size and digest), and masks
 * secret values before anything is written: the file, the cap, the counts
 * and the digest are all of the masked bytes. */
#ifndef ATTUNE_EXEC_OUTPUT_H
#define ATTUNE_EXEC_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evp_md_ctx_st;
struct mask_match;
struct mask_set;
struct mask_stream;

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
    bool digested;            /* sha256 holds the digest of the whole file */
    struct mask_stream *mask; /* NULL: nothing to mask */
};

/* Opens (creates, truncates, mode 0600) the log file at path. */
int output_sink_open(struct output_sink *sink, const char *path, int64_t cap);
/* The same with a log file the caller opened: the sink takes fd (closed by
 * output_sink_close) and writes from its current offset. */
int output_sink_open_fd(struct output_sink *sink, int fd, int64_t cap);
/* Masks with set (borrowed, built; it must outlive the sink) from now on;
 * with keep_matches, records where (output_sink_matches). Nothing is done
 * for an empty set. Call right after a successful open. */
void output_sink_mask(struct output_sink *sink, const struct mask_set *set, size_t keep_matches);
/* Keeps what fits under the cap, counts the rest. Masked, the bytes that
 * could begin a secret wait for the next write (or the close); once the cap
 * is reached, what comes is counted as it is, unmasked, and dropped. */
void output_sink_write(struct output_sink *sink, const void *data, size_t len);
/* Writes what the masking held back, appends the truncation notice if
 * anything was dropped, closes the file. */
void output_sink_close(struct output_sink *sink);
bool output_sink_truncated(const struct output_sink *sink);

/* Keeps the SHA-256 of everything the file will hold; call right after a
 * successful open. */
void output_sink_start_digest(struct output_sink *sink);
/* After close: the file's size and its SHA-256 as lowercase hex. False when
 * no digest was kept, or a write failed and the file's content is unknown. */
bool output_sink_digest(const struct output_sink *sink, int64_t *size, char hex[65]);
/* Where the masking replaced a secret in the file (see mask_stream_matches):
 * false when no masking was done or not every match was kept. */
bool output_sink_matches(const struct output_sink *sink, const struct mask_match **matches,
                         size_t *count);
/* Frees what output_sink_open made beyond the file (after close). */
void output_sink_release(struct output_sink *sink);

#endif
