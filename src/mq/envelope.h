/* The JSON envelope every message carries (CONTRACT.md section 2): parsing
 * inbound execution requests strictly, building outbound messages. */
#ifndef ATTUNE_MQ_ENVELOPE_H
#define ATTUNE_MQ_ENVELOPE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ENVELOPE_MAX_BYTES (1u << 20)

struct execution_request_msg {
    char message_id[64];
    char correlation_id[64];
    char trace_id[128]; /* "" when absent */
    char timestamp[48]; /* when the message was created (RFC 3339), as sent */
    int64_t execution_id;
    int64_t worker_id;
    char *action_ref;
    json_t *config; /* object or NULL */
    /* The release the executor pinned: Option<i64> and Option<String> as
     * Attune sends them (absent or null: none). */
    bool has_release_id;
    int64_t release_id;
    char *release_digest; /* NULL: none */
};

/* Parses an ExecutionRequested or ExecutionScheduled envelope. Rejects with a
 * one-line reason in err (never the whole body): a body over
 * ENVELOPE_MAX_BYTES, invalid JSON or UTF-8, nesting deeper than 64, a missing
 * or wrongly typed field (message_id and correlation_id UUID strings,
 * message_type one of the two, version "1.0", timestamp string, headers
 * object, payload object with execution_id a positive integer, worker_id an
 * integer, action_ref a non-empty string of at most 255 characters, config an
 * object or null, release_id an integer or null, release_digest a string or
 * null; the last three may be absent). Returns 0 or -EINVAL. */
int envelope_parse_request(const void *body, size_t len, struct execution_request_msg *out,
                           char *err, size_t errlen);
void envelope_request_free(struct execution_request_msg *msg);

/* Parses an ExecutionCancelRequested envelope (ATTUNE-TODAY 2.2): a JSON
 * object whose message_type is "ExecutionCancelRequested" and whose payload
 * holds execution_id (a positive integer) and worker_id (an integer). The
 * worker_id is not checked against this worker's, as Attune's worker does
 * not. Returns 0 or -EINVAL with a one-line reason in err. */
int envelope_parse_cancel(const void *body, size_t len, int64_t *execution_id, char *err,
                          size_t errlen);

/* Builds an outbound envelope around payload (reference stolen): a fresh
 * message_id, the given correlation_id (a fresh one when NULL or ""), version
 * "1.0", the current time, headers {retry_count: 0, source_service:
 * "attune-worker", trace_id when non-empty}. Writes the new message id to
 * message_id_out (37 bytes) when not NULL. Returns a new object. */
json_t *envelope_build(const char *message_type, const char *correlation_id, const char *trace_id,
                       json_t *payload, char message_id_out[37]);

/* A random (version 4) UUID, lowercase, 36 characters plus NUL. */
void uuid_v4(char out[37]);

#endif
