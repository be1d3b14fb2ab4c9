/* Unit tests for mq/envelope: strict parsing of execution requests (each
 * malformed shape rejected with a reason naming the field). Building is in
 * test_envelope_build.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "mq/envelope.h"

#define MSG_ID "0b6f7d1e-3c2a-4f5b-9e8d-7a6b5c4d3e2f"
#define CORR_ID "5E1A2B3C-4D5E-4F60-8172-93A4B5C6D7E8"

/* A valid ExecutionRequested envelope as a JSON object to be altered. */
static json_t *valid_request(void)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:i, s:s, s:s}, s:{s:i, s:i, s:s, s:{s:s}}}",
                     "message_id", MSG_ID, "correlation_id", CORR_ID, "message_type",
                     "ExecutionRequested", "version", "1.0", "timestamp",
                     "2026-01-27T10:00:00.123456Z", "headers", "retry_count", 0, "source_service",
                     "executor", "trace_id", "trace-abc-123", "payload", "execution_id", 42,
                     "worker_id", 7, "action_ref", "examples.hello", "config", "name", "world");
}

static int parse_json(const json_t *env, struct execution_request_msg *msg, char *err,
                      size_t errlen)
{
    char *text = json_dumps(env, JSON_COMPACT);
    assert_non_null(text);
    int rc = envelope_parse_request(text, strlen(text), msg, err, errlen);
    free(text);
    return rc;
}

static void test_valid_request(void **state)
{
    (void)state;
    json_t *env = valid_request();
    struct execution_request_msg msg;
    char err[256] = "";
    assert_int_equal(parse_json(env, &msg, err, sizeof(err)), 0);
    assert_string_equal(msg.message_id, MSG_ID);
    assert_string_equal(msg.correlation_id, CORR_ID);
    assert_string_equal(msg.trace_id, "trace-abc-123");
    assert_int_equal(msg.execution_id, 42);
    assert_int_equal(msg.worker_id, 7);
    assert_string_equal(msg.action_ref, "examples.hello");
    assert_true(json_is_object(msg.config));
    assert_string_equal(json_string_value(json_object_get(msg.config, "name")), "world");
    assert_false(msg.has_release_id);
    assert_null(msg.release_digest);
    envelope_request_free(&msg);
    assert_null(msg.action_ref);
    assert_null(msg.config);
    envelope_request_free(&msg); /* twice is harmless */
    envelope_request_free(NULL);
    json_decref(env);
}

static void test_valid_variants(void **state)
{
    (void)state;
    json_t *env = valid_request();
    json_t *payload = json_object_get(env, "payload");
    json_t *headers = json_object_get(env, "headers");
    struct execution_request_msg msg;
    char err[256] = "";

    /* ExecutionScheduled, config null, no trace_id, a large id, unknown
     * extra keys, worker_id 0. */
    json_object_set_new(env, "message_type", json_string("ExecutionScheduled"));
    json_object_set_new(payload, "config", json_null());
    json_object_set_new(payload, "execution_id", json_integer(INT64_MAX));
    json_object_set_new(payload, "worker_id", json_integer(0));
    json_object_set_new(payload, "extra", json_string("ignored"));
    json_object_set_new(env, "future_field", json_true());
    json_object_del(headers, "trace_id");
    assert_int_equal(parse_json(env, &msg, err, sizeof(err)), 0);
    assert_string_equal(msg.trace_id, "");
    assert_null(msg.config);
    assert_int_equal(msg.execution_id, INT64_MAX);
    assert_int_equal(msg.worker_id, 0);
    envelope_request_free(&msg);

    /* config absent reads as null; trace_id null as absent; headers empty. */
    json_object_del(payload, "config");
    json_object_clear(headers);
    json_object_set_new(headers, "trace_id", json_null());
    assert_int_equal(parse_json(env, &msg, err, sizeof(err)), 0);
    assert_null(msg.config);
    assert_string_equal(msg.trace_id, "");
    envelope_request_free(&msg);

    /* An action_ref of exactly 255 characters (some of them two bytes). */
    char ref[2 * 255 + 1];
    size_t n = 0;
    for (int i = 0; i < 255; i++) {
        if (i % 2) {
            ref[n++] = '\xC3';
            ref[n++] = '\xA9';
        } else {
            ref[n++] = 'a';
        }
    }
    ref[n] = '\0';
    json_object_set_new(payload, "action_ref", json_string(ref));
    assert_int_equal(parse_json(env, &msg, err, sizeof(err)), 0);
    assert_string_equal(msg.action_ref, ref);
    envelope_request_free(&msg);
    json_decref(env);
}

