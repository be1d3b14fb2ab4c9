/* Unit tests for executor/executor's pure parts: parsing captured stdout by output
 * format (json, yaml, jsonl, text) and the result of an execution that never
 * started (the result of one that ran: test_executor_result.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "executor/executor.h"

static json_t *load_json(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (!v)
        fail_msg("bad test JSON %s: %s", text, jerr.text);
    return v;
}

/* Parses text (given without its terminating NUL) and compares with want
 * (JSON text), or expects NULL when want is NULL. */
static void check_parse(const char *text, enum output_format format, const char *want)
{
    size_t len = strlen(text);
    /* An exact-size copy, so reading past len would be caught under ASan. */
    char *copy = xmalloc(len ? len : 1);
    memcpy(copy, text, len);
    json_t *got = execution_parse_output(copy, len, format);
    free(copy);
    if (!want) {
        if (got) {
            char *s = json_dumps(got, JSON_ENCODE_ANY);
            fail_msg("'%s' parsed as %s, want nothing", text, s);
        }
        return;
    }
    if (!got)
        fail_msg("'%s' did not parse as %s", text, output_format_name(format));
    json_t *expected = load_json(want);
    if (!json_equal(got, expected)) {
        char *s = json_dumps(got, JSON_ENCODE_ANY);
        fail_msg("'%s' parsed as %s, want %s", text, s, want);
    }
    json_decref(expected);
    json_decref(got);
}

static void test_json_whole(void **state)
{
    (void)state;
    check_parse("{\"a\": 1, \"b\": [true, null]}", OUTPUT_FORMAT_JSON,
                "{\"a\": 1, \"b\": [true, null]}");
    /* Pretty-printed over several lines, with surrounding blanks. */
    check_parse("\n{\n  \"a\": {\n    \"b\": \"c\"\n  }\n}\n\n", OUTPUT_FORMAT_JSON,
                "{\"a\": {\"b\": \"c\"}}");
    /* Any JSON value, not only objects. */
    check_parse("[1, 2, 3]\n", OUTPUT_FORMAT_JSON, "[1, 2, 3]");
    check_parse("42\n", OUTPUT_FORMAT_JSON, "42");
    check_parse("\"just a string\"", OUTPUT_FORMAT_JSON, "\"just a string\"");
    check_parse("null", OUTPUT_FORMAT_JSON, "null");
}

static void test_json_last_line_fallback(void **state)
{
    (void)state;
    /* Log text first, the result on the last line. */
    check_parse("starting up\nworking...\n{\"result\": \"ok\", \"n\": 3}\n", OUTPUT_FORMAT_JSON,
                "{\"result\": \"ok\", \"n\": 3}");
    /* Trailing blank lines and spaces after it. */
    check_parse("log line\n[1, 2]\n\n  \n", OUTPUT_FORMAT_JSON, "[1, 2]");
    check_parse("log line\r\n{\"a\": 1}\r\n", OUTPUT_FORMAT_JSON, "{\"a\": 1}");
    /* Two JSON lines: the whole is not JSON, the last line is. */
    check_parse("{\"first\": 1}\n{\"second\": 2}\n", OUTPUT_FORMAT_JSON, "{\"second\": 2}");
    /* Neither the whole nor the last line. */
    check_parse("{\"a\": 1}\nthe end\n", OUTPUT_FORMAT_JSON, NULL);
    check_parse("plain text", OUTPUT_FORMAT_JSON, NULL);
    check_parse("", OUTPUT_FORMAT_JSON, NULL);
    check_parse("\n\n", OUTPUT_FORMAT_JSON, NULL);
    check_parse("{\"truncated\": ", OUTPUT_FORMAT_JSON, NULL);
}

static void test_yaml_output(void **state)
{
    (void)state;
    check_parse("name: demo\ncount: 3\nitems:\n  - a\n  - '2'\nok: true\n", OUTPUT_FORMAT_YAML,
                "{\"name\": \"demo\", \"count\": 3, \"items\": [\"a\", \"2\"], \"ok\": true}");
    check_parse("[1, 2]", OUTPUT_FORMAT_YAML, "[1, 2]");
    /* JSON is YAML too. */
    check_parse("{\"a\": [1, {\"b\": null}]}", OUTPUT_FORMAT_YAML, "{\"a\": [1, {\"b\": null}]}");
    check_parse("a: [1, 2\nb: 3\n", OUTPUT_FORMAT_YAML, NULL);
    check_parse("key: 'unterminated\n", OUTPUT_FORMAT_YAML, NULL);
    /* Blank output is no document at all (not null). */
    check_parse("", OUTPUT_FORMAT_YAML, NULL);
    check_parse(" \n\t\n", OUTPUT_FORMAT_YAML, NULL);
}

