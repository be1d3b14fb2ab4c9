/* Unit tests for executor/result: the status of an execution that ran, and
 * the keys and texts of its result object (Attune's and this worker's). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "executor/result.h"

#define DIR "/var/lib/attune/artifacts/w/42"

static json_t *load_json(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (!v)
        fail_msg("bad test JSON %s: %s", text, jerr.text);
    return v;
}

static struct proc_result exited(int code)
{
    return (struct proc_result){.exited = true, .exit_code = code, .duration_ms = 12};
}

static struct proc_result killed(int sig)
{
    return (struct proc_result){.signal = sig, .duration_ms = 1500};
}

static struct result_input input(const struct proc_result *pr, const char *out, const char *err)
{
    return (struct result_input){.dir = DIR,
                                 .output_format = OUTPUT_FORMAT_TEXT,
                                 .timeout_seconds = 7,
                                 .proc = pr,
                                 .stdout_text = out,
                                 .stderr_text = err};
}

/* The result of in, with the status execution_result_status gives. */
static json_t *build(const struct result_input *in, enum execution_status want)
{
    enum execution_status status = execution_result_status(in->proc, in->reply);
    assert_int_equal(status, want);
    return execution_result_new(in, status);
}

static const char *str(const json_t *r, const char *key)
{
    const char *s = json_string_value(json_object_get(r, key));
    if (!s)
        fail_msg("no string '%s' in the result", key);
    return s;
}

static json_int_t num(const json_t *r, const char *key)
{
    json_t *v = json_object_get(r, key);
    if (!json_is_integer(v))
        fail_msg("no integer '%s' in the result", key);
    return json_integer_value(v);
}

static void test_completed_text(void **state)
{
    (void)state;
    struct proc_result pr = exited(0);
    struct result_input in = input(&pr, "hello\n", "");
    json_t *r = build(&in, EXECUTION_COMPLETED);
    assert_true(json_is_true(json_object_get(r, "succeeded")));
    assert_int_equal(num(r, "exit_code"), 0);
    assert_int_equal(num(r, "duration_ms"), 12);
    assert_string_equal(str(r, "stdout"), "hello\n");
    assert_string_equal(str(r, "stderr"), "");
    assert_string_equal(str(r, "artifacts_dir"), DIR);
    assert_true(json_is_false(json_object_get(r, "stdout_truncated")));
    assert_int_equal(num(r, "stderr_bytes_truncated"), 0);
    static const char *const absent[] = {"data",      "error",     "signal",    "stderr_log",
                                         "cancelled", "timed_out", "queue_ack", "logs_incomplete"};
    for (size_t i = 0; i < ARRAY_SIZE(absent); i++)
        if (json_object_get(r, absent[i]))
            fail_msg("unexpected key %s", absent[i]);
    assert_int_equal(json_object_size(r), 10);
    json_decref(r);

    /* Nothing printed: no stdout key at all. */
    in = input(&pr, "", "a warning\n");
    r = build(&in, EXECUTION_COMPLETED);
    assert_null(json_object_get(r, "stdout"));
    assert_string_equal(str(r, "stderr_log"), DIR "/stderr.log");
    json_decref(r);
}

static void test_completed_parsed(void **state)
{
    (void)state;
    struct proc_result pr = exited(0);
    struct result_input in =
        input(&pr, "log line\n{\"n\": 1, \"queue_ack\": {\"ok\": true}}\n", "");
    in.output_format = OUTPUT_FORMAT_JSON;
    json_t *r = build(&in, EXECUTION_COMPLETED);
    json_t *want = load_json("{\"n\": 1, \"queue_ack\": {\"ok\": true}}");
    assert_true(json_equal(json_object_get(r, "data"), want));
    json_t *ack = load_json("{\"ok\": true}");
    assert_true(json_equal(json_object_get(r, "queue_ack"), ack));
    /* Output parsed into data is not repeated as stdout. */
    assert_null(json_object_get(r, "stdout"));
    json_decref(r);
    json_decref(want);
    json_decref(ack);

    /* Output that does not parse stays stdout, with no data. */
    in.stdout_text = "not json\n";
    r = build(&in, EXECUTION_COMPLETED);
    assert_null(json_object_get(r, "data"));
    assert_string_equal(str(r, "stdout"), "not json\n");
    json_decref(r);

    /* queue_ack is taken from an object only; a null one is copied. */
    in.stdout_text = "[{\"queue_ack\": 1}]";
    r = build(&in, EXECUTION_COMPLETED);
    assert_null(json_object_get(r, "queue_ack"));
    json_decref(r);
    in.stdout_text = "{\"queue_ack\": null}";
    r = build(&in, EXECUTION_COMPLETED);
    assert_true(json_is_null(json_object_get(r, "queue_ack")));
    json_decref(r);
}

/* A wrapper's value is data; stdout is the action's own and stays. */
static void test_wrapper_reply(void **state)
{
    (void)state;
    struct proc_result pr = exited(0);
    json_t *reply = load_json("{\"data\": {\"x\": 1}}");
    struct result_input in = input(&pr, "printed\n", "");
    in.output_format = OUTPUT_FORMAT_JSON;
    in.reply = reply;
    json_t *r = build(&in, EXECUTION_COMPLETED);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "data"), "x")), 1);
    assert_string_equal(str(r, "stdout"), "printed\n");
    json_decref(r);
    json_decref(reply);

    pr = exited(1);
    reply = load_json("{\"error\": \"ValueError: bad\"}");
    in.reply = reply;
    r = build(&in, EXECUTION_FAILED);
    assert_string_equal(str(r, "error"), "ValueError: bad");
    json_decref(r);
    json_decref(reply);

    pr = exited(0);
    pr.reply_truncated = true;
    in.reply = NULL;
    r = build(&in, EXECUTION_FAILED);
    assert_string_equal(str(r, "error"), "the return value is larger than 16 MiB");
    json_decref(r);
}

