/* The JSON envelope of CONTRACT.md section 2: strict parsing of inbound
 * execution requests (anything malformed is rejected with a one-line reason)
 * and building of outbound messages. */
#include "mq/envelope.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/util.h"

#define MAX_DEPTH 64
#define MAX_ACTION_REF_CHARS 255
#define INT64_LIMIT 9223372036854775808.0 /* 2^63 */

/* A reason goes into logs as one line of text: no control bytes, no bytes
 * that are not ASCII (jansson quotes pieces of the body in its messages). */
static int reject(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int reject(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return -EINVAL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    for (char *p = err; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = '?';
    return -EINVAL;
}

/* Finds nesting deeper than MAX_DEPTH before the parser sees the body, so
 * that a deeply nested body costs one linear scan and no allocation. */
static bool too_deep(const unsigned char *p, size_t len)
{
    size_t depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > MAX_DEPTH)
                return true;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return false;
}

static bool out_of_int64(const json_t *v)
{
    return json_is_real(v) &&
           (json_real_value(v) >= INT64_LIMIT || json_real_value(v) < -INT64_LIMIT);
}

/* jansson stops at an integer beyond int64 without saying where; a second
 * parse that reads integers as reals tells which field held it. */
static int reject_overflow(const void *body, size_t len, const json_error_t *jerr, char *err,
                           size_t errlen)
{
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, NULL);
    json_t *payload = json_object_get(root, "payload");
    bool exec_id = out_of_int64(json_object_get(payload, "execution_id"));
    bool worker_id = out_of_int64(json_object_get(payload, "worker_id"));
    json_decref(root);
    if (exec_id)
        return reject(err, errlen,
                      "payload.execution_id must be a positive integer (out of range)");
    if (worker_id)
        return reject(err, errlen,
                      "payload.worker_id must be a non-negative integer (out of range)");
    return reject(err, errlen, "body is not valid JSON: %s (line %d, column %d)", jerr->text,
                  jerr->line, jerr->column);
}

static int reject_load_error(const void *body, size_t len, const json_error_t *jerr, char *err,
                             size_t errlen)
{
    switch (json_error_code(jerr)) {
    case json_error_invalid_utf8:
        return reject(err, errlen, "body is not valid UTF-8 (line %d, column %d)", jerr->line,
                      jerr->column);
    case json_error_numeric_overflow:
        return reject_overflow(body, len, jerr, err, errlen);
    default:
        return reject(err, errlen, "body is not valid JSON: %s (line %d, column %d)", jerr->text,
                      jerr->line, jerr->column);
    }
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* 8-4-4-4-12 hexadecimal digits. */
static bool is_uuid(const char *s, size_t len)
{
    if (len != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !is_hex(s[i]))
            return false;
    }
    return true;
}

static int read_uuid(const json_t *root, const char *field, char out[64], char *err, size_t errlen)
{
    const json_t *v = json_object_get(root, field);
    if (!json_is_string(v) || !is_uuid(json_string_value(v), json_string_length(v)))
        return reject(err, errlen, "%s must be a UUID string", field);
    memcpy(out, json_string_value(v), 37);
    return 0;
}

static int read_message_type(const json_t *root, char *err, size_t errlen)
{
    const char *type = json_string_value(json_object_get(root, "message_type"));
    if (!type ||
        (strcmp(type, "ExecutionRequested") != 0 && strcmp(type, "ExecutionScheduled") != 0))
        return reject(err, errlen,
                      "message_type must be \"ExecutionRequested\" or \"ExecutionScheduled\"");
    return 0;
}

static int read_headers(const json_t *root, struct execution_request_msg *out, char *err,
                        size_t errlen)
{
    const json_t *headers = json_object_get(root, "headers");
    if (!json_is_object(headers))
        return reject(err, errlen, "headers must be an object");
    const json_t *trace = json_object_get(headers, "trace_id");
    if (!trace || json_is_null(trace))
        return 0;
    if (!json_is_string(trace))
        return reject(err, errlen, "headers.trace_id must be a string");
    if (json_string_length(trace) >= sizeof(out->trace_id))
        return reject(err, errlen, "headers.trace_id is longer than %zu bytes",
                      sizeof(out->trace_id) - 1);
    memcpy(out->trace_id, json_string_value(trace), json_string_length(trace) + 1);
    return 0;
}