static void test_jsonl_output(void **state)
{
    (void)state;
    check_parse("{\"a\": 1}\n{\"b\": 2}\n", OUTPUT_FORMAT_JSONL, "[{\"a\": 1}, {\"b\": 2}]");
    /* Blank lines are skipped; any JSON value per line; no final newline. */
    check_parse("1\n\n  \n\"two\"\r\n[3]\n{\"four\": 4}", OUTPUT_FORMAT_JSONL,
                "[1, \"two\", [3], {\"four\": 4}]");
    check_parse("{\"only\": true}", OUTPUT_FORMAT_JSONL, "[{\"only\": true}]");
    /* As Attune does: a line that does not parse is left out... */
    check_parse("{\"a\": 1}\nnot json\n{\"b\": 2}\n", OUTPUT_FORMAT_JSONL,
                "[{\"a\": 1}, {\"b\": 2}]");
    check_parse("{\"a\": 1}\n{\"b\": \n", OUTPUT_FORMAT_JSONL, "[{\"a\": 1}]");
    /* ...and output with no line that parses gives nothing. */
    check_parse("", OUTPUT_FORMAT_JSONL, NULL);
    check_parse("\n \n", OUTPUT_FORMAT_JSONL, NULL);
    check_parse("{\n\"a\": 1\n}\n", OUTPUT_FORMAT_JSONL, NULL);
}

static void test_text_gives_nothing(void **state)
{
    (void)state;
    check_parse("{\"a\": 1}", OUTPUT_FORMAT_TEXT, NULL);
    check_parse("hello\n", OUTPUT_FORMAT_TEXT, NULL);
    check_parse("", OUTPUT_FORMAT_TEXT, NULL);
}

static void test_failure_result(void **state)
{
    (void)state;
    json_t *r = execution_failure_result("parameter 'name' is required");
    assert_non_null(r);
    assert_true(json_is_object(r));
    assert_true(json_is_false(json_object_get(r, "succeeded")));
    json_t *exit_code = json_object_get(r, "exit_code");
    assert_non_null(exit_code);
    assert_true(json_is_null(exit_code));
    assert_true(json_is_integer(json_object_get(r, "duration_ms")));
    assert_int_equal(json_integer_value(json_object_get(r, "duration_ms")), 0);
    /* Attune leaves out an empty stdout. */
    assert_null(json_object_get(r, "stdout"));
    assert_string_equal(json_string_value(json_object_get(r, "stderr")), "");
    assert_string_equal(json_string_value(json_object_get(r, "error")),
                        "parameter 'name' is required");
    assert_true(json_is_false(json_object_get(r, "stdout_truncated")));
    assert_true(json_is_false(json_object_get(r, "stderr_truncated")));
    assert_true(json_is_integer(json_object_get(r, "stdout_bytes_truncated")));
    assert_int_equal(json_integer_value(json_object_get(r, "stdout_bytes_truncated")), 0);
    assert_true(json_is_integer(json_object_get(r, "stderr_bytes_truncated")));
    assert_int_equal(json_integer_value(json_object_get(r, "stderr_bytes_truncated")), 0);
    /* Nothing ran: no data, no signal. */
    assert_null(json_object_get(r, "data"));
    assert_null(json_object_get(r, "signal"));
    assert_int_equal(json_object_size(r), 9);
    json_decref(r);

    /* The message is copied; odd characters survive. */
    char msg[] = "bad \"value\"\n\xC3\xA9";
    r = execution_failure_result(msg);
    msg[0] = 'X';
    assert_string_equal(json_string_value(json_object_get(r, "error")), "bad \"value\"\n\xC3\xA9");
    json_decref(r);
}

/* PostgreSQL's jsonb refuses \u0000: such output must not become data that
 * would make the execution's result impossible to store. */
static void test_json_with_nul_is_not_data(void **state)
{
    (void)state;
    static const char text[] = "{\"a\": \"x\\u0000y\"}";
    assert_null(execution_parse_output(text, strlen(text), OUTPUT_FORMAT_JSON));
    static const char fine[] = "{\"a\": \"x\\u0001y\"}";
    json_t *v = execution_parse_output(fine, strlen(fine), OUTPUT_FORMAT_JSON);
    assert_non_null(v);
    json_decref(v);
}

static void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(execution_status_name(EXECUTION_COMPLETED), "completed");
    assert_string_equal(execution_status_name(EXECUTION_FAILED), "failed");
    assert_string_equal(execution_status_name(EXECUTION_TIMEOUT), "timeout");
    assert_string_equal(execution_status_name(EXECUTION_CANCELLED), "cancelled");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_whole),         cmocka_unit_test(test_json_last_line_fallback),
        cmocka_unit_test(test_yaml_output),        cmocka_unit_test(test_jsonl_output),
        cmocka_unit_test(test_text_gives_nothing), cmocka_unit_test(test_failure_result),
        cmocka_unit_test(test_status_names),       cmocka_unit_test(test_json_with_nul_is_not_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
