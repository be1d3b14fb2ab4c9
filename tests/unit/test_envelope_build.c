/* Unit tests for mq/envelope: building outbound envelopes (ids, timestamp,
 * headers), uuid_v4, and that what is built parses as a request. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "mq/envelope.h"

#define CORR_ID "5E1A2B3C-4D5E-4F60-8172-93A4B5C6D7E8"

static bool is_uuid_v4(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!strchr("0123456789abcdef", s[i])) {
            return false;
        }
    }
    return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

static void test_uuid_v4(void **state)
{
    (void)state;
    char a[37], b[37];
    for (int i = 0; i < 100; i++) {
        uuid_v4(a);
        assert_true(is_uuid_v4(a));
    }
    uuid_v4(b);
    assert_string_not_equal(a, b);
}

/* True when s looks like 2026-01-27T10:00:00.123456Z. */
static bool is_rfc3339_utc(const char *s)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
    if (strlen(s) != strlen(shape))
        return false;
    for (size_t i = 0; shape[i]; i++)
        if (shape[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != shape[i])
            return false;
    return true;
}

static void test_build(void **state)
{
    (void)state;
    json_t *payload = json_pack("{s:i, s:s}", "execution_id", 42, "new_status", "running");
    char msg_id[37];
    json_t *env = envelope_build("ExecutionStatusChanged", CORR_ID, "trace-1", payload, msg_id);
    assert_non_null(env);
    assert_true(is_uuid_v4(json_string_value(json_object_get(env, "message_id"))));
    assert_string_equal(json_string_value(json_object_get(env, "message_id")), msg_id);
    assert_string_equal(json_string_value(json_object_get(env, "correlation_id")), CORR_ID);
    assert_string_equal(json_string_value(json_object_get(env, "message_type")),
                        "ExecutionStatusChanged");
    assert_string_equal(json_string_value(json_object_get(env, "version")), "1.0");
    assert_true(is_rfc3339_utc(json_string_value(json_object_get(env, "timestamp"))));
    json_t *headers = json_object_get(env, "headers");
    assert_true(json_is_object(headers));
    assert_true(json_is_integer(json_object_get(headers, "retry_count")));
    assert_int_equal(json_integer_value(json_object_get(headers, "retry_count")), 0);
    assert_string_equal(json_string_value(json_object_get(headers, "source_service")),
                        "attune-worker");
    assert_string_equal(json_string_value(json_object_get(headers, "trace_id")), "trace-1");
    assert_ptr_equal(json_object_get(env, "payload"), payload);
    assert_int_equal(json_object_size(env), 7);
    json_decref(env);
}

static void test_build_fresh_correlation(void **state)
{
    (void)state;
    static const char *const none[] = {NULL, ""};
    for (size_t i = 0; i < ARRAY_SIZE(none); i++) {
        json_t *env = envelope_build("ExecutionCompleted", none[i], none[i], json_object(), NULL);
        const char *mid = json_string_value(json_object_get(env, "message_id"));
        const char *cid = json_string_value(json_object_get(env, "correlation_id"));
        assert_true(is_uuid_v4(cid));
        assert_string_not_equal(mid, cid);
        assert_null(json_object_get(json_object_get(env, "headers"), "trace_id"));
        assert_int_equal(json_object_size(json_object_get(env, "headers")), 2);
        json_decref(env);
    }
}

/* What the worker builds, the executor side would parse: a request built
 * with envelope_build passes envelope_parse_request. */
static void test_build_then_parse(void **state)
{
    (void)state;
    json_t *payload = json_pack("{s:i, s:i, s:s, s:n}", "execution_id", 9, "worker_id", 3,
                                "action_ref", "core.echo", "config");
    json_t *env = envelope_build("ExecutionScheduled", NULL, "t", payload, NULL);
    char *text = json_dumps(env, JSON_COMPACT);
    struct execution_request_msg msg;
    char err[256] = "";
    assert_int_equal(envelope_parse_request(text, strlen(text), &msg, err, sizeof(err)), 0);
    assert_int_equal(msg.execution_id, 9);
    assert_string_equal(msg.correlation_id,
                        json_string_value(json_object_get(env, "correlation_id")));
    assert_string_equal(msg.trace_id, "t");
    envelope_request_free(&msg);
    free(text);
    json_decref(env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuid_v4),
        cmocka_unit_test(test_build),
        cmocka_unit_test(test_build_fresh_correlation),
        cmocka_unit_test(test_build_then_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