static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

static int read_ids(const json_t *payload, struct execution_request_msg *out, char *err,
                    size_t errlen)
{
    const json_t *exec_id = json_object_get(payload, "execution_id");
    if (!json_is_integer(exec_id) || json_integer_value(exec_id) <= 0)
        return reject(err, errlen, "payload.execution_id must be a positive integer");
    const json_t *worker_id = json_object_get(payload, "worker_id");
    if (!json_is_integer(worker_id) || json_integer_value(worker_id) < 0)
        return reject(err, errlen, "payload.worker_id must be a non-negative integer");
    out->execution_id = json_integer_value(exec_id);
    out->worker_id = json_integer_value(worker_id);
    return 0;
}

/* The pinned release, both optional as serde's #[serde(default)] Options:
 * absent and null are "none". */
static int read_release(const json_t *payload, struct execution_request_msg *out, char *err,
                        size_t errlen)
{
    const json_t *id = json_object_get(payload, "release_id");
    if (id && !json_is_null(id) && !json_is_integer(id))
        return reject(err, errlen, "payload.release_id must be an integer or null");
    const json_t *digest = json_object_get(payload, "release_digest");
    if (digest && !json_is_null(digest) && !json_is_string(digest))
        return reject(err, errlen, "payload.release_digest must be a string or null");
    out->has_release_id = json_is_integer(id);
    out->release_id = json_is_integer(id) ? json_integer_value(id) : 0;
    if (json_is_string(digest))
        out->release_digest = xstrdup(json_string_value(digest)); /* no NUL: jansson refuses it */
    return 0;
}

static int read_payload(const json_t *root, struct execution_request_msg *out, char *err,
                        size_t errlen)
{
    const json_t *payload = json_object_get(root, "payload");
    if (!json_is_object(payload))
        return reject(err, errlen, "payload must be an object");
    int rc = read_ids(payload, out, err, errlen);
    if (rc < 0)
        return rc;
    const json_t *ref = json_object_get(payload, "action_ref");
    if (!json_is_string(ref) || json_string_length(ref) == 0)
        return reject(err, errlen, "payload.action_ref must be a non-empty string");
    if (utf8_chars(json_string_value(ref), json_string_length(ref)) > MAX_ACTION_REF_CHARS)
        return reject(err, errlen, "payload.action_ref is longer than %d characters",
                      MAX_ACTION_REF_CHARS);
    /* An absent config reads as null, as Attune's executor (serde's Option)
     * does. */
    json_t *config = json_object_get(payload, "config");
    if (config && !json_is_object(config) && !json_is_null(config))
        return reject(err, errlen, "payload.config must be an object or null");
    rc = read_release(payload, out, err, errlen);
    if (rc < 0)
        return rc;
    out->action_ref = xstrdup(json_string_value(ref));
    out->config = json_is_object(config) ? json_incref(config) : NULL;
    return 0;
}

static int read_envelope(const json_t *root, struct execution_request_msg *out, char *err,
                         size_t errlen)
{
    if (!json_is_object(root))
        return reject(err, errlen, "envelope must be a JSON object");
    int rc = read_uuid(root, "message_id", out->message_id, err, errlen);
    if (rc == 0)
        rc = read_uuid(root, "correlation_id", out->correlation_id, err, errlen);
    if (rc == 0)
        rc = read_message_type(root, err, errlen);
    if (rc < 0)
        return rc;
    const char *version = json_string_value(json_object_get(root, "version"));
    if (!version || strcmp(version, "1.0") != 0)
        return reject(err, errlen, "version must be \"1.0\"");
    if (!json_is_string(json_object_get(root, "timestamp")))
        return reject(err, errlen, "timestamp must be a string");
    snprintf(out->timestamp, sizeof(out->timestamp), "%s",
             json_string_value(json_object_get(root, "timestamp")));
    rc = read_headers(root, out, err, errlen);
    if (rc == 0)
        rc = read_payload(root, out, err, errlen);
    return rc;
}

