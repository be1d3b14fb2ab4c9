/* Tests of the marshal codec against the real thing: values written here are
 * read by python3's marshal module and values python3 writes are read here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/pymarshal.h"

/* Runs python3 with a program that prints marshal bytes as hex; decodes them. */
static json_t *decode_from_python(const char *expression, char *err, size_t errlen)
{
    char *cmd = xasprintf("/usr/bin/python3 -c 'import marshal,sys; "
                          "sys.stdout.write(marshal.dumps(%s).hex())'",
                          expression);
    FILE *p = popen(cmd, "r");
    free(cmd);
    assert_non_null(p);
    struct strbuf hex, bytes;
    strbuf_init(&hex);
    strbuf_init(&bytes);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
        strbuf_append(&hex, buf, n);
    assert_int_equal(pclose(p), 0);
    for (size_t i = 0; i + 1 < hex.len; i += 2) {
        unsigned v;
        sscanf(hex.data + i, "%2x", &v);
        strbuf_putc(&bytes, (char)v);
    }
    json_t *out = pymarshal_decode(bytes.data, bytes.len, err, errlen);
    strbuf_free(&hex);
    strbuf_free(&bytes);
    return out;
}

static void check_python_value(const char *expression, const char *expected_json)
{
    char err[256] = "";
    json_t *got = decode_from_python(expression, err, sizeof(err));
    if (!got)
        fail_msg("%s: %s", expression, err);
    json_t *want = json_loads(expected_json, JSON_DECODE_ANY, NULL);
    assert_non_null(want);
    if (!json_equal(got, want)) {
        char *text = json_dumps(got, JSON_ENCODE_ANY);
        fail_msg("%s decoded as %s, expected %s", expression, text, expected_json);
    }
    json_decref(got);
    json_decref(want);
}

static void test_decode_python_values(void **state)
{
    (void)state;
    check_python_value("None", "null");
    check_python_value("[True, False, 0, -1, 2**31, -2**31-1, 2**62, -2**63]",
                       "[true, false, 0, -1, 2147483648, -2147483649, 4611686018427387904, "
                       "-9223372036854775808]");
    check_python_value("{\"f\": 1.5, \"s\": \"caf\\u00e9\\n\", \"empty\": \"\"}",
                       "{\"f\": 1.5, \"s\": \"caf\\u00e9\\n\", \"empty\": \"\"}");
    check_python_value("{\"t\": (1, (2,)), \"set\": {7}, \"k\": {1: \"a\", None: \"b\"}}",
                       "{\"t\": [1, [2]], \"set\": [7], \"k\": {\"1\": \"a\", \"null\": \"b\"}}");
    /* Interned dict keys are written once and referred back to later. */
    check_python_value("[{\"key\": 1}, {\"key\": 2}, {\"key\": 3}]",
                       "[{\"key\": 1}, {\"key\": 2}, {\"key\": 3}]");
    /* Repeated objects are written once and referred back to. */
    check_python_value("(lambda x: [x, x, {\"y\": x}])([\"shared\", \"shared\"])",
                       "[[\"shared\",\"shared\"],[\"shared\",\"shared\"],"
                       "{\"y\":[\"shared\",\"shared\"]}]");
}

static void check_python_refuses(const char *expression, const char *needle)
{
    char err[256] = "";
    json_t *got = decode_from_python(expression, err, sizeof(err));
    assert_null(got);
    if (!strstr(err, needle))
        fail_msg("%s: error '%s' lacks '%s'", expression, err, needle);
}

static void test_decode_refuses_what_json_cannot_hold(void **state)
{
    (void)state;
    check_python_refuses("b\"bytes\"", "not JSON");
    check_python_refuses("float(\"nan\")", "NaN");
    check_python_refuses("2**64", "64 bits");
    check_python_refuses("\"a\\x00b\"", "NUL");
    check_python_refuses("{(1, 2): 3}", "dict key");
    check_python_refuses("(lambda: 0).__code__", "not JSON");
}

static void test_decode_rejects_broken_input(void **state)
{
    (void)state;
    char err[256];
    static const char truncated[] = {'[', 2, 0, 0, 0, 'i', 1, 0};
    assert_null(pymarshal_decode(truncated, sizeof(truncated), err, sizeof(err)));
    static const char bad_ref[] = {'r', 5, 0, 0, 0};
    assert_null(pymarshal_decode(bad_ref, sizeof(bad_ref), err, sizeof(err)));
    assert_non_null(strstr(err, "back-reference"));
    static const char trailing[] = {'N', 'N'};
    assert_null(pymarshal_decode(trailing, sizeof(trailing), err, sizeof(err)));
    /* A list of a billion items claimed in a few bytes. */
    static const char huge[] = {'[', 0, 0, 0, 0x40, 'N'};
    assert_null(pymarshal_decode(huge, sizeof(huge), err, sizeof(err)));
    /* 100 nested lists. */
    struct strbuf deep;
    strbuf_init(&deep);
    for (int i = 0; i < 100; i++)
        strbuf_append(&deep, "[\x01\x00\x00\x00", 5);
    strbuf_putc(&deep, 'N');
    assert_null(pymarshal_decode(deep.data, deep.len, err, sizeof(err)));
    assert_non_null(strstr(err, "deeply"));
    strbuf_free(&deep);
}

/* Each use of a shared list counts: 40 levels of [x, x] would be 2^40 values. */
static void test_decode_refuses_reference_bombs(void **state)
{
    (void)state;
    char err[256] = "";
    json_t *got = decode_from_python(
        "(lambda f: f(f, 40))(lambda f, n: [\"x\"] if n == 0 else (lambda y: [y, y])(f(f, n-1)))",
        err, sizeof(err));
    assert_null(got);
    assert_non_null(strstr(err, "too many"));
}

static void test_encode_read_by_python(void **state)
{
    (void)state;
    const char *text = "{\"s\": \"it's \\\"q\\\" $x `y` caf\\u00e9\\n\", \"i\": -5, "
                       "\"big\": 9007199254740993, \"neg\": -9223372036854775807, "
                       "\"f\": 0.25, \"t\": true, \"n\": null, \"l\": [1, [2, {}]], \"e\": []}";
    json_t *v = json_loads(text, 0, NULL);
    assert_non_null(v);
    struct strbuf bin, hex;
    strbuf_init(&bin);
    strbuf_init(&hex);
    pymarshal_encode(v, &bin);
    for (size_t i = 0; i < bin.len; i++)
        strbuf_printf(&hex, "%02x", (unsigned char)bin.data[i]);
    char *cmd = xasprintf("/usr/bin/python3 -c 'import json,marshal,sys; "
                          "print(json.dumps(marshal.loads(bytes.fromhex(sys.argv[1]))))' %s",
                          hex.data);
    FILE *p = popen(cmd, "r");
    char out[4096] = "";
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    assert_int_equal(pclose(p), 0);
    json_t *back = json_loads(out, 0, NULL);
    assert_non_null(back);
    assert_true(json_equal(back, v));
    json_decref(back);
    json_decref(v);
    free(cmd);
    strbuf_free(&bin);
    strbuf_free(&hex);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_python_values),
        cmocka_unit_test(test_decode_refuses_what_json_cannot_hold),
        cmocka_unit_test(test_decode_rejects_broken_input),
        cmocka_unit_test(test_decode_refuses_reference_bombs),
        cmocka_unit_test(test_encode_read_by_python),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