/* Parses text and expects rejection with a reason containing `reason`. */
static void expect_reject_text(const char *text, size_t len, const char *reason)
{
    struct execution_request_msg msg;
    char err[256] = "";
    int rc = envelope_parse_request(text, len, &msg, err, sizeof(err));
    if (rc != -EINVAL || !strstr(err, reason))
        fail_msg("expected rejection naming '%s', got rc %d: %s", reason, rc, err);
    assert_null(strchr(err, '\n'));
    assert_null(msg.action_ref);
    assert_null(msg.config);
}

static void expect_reject(const json_t *env, const char *reason)
{
    char *text = json_dumps(env, JSON_COMPACT);
    assert_non_null(text);
    expect_reject_text(text, strlen(text), reason);
    free(text);
}

/* Sets obj[key] to value (stolen; NULL deletes the key) in a fresh valid
 * envelope, where obj is the envelope itself, its headers or its payload. */
static void expect_reject_field(const char *where, const char *key, json_t *value,
                                const char *reason)
{
    json_t *env = valid_request();
    json_t *obj = where ? json_object_get(env, where) : env;
    if (value)
        json_object_set_new(obj, key, value);
    else
        json_object_del(obj, key);
    expect_reject(env, reason);
    json_decref(env);
}

static void test_reject_not_json(void **state)
{
    (void)state;
    expect_reject_text("", 0, "not valid JSON");
    expect_reject_text("hello", 5, "not valid JSON");
    expect_reject_text("{\"message_id\": ", 15, "not valid JSON");
    expect_reject_text("{} trailing", 11, "not valid JSON");
    expect_reject_text("42", 2, "not valid JSON");
    expect_reject_text("[1, 2]", 6, "envelope must be a JSON object");
    expect_reject_text("{\"a\": \"x\0y\"}", 12, "not valid JSON");
}

static void test_reject_invalid_utf8(void **state)
{
    (void)state;
    json_t *env = valid_request();
    char *text = json_dumps(env, JSON_COMPACT);
    /* Put a bare 0xFF byte into the action_ref string. */
    char *p = strstr(text, "examples.hello");
    assert_non_null(p);
    p[8] = '\xFF';
    expect_reject_text(text, strlen(text), "not valid UTF-8");
    /* An overlong encoding of '/' is invalid too. */
    p[8] = '\xC0';
    p[9] = '\xAF';
    expect_reject_text(text, strlen(text), "not valid UTF-8");
    free(text);
    json_decref(env);
}

static void test_reject_missing_parts(void **state)
{
    (void)state;
    expect_reject_field(NULL, "payload", NULL, "payload must be an object");
    expect_reject_field(NULL, "payload", json_array(), "payload must be an object");
    expect_reject_field(NULL, "payload", json_null(), "payload must be an object");
    expect_reject_field(NULL, "headers", NULL, "headers must be an object");
    expect_reject_field(NULL, "headers", json_string("x"), "headers must be an object");
    expect_reject_field(NULL, "timestamp", NULL, "timestamp must be a string");
    expect_reject_field(NULL, "timestamp", json_integer(1700000000), "timestamp");
    expect_reject_field(NULL, "version", NULL, "version must be \"1.0\"");
    expect_reject_field(NULL, "version", json_string("2.0"), "version");
    expect_reject_field(NULL, "version", json_real(1.0), "version");
    expect_reject_field("headers", "trace_id", json_integer(5), "headers.trace_id");
    char long_trace[200];
    memset(long_trace, 't', sizeof(long_trace) - 1);
    long_trace[sizeof(long_trace) - 1] = '\0';
    expect_reject_field("headers", "trace_id", json_string(long_trace), "headers.trace_id");
}

static void test_reject_execution_id(void **state)
{
    (void)state;
    const char *reason = "payload.execution_id must be a positive integer";
    expect_reject_field("payload", "execution_id", NULL, reason);
    expect_reject_field("payload", "execution_id", json_string("42"), reason);
    expect_reject_field("payload", "execution_id", json_integer(-5), reason);
    expect_reject_field("payload", "execution_id", json_integer(0), reason);
    expect_reject_field("payload", "execution_id", json_real(1.5), reason);
    expect_reject_field("payload", "execution_id", json_real(42.0), reason);
    expect_reject_field("payload", "execution_id", json_true(), reason);
    expect_reject_field("payload", "execution_id", json_null(), reason);

    /* Beyond int64, which the JSON parser itself cannot hold. */
    json_t *env = valid_request();
    char *text = json_dumps(env, JSON_COMPACT);
    char *p = strstr(text, "\"execution_id\":42");
    assert_non_null(p);
    char *big = xasprintf("%.*s\"execution_id\":99999999999999999999999%s", (int)(p - text), text,
                          p + strlen("\"execution_id\":42"));
    expect_reject_text(big, strlen(big), reason);
    free(big);
    big = xasprintf("%.*s\"execution_id\":9223372036854775808%s", (int)(p - text), text,
                    p + strlen("\"execution_id\":42"));
    expect_reject_text(big, strlen(big), reason);
    free(big);
    free(text);
    json_decref(env);
}