int envelope_parse_request(const void *body, size_t len, struct execution_request_msg *out,
                           char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (!body)
        len = 0;
    if (len > ENVELOPE_MAX_BYTES)
        return reject(err, errlen, "body is %zu bytes, over the limit of %u", len,
                      ENVELOPE_MAX_BYTES);
    if (too_deep(body, len))
        return reject(err, errlen, "body nests deeper than %d levels", MAX_DEPTH);
    json_error_t jerr;
    json_t *root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return reject_load_error(body, len, &jerr, err, errlen);
    int rc = read_envelope(root, out, err, errlen);
    json_decref(root);
    if (rc < 0)
        envelope_request_free(out);
    return rc;
}

static int read_cancel(const json_t *root, int64_t *execution_id, char *err, size_t errlen)
{
    if (!json_is_object(root))
        return reject(err, errlen, "envelope must be a JSON object");
    const char *type = json_string_value(json_object_get(root, "message_type"));
    if (!type || strcmp(type, "ExecutionCancelRequested") != 0)
        return reject(err, errlen, "message_type must be \"ExecutionCancelRequested\"");
    const json_t *payload = json_object_get(root, "payload");
    if (!json_is_object(payload))
        return reject(err, errlen, "payload must be an object");
    struct execution_request_msg ids = {0};
    int rc = read_ids(payload, &ids, err, errlen);
    *execution_id = ids.execution_id;
    return rc;
}

int envelope_parse_cancel(const void *body, size_t len, int64_t *execution_id, char *err,
                          size_t errlen)
{
    *execution_id = 0;
    if (!body || len > ENVELOPE_MAX_BYTES || too_deep(body, len))
        return reject(err, errlen, "body is empty, too large or nests too deep");
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return reject_load_error(body, len, &jerr, err, errlen);
    int rc = read_cancel(root, execution_id, err, errlen);
    json_decref(root);
    return rc;
}

void envelope_request_free(struct execution_request_msg *msg)
{
    if (!msg)
        return;
    free(msg->action_ref);
    msg->action_ref = NULL;
    json_decref(msg->config);
    msg->config = NULL;
    free(msg->release_digest);
    msg->release_digest = NULL;
}

static json_t *must(json_t *v)
{
    if (!v) {
        fprintf(stderr, "attune: out of memory building a message\n");
        abort();
    }
    return v;
}

static json_t *build_headers(const char *trace_id)
{
    json_t *headers = must(json_object());
    json_object_set_new(headers, "retry_count", must(json_integer(0)));
    json_object_set_new(headers, "source_service", must(json_string("attune-worker")));
    if (trace_id && *trace_id)
        json_object_set_new(headers, "trace_id", must(json_string(trace_id)));
    return headers;
}

json_t *envelope_build(const char *message_type, const char *correlation_id, const char *trace_id,
                       json_t *payload, char message_id_out[37])
{
    char message_id[37], fresh_correlation[37], timestamp[40];
    uuid_v4(message_id);
    if (!correlation_id || !*correlation_id) {
        uuid_v4(fresh_correlation);
        correlation_id = fresh_correlation;
    }
    time_rfc3339_now(timestamp, sizeof(timestamp));
    json_t *msg = must(json_object());
    json_object_set_new(msg, "message_id", must(json_string(message_id)));
    json_object_set_new(msg, "correlation_id", must(json_string(correlation_id)));
    json_object_set_new(msg, "message_type", must(json_string(message_type)));
    json_object_set_new(msg, "version", must(json_string("1.0")));
    json_object_set_new(msg, "timestamp", must(json_string(timestamp)));
    json_object_set_new(msg, "headers", build_headers(trace_id));
    json_object_set_new(msg, "payload", payload ? payload : must(json_object()));
    if (message_id_out)
        memcpy(message_id_out, message_id, sizeof(message_id));
    return msg;
}

void uuid_v4(char out[37])
{
    unsigned char b[16];
    size_t got = 0;
    while (got < sizeof(b)) {
        ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "attune: getrandom failed: %s\n", strerror(errno));
            abort();
        }
        if (n > 0)
            got += (size_t)n;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    for (size_t i = 0; i < sizeof(b); i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[b[i] >> 4];
        *p++ = hex[b[i] & 0xf];
    }
    *p = '\0';
}
