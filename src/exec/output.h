/* Output capture: bytes a child writes to stdout or stderr go straight to the
 * artifact log file up to a cap; the rest is counted and dropped, and a closing
 * notice records how much was cut. The child is never blocked by the cap. */
#ifndef ATTUNE_EXEC_OUTPUT_H
#define ATTUNE_EXEC_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct output_sink {
    int fd;          /* the log file, owned */
    int64_t cap;     /* bytes kept in the file */
    int64_t kept;    /* bytes written to the file so far */
    int64_t dropped; /* bytes received past the cap */
    int write_error; /* first write error (negative errno), 0 if none */
};

/* Opens (creates, truncates, mode 0600) the log file at path. */
int output_sink_open(struct output_sink *sink, const char *path, int64_t cap);
/* Keeps what fits under the cap, counts the rest. */
void output_sink_write(struct output_sink *sink, const void *data, size_t len);
/* Appends the truncation notice if anything was dropped, closes the file. */
void output_sink_close(struct output_sink *sink);
bool output_sink_truncated(const struct output_sink *sink);

#endif