static void test_reject_worker_id(void **state)
{
    (void)state;
    const char *reason = "payload.worker_id must be a non-negative integer";
    expect_reject_field("payload", "worker_id", NULL, reason);
    expect_reject_field("payload", "worker_id", json_string("7"), reason);
    expect_reject_field("payload", "worker_id", json_integer(-1), reason);
    expect_reject_field("payload", "worker_id", json_real(7.5), reason);
}

static void test_reject_action_ref_and_config(void **state)
{
    (void)state;
    const char *reason = "payload.action_ref";
    expect_reject_field("payload", "action_ref", NULL, reason);
    expect_reject_field("payload", "action_ref", json_string(""), reason);
    expect_reject_field("payload", "action_ref", json_integer(3), reason);
    char ref[300];
    memset(ref, 'a', 256);
    ref[256] = '\0';
    expect_reject_field("payload", "action_ref", json_string(ref), reason);
    expect_reject_field("payload", "config", json_string("{}"), "payload.config");
    expect_reject_field("payload", "config", json_array(), "payload.config");
    expect_reject_field("payload", "config", json_integer(1), "payload.config");
}

/* release_id and release_digest: optional, null as absent, typed when set. */
static void test_release(void **state)
{
    (void)state;
    json_t *env = valid_request();
    json_t *payload = json_object_get(env, "payload");
    struct execution_request_msg msg;
    char err[256] = "";
    json_object_set_new(payload, "release_id", json_integer(0));
    json_object_set_new(payload, "release_digest", json_string("ab12"));
    assert_int_equal(parse_json(env, &msg, err, sizeof(err)), 0);
    assert_true(msg.has_release_id);
    assert_int_equal(msg.release_id, 0);
    assert_string_equal(msg.release_digest, "ab12");
    envelope_request_free(&msg);
    assert_null(msg.release_digest);
    json_object_set_new(payload, "release_id", json_null());
    json_object_set_new(payload, "release_digest", json_null());
    assert_int_equal(parse_json(env, &msg, err, sizeof(err)), 0);
    assert_false(msg.has_release_id);
    assert_null(msg.release_digest);
    envelope_request_free(&msg);
    json_decref(env);
    expect_reject_field("payload", "release_id", json_string("7"), "payload.release_id");
    expect_reject_field("payload", "release_id", json_real(7.5), "payload.release_id");
    expect_reject_field("payload", "release_digest", json_integer(1), "payload.release_digest");
    expect_reject_field("payload", "release_digest", json_object(), "payload.release_digest");
}

static void test_reject_ids_and_type(void **state)
{
    (void)state;
    static const char *const bad_uuids[] = {
        "",
        "not-a-uuid",
        "0b6f7d1e3c2a4f5b9e8d7a6b5c4d3e2f",       /* no dashes */
        "0b6f7d1e-3c2a-4f5b-9e8d-7a6b5c4d3e2",    /* one short */
        "0b6f7d1e-3c2a-4f5b-9e8d-7a6b5c4d3e2f0",  /* one long */
        "0b6f7d1e-3c2a-4f5b-9e8d-7a6b5c4d3e2g",   /* not hex */
        "0b6f7d1e3-c2a-4f5b-9e8d-7a6b5c4d3e2f",   /* dash misplaced */
        "{0b6f7d1e-3c2a-4f5b-9e8d-7a6b5c4d3e2f}", /* braces */
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad_uuids); i++) {
        expect_reject_field(NULL, "message_id", json_string(bad_uuids[i]),
                            "message_id must be a UUID string");
        expect_reject_field(NULL, "correlation_id", json_string(bad_uuids[i]),
                            "correlation_id must be a UUID string");
    }
    expect_reject_field(NULL, "message_id", NULL, "message_id");
    expect_reject_field(NULL, "message_id", json_integer(1), "message_id");
    expect_reject_field(NULL, "correlation_id", NULL, "correlation_id");

    const char *reason = "message_type must be";
    expect_reject_field(NULL, "message_type", NULL, reason);
    expect_reject_field(NULL, "message_type", json_string("ExecutionCompleted"), reason);
    expect_reject_field(NULL, "message_type", json_string("executionrequested"), reason);
    expect_reject_field(NULL, "message_type", json_integer(1), reason);
}