static void check_exit_error(const char *stderr_text, int code, const char *want)
{
    char *got = execution_exit_error(stderr_text, code);
    assert_string_equal(got, want);
    free(got);
}

static void test_exit_error_texts(void **state)
{
    (void)state;
    check_exit_error("", 5, "Command exited with code 5");
    check_exit_error("", -1, "Command exited with code -1");
    /* Up to 5 lines: stderr whole, newline and all. */
    check_exit_error("boom\n", 3, "boom\n");
    check_exit_error("  \n", 3, "  \n");
    check_exit_error("1\n2\n3\n4\n5\n", 3, "1\n2\n3\n4\n5\n");
    check_exit_error("1\n2\n3\n4\n5", 3, "1\n2\n3\n4\n5");
    /* More: its last line. */
    check_exit_error("1\n2\n3\n4\n5\n6", 3, "6");
    check_exit_error("1\n2\n3\n4\n5\nlast one\n", 3, "last one");
    check_exit_error("a\r\nb\r\nc\r\nd\r\ne\r\nf\r\n", 3, "f");
    check_exit_error("a\n\n\n\n\n\n", 3, "");
}

static void test_failed(void **state)
{
    (void)state;
    struct proc_result pr = exited(2);
    struct result_input in = input(&pr, "partial\n", "trace\nError: it broke\n");
    in.output_format = OUTPUT_FORMAT_JSON;
    json_t *r = build(&in, EXECUTION_FAILED);
    assert_true(json_is_false(json_object_get(r, "succeeded")));
    assert_int_equal(num(r, "exit_code"), 2);
    assert_string_equal(str(r, "error"), "trace\nError: it broke\n");
    assert_string_equal(str(r, "stdout"), "partial\n");
    assert_string_equal(str(r, "stderr_log"), DIR "/stderr.log");
    assert_null(json_object_get(r, "data"));
    json_decref(r);

    /* Blank stderr: no stderr_log, and it is still the error. */
    in.stderr_text = " \n";
    r = build(&in, EXECUTION_FAILED);
    assert_null(json_object_get(r, "stderr_log"));
    assert_string_equal(str(r, "error"), " \n");
    json_decref(r);

    /* Killed by a signal: exit code -1, and the signal as this worker adds it. */
    pr = killed(9);
    in.stderr_text = "";
    r = build(&in, EXECUTION_FAILED);
    assert_int_equal(num(r, "exit_code"), -1);
    assert_int_equal(num(r, "signal"), 9);
    assert_string_equal(str(r, "error"), "Command exited with code -1");
    json_decref(r);
}

static void test_timeout(void **state)
{
    (void)state;
    struct proc_result pr = killed(15);
    pr.timed_out = true;
    struct result_input in = input(&pr, "started\n", "");
    json_t *r = build(&in, EXECUTION_TIMEOUT);
    assert_true(json_is_false(json_object_get(r, "succeeded")));
    assert_true(json_is_true(json_object_get(r, "timed_out")));
    assert_null(json_object_get(r, "cancelled"));
    assert_int_equal(num(r, "exit_code"), -1);
    assert_int_equal(num(r, "signal"), 15);
    assert_string_equal(str(r, "error"), "Execution timed out after 7 seconds");
    assert_string_equal(str(r, "stdout"), "started\n");
    json_decref(r);

    /* Exiting by itself after SIGTERM changes nothing: Attune says -1. */
    pr = exited(0);
    pr.timed_out = true;
    r = build(&in, EXECUTION_TIMEOUT);
    assert_int_equal(num(r, "exit_code"), -1);
    assert_null(json_object_get(r, "signal"));
    json_decref(r);
}

static void test_cancelled(void **state)
{
    (void)state;
    struct proc_result pr = killed(15);
    pr.cancelled = true;
    struct result_input in = input(&pr, "", "");
    json_t *r = build(&in, EXECUTION_CANCELLED);
    assert_true(json_is_true(json_object_get(r, "cancelled")));
    assert_null(json_object_get(r, "timed_out"));
    assert_int_equal(num(r, "exit_code"), -1);
    assert_string_equal(str(r, "error"), "Execution cancelled by user");
    assert_null(json_object_get(r, "stdout"));
    json_decref(r);

    /* An action that traps SIGTERM and exits keeps its exit code. */
    pr = exited(0);
    pr.cancelled = true;
    r = build(&in, EXECUTION_CANCELLED);
    assert_int_equal(num(r, "exit_code"), 0);
    json_decref(r);
}

static void test_truncation_and_lost_output(void **state)
{
    (void)state;
    struct proc_result pr = exited(0);
    struct result_input in = input(&pr, "x\n", "");
    in.stdout_truncated = true;
    in.stdout_dropped = 4096;
    json_t *r = build(&in, EXECUTION_COMPLETED);
    assert_true(json_is_true(json_object_get(r, "stdout_truncated")));
    assert_int_equal(num(r, "stdout_bytes_truncated"), 4096);
    assert_null(json_object_get(r, "logs_incomplete"));
    json_decref(r);
    in.logs_incomplete = true;
    r = build(&in, EXECUTION_COMPLETED);
    assert_true(json_is_true(json_object_get(r, "logs_incomplete")));
    json_decref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_completed_text), cmocka_unit_test(test_completed_parsed),
        cmocka_unit_test(test_wrapper_reply),  cmocka_unit_test(test_exit_error_texts),
        cmocka_unit_test(test_failed),         cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_cancelled),      cmocka_unit_test(test_truncation_and_lost_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