static void test_reject_deep_nesting(void **state)
{
    (void)state;
    size_t depth = 10000;
    char *deep = xmalloc(2 * depth + 1);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[2 * depth] = '\0';
    expect_reject_text(deep, 2 * depth, "deeper than 64");

    /* Deep nesting inside a valid envelope's config, and unterminated. */
    struct strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, "{\"payload\":{\"config\":");
    for (size_t i = 0; i < depth; i++)
        strbuf_puts(&sb, "{\"a\":");
    expect_reject_text(sb.data, sb.len, "deeper than 64");
    strbuf_free(&sb);

    /* 64 levels is fine as far as depth goes; brackets inside strings do
     * not count. */
    json_t *env = valid_request();
    json_t *inner = json_object();
    for (int i = 0; i < 61; i++)
        inner = json_pack("{s:o}", "x", inner);
    json_object_set_new(json_object_get(env, "payload"), "config", inner);
    json_object_set_new(json_object_get(env, "headers"), "note",
                        json_string("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
                                    "[[[[[[[[[[[[[[[[ \\\" {{{{"));
    char *text = json_dumps(env, JSON_COMPACT);
    struct execution_request_msg msg;
    char err[256] = "";
    assert_int_equal(envelope_parse_request(text, strlen(text), &msg, err, sizeof(err)), 0);
    envelope_request_free(&msg);
    free(text);

    /* One level more is rejected. */
    inner = json_object_get(json_object_get(env, "payload"), "config");
    json_object_set_new(json_object_get(env, "payload"), "config", json_pack("{s:O}", "x", inner));
    expect_reject(env, "deeper than 64");
    json_decref(env);
    free(deep);
}

static void test_reject_oversized(void **state)
{
    (void)state;
    json_t *env = valid_request();
    size_t pad = ENVELOPE_MAX_BYTES;
    char *filler = xmalloc(pad + 1);
    memset(filler, 'x', pad);
    filler[pad] = '\0';
    json_object_set_new(json_object_get(env, "payload"), "padding", json_string(filler));
    expect_reject(env, "over the limit");
    free(filler);
    json_decref(env);

    /* The limit is on the length given, before anything is read. */
    expect_reject_text("{}", (size_t)ENVELOPE_MAX_BYTES + 1, "over the limit");
}

static void test_reject_duplicate_keys(void **state)
{
    (void)state;
    json_t *env = valid_request();
    char *text = json_dumps(env, JSON_COMPACT);
    char *p = strstr(text, "\"execution_id\":42");
    assert_non_null(p);
    char *dup = xasprintf("%.*s\"execution_id\":1,%s", (int)(p - text), text, p);
    expect_reject_text(dup, strlen(dup), "duplicate");
    free(dup);
    free(text);
    json_decref(env);
}

static void test_reason_is_one_clean_line(void **state)
{
    (void)state;
    /* jansson quotes the body near the error; control bytes and non-ASCII
     * never reach the reason. */
    const char *text = "{\"a\": tr\xC3\xA9\n\x01ue}";
    struct execution_request_msg msg;
    char err[256] = "";
    assert_int_equal(envelope_parse_request(text, strlen(text), &msg, err, sizeof(err)), -EINVAL);
    for (const char *c = err; *c; c++)
        assert_true(*c >= 0x20 && *c < 0x7f);
    /* A tiny error buffer is truncated, not overrun. */
    char small[8];
    assert_int_equal(envelope_parse_request("[]", 2, &msg, small, sizeof(small)), -EINVAL);
    assert_int_equal(strlen(small), 7);
    assert_int_equal(envelope_parse_request("[]", 2, &msg, NULL, 0), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_request),
        cmocka_unit_test(test_valid_variants),
        cmocka_unit_test(test_reject_not_json),
        cmocka_unit_test(test_reject_invalid_utf8),
        cmocka_unit_test(test_reject_missing_parts),
        cmocka_unit_test(test_reject_execution_id),
        cmocka_unit_test(test_reject_worker_id),
        cmocka_unit_test(test_reject_action_ref_and_config),
        cmocka_unit_test(test_release),
        cmocka_unit_test(test_reject_ids_and_type),
        cmocka_unit_test(test_reject_deep_nesting),
        cmocka_unit_test(test_reject_oversized),
        cmocka_unit_test(test_reject_duplicate_keys),
        cmocka_unit_test(test_reason_is_one_clean_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
