/* Unit tests for core/yaml: typing of plain and quoted scalars, nested values,
 * error messages, the depth and alias-expansion limits, yaml_emit round trips
 * and the capped file reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"
#include "core/yaml.h"

static json_t *parse_ok(const char *text)
{
    json_t *v = NULL;
    char err[256] = "";
    int rc = yaml_parse(text, strlen(text), &v, err, sizeof(err));
    if (rc != 0)
        fail_msg("yaml_parse failed on '%s': %s", text, err);
    assert_non_null(v);
    return v;
}

/* Parses "v: TEXT" and returns v's value (a new reference). */
static json_t *parse_value(const char *text)
{
    char *doc = xasprintf("v: %s\n", text);
    json_t *root = parse_ok(doc);
    free(doc);
    assert_true(json_is_object(root));
    json_t *v = json_object_get(root, "v");
    if (!v)
        fail_msg("no value for '%s'", text);
    json_incref(v);
    json_decref(root);
    return v;
}

static void check_string(const char *text, const char *want)
{
    json_t *v = parse_value(text);
    if (!json_is_string(v))
        fail_msg("'%s' is not a string (type %d)", text, json_typeof(v));
    assert_string_equal(json_string_value(v), want);
    json_decref(v);
}

static void check_integer(const char *text, json_int_t want)
{
    json_t *v = parse_value(text);
    if (!json_is_integer(v))
        fail_msg("'%s' is not an integer (type %d)", text, json_typeof(v));
    assert_true(json_integer_value(v) == want);
    json_decref(v);
}

static void check_real(const char *text, double want)
{
    json_t *v = parse_value(text);
    if (!json_is_real(v))
        fail_msg("'%s' is not a real (type %d)", text, json_typeof(v));
    assert_true(json_real_value(v) == want);
    json_decref(v);
}

static void check_type(const char *text, json_type want)
{
    json_t *v = parse_value(text);
    if (json_typeof(v) != want)
        fail_msg("'%s' has type %d, want %d", text, json_typeof(v), want);
    json_decref(v);
}

/* Expects yaml_parse to fail; returns the message (static buffer). */
static const char *parse_error(const char *text, size_t len)
{
    static char err[512];
    json_t *v = (json_t *)1;
    err[0] = '\0';
    int rc = yaml_parse(text, len, &v, err, sizeof(err));
    assert_int_equal(rc, -EINVAL);
    assert_null(v);
    assert_true(err[0] != '\0');
    return err;
}

static void test_plain_scalars_typed(void **state)
{
    (void)state;
    check_type("null", JSON_NULL);
    check_type("Null", JSON_NULL);
    check_type("NULL", JSON_NULL);
    check_type("~", JSON_NULL);
    check_type("", JSON_NULL);
    check_type("true", JSON_TRUE);
    check_type("True", JSON_TRUE);
    check_type("TRUE", JSON_TRUE);
    check_type("false", JSON_FALSE);
    check_type("False", JSON_FALSE);
    check_type("FALSE", JSON_FALSE);
    check_integer("0", 0);
    check_integer("42", 42);
    check_integer("-7", -7);
    check_integer("+5", 5);
    check_integer("9223372036854775807", INT64_MAX);
    check_integer("-9223372036854775808", INT64_MIN);
    check_real("1.5", 1.5);
    check_real("-0.25", -0.25);
    check_real("+2.5", 2.5);
    check_real("1e3", 1000.0);
    check_real("6.02e+23", 6.02e23);
    check_real(".5", 0.5);
    /* Too big for an integer: still a number. */
    check_real("9223372036854775808", 9223372036854775808.0);
    /* Words YAML 1.1 would have typed are plain strings in 1.2. */
    check_string("yes", "yes");
    check_string("no", "no");
    check_string("on", "on");
    check_string("nULL", "nULL");
    check_string("tRUE", "tRUE");
    check_string("hello world", "hello world");
    check_string("12abc", "12abc");
    check_string("1.2.3", "1.2.3");
    check_string("-x", "-x");
    check_string("1e", "1e");
    check_string("inf", "inf");
    check_string("nan", "nan");
}

static void test_quoted_scalars_stay_strings(void **state)
{
    (void)state;
    check_string("'123'", "123");
    check_string("\"123\"", "123");
    check_string("'-4.5'", "-4.5");
    check_string("'1e3'", "1e3");
    check_string("'true'", "true");
    check_string("\"false\"", "false");
    check_string("'null'", "null");
    check_string("'~'", "~");
    check_string("''", "");
    check_string("\"\"", "");
    check_string("|\n  123\n", "123\n");
    check_string(">-\n  true\n", "true");
    /* An explicit tag is not needed to keep a quoted value a string, and a
     * plain one with the same text is typed. */
    check_integer("123", 123);
}

static void test_nested_values(void **state)
{
    (void)state;
    const char *doc = "name: demo\n"
                      "count: 3\n"
                      "ratio: 0.5\n"
                      "enabled: true\n"
                      "nothing:\n"
                      "tags: [a, 'b', 3]\n"
                      "nested:\n"
                      "  list:\n"
                      "    - x: 1\n"
                      "      y: [true, null]\n"
                      "    - - deep\n"
                      "      - 2\n"
                      "  empty_map: {}\n"
                      "  empty_list: []\n"
                      "  text: |\n"
                      "    line one\n"
                      "    line two\n"
                      "caf\xC3\xA9: \xE2\x82\xAC\n";
    json_t *got = parse_ok(doc);
    json_error_t jerr;
    json_t *want = json_loads("{\"name\":\"demo\",\"count\":3,\"ratio\":0.5,\"enabled\":true,"
                              "\"nothing\":null,\"tags\":[\"a\",\"b\",3],"
                              "\"nested\":{\"list\":[{\"x\":1,\"y\":[true,null]},[\"deep\",2]],"
                              "\"empty_map\":{},\"empty_list\":[],"
                              "\"text\":\"line one\\nline two\\n\"},"
                              "\"caf\\u00e9\":\"\\u20ac\"}",
                              0, &jerr);
    assert_non_null(want);
    if (!json_equal(got, want)) {
        char *s = json_dumps(got, JSON_SORT_KEYS);
        fail_msg("parsed as %s", s);
    }
    json_decref(got);
    json_decref(want);

    /* Top-level sequences and scalars, and an empty document. */
    json_t *v = parse_ok("- 1\n- two\n");
    assert_true(json_is_array(v));
    assert_int_equal(json_array_size(v), 2);
    json_decref(v);
    v = parse_ok("just text\n");
    assert_string_equal(json_string_value(v), "just text");
    json_decref(v);
    v = parse_ok("");
    assert_true(json_is_null(v));
    json_decref(v);
    v = parse_ok("# only a comment\n");
    assert_true(json_is_null(v));
    json_decref(v);
    /* Only the first document is read. */
    v = parse_ok("a: 1\n---\nb: 2\n");
    assert_int_equal(json_integer_value(json_object_get(v, "a")), 1);
    assert_null(json_object_get(v, "b"));
    json_decref(v);
    /* Anchors and aliases share values. */
    v = parse_ok("base: &b {x: 1}\ncopy: *b\n");
    assert_true(json_equal(json_object_get(v, "base"), json_object_get(v, "copy")));
    json_decref(v);
}

static void test_errors_name_the_line(void **state)
{
    (void)state;
    const char *text = "a: 1\nb: 2\nc: [1, 2\nd: 4\n";
    const char *err = parse_error(text, strlen(text));
    if (!strstr(err, "line "))
        fail_msg("message '%s' has no line", err);
    /* The flow sequence opened on line 3 is broken on line 4 or later. */
    int line = 0;
    assert_int_equal(sscanf(strstr(err, "line "), "line %d", &line), 1);
    assert_true(line >= 3 && line <= 5);

    text = "ok: 1\n  bad indent: 2\n";
    err = parse_error(text, strlen(text));
    assert_non_null(strstr(err, "line 2"));

    text = "a: 1\nb: 'unterminated\n";
    err = parse_error(text, strlen(text));
    assert_non_null(strstr(err, "line "));

    /* A mapping used as a key is refused with its line. */
    text = "x: 1\n? [a, b]\n: v\n";
    err = parse_error(text, strlen(text));
    assert_non_null(strstr(err, "line 2"));

    /* Undefined alias. */
    text = "a: *nope\n";
    err = parse_error(text, strlen(text));
    assert_non_null(strstr(err, "line 1"));
}

static char *nested_sequences(int levels)
{
    struct strbuf sb;
    strbuf_init(&sb);
    for (int i = 0; i < levels; i++)
        strbuf_putc(&sb, '[');
    strbuf_puts(&sb, "1");
    for (int i = 0; i < levels; i++)
        strbuf_putc(&sb, ']');
    return strbuf_detach(&sb, NULL);
}

static char *nested_mappings(int levels)
{
    struct strbuf sb;
    strbuf_init(&sb);
    for (int i = 0; i < levels; i++) {
        for (int k = 0; k < i; k++)
            strbuf_puts(&sb, "  ");
        strbuf_puts(&sb, i + 1 < levels ? "k:\n" : "k: leaf\n");
    }
    return strbuf_detach(&sb, NULL);
}

static void test_depth_limit(void **state)
{
    (void)state;
    char *ok = nested_sequences(10);
    json_t *v = parse_ok(ok);
    json_t *cur = v;
    for (int i = 0; i < 10; i++) {
        assert_true(json_is_array(cur));
        cur = json_array_get(cur, 0);
    }
    assert_int_equal(json_integer_value(cur), 1);
    json_decref(v);
    free(ok);

    ok = nested_mappings(10);
    v = parse_ok(ok);
    json_decref(v);
    free(ok);

    char *deep = nested_sequences(65);
    const char *err = parse_error(deep, strlen(deep));
    assert_non_null(strstr(err, "line 1"));
    assert_non_null(strstr(err, "64"));
    free(deep);

    deep = nested_mappings(65);
    err = parse_error(deep, strlen(deep));
    assert_non_null(strstr(err, "line "));
    free(deep);

    /* Far deeper still fails cleanly (no stack exhaustion). */
    deep = nested_sequences(5000);
    parse_error(deep, strlen(deep));
    free(deep);
}

static void test_alias_bomb_rejected(void **state)
{
    (void)state;
    /* "Billion laughs": 10^9 strings if every alias were expanded. */
    const char *bomb = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
                       "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                       "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                       "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                       "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                       "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                       "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                       "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
                       "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
    const char *err = parse_error(bomb, strlen(bomb));
    assert_non_null(strstr(err, "expands"));

    /* A few aliases well under the budget are fine. */
    const char *small = "a: &a [x, y]\nb: [*a, *a, *a]\n";
    json_t *v = parse_ok(small);
    assert_int_equal(json_array_size(json_object_get(v, "b")), 3);
    json_decref(v);

    /* An alias to its own enclosing node is a cycle: rejected, not a hang. */
    const char *cycle = "&a [*a]\n";
    parse_error(cycle, strlen(cycle));
}

static void expect_round_trip(json_t *value)
{
    struct strbuf out;
    strbuf_init(&out);
    assert_int_equal(yaml_emit(value, &out), 0);
    assert_non_null(out.data);
    json_t *back = NULL;
    char err[256] = "";
    int rc = yaml_parse(out.data, out.len, &back, err, sizeof(err));
    if (rc != 0)
        fail_msg("emitted YAML does not parse (%s):\n%s", err, out.data);
    if (!json_equal(value, back)) {
        char *want = json_dumps(value, JSON_ENCODE_ANY);
        char *got = json_dumps(back, JSON_ENCODE_ANY);
        fail_msg("round trip changed %s into %s via:\n%s", want, got, out.data);
    }
    json_decref(back);
    strbuf_free(&out);
}

static void test_emit_round_trip_strings(void **state)
{
    (void)state;
    const char *strings[] = {
        "123",
        "-1",
        "1.5",
        "1e3",
        ".5",
        "+5",
        "0x1F",
        "true",
        "false",
        "True",
        "null",
        "Null",
        "~",
        "",
        " ",
        "a: b",
        "a:b",
        "key: value\nother: 2",
        "- item",
        "-",
        "? q",
        "#comment",
        "a #b",
        "multi\nline",
        "trailing\n",
        "\nleading",
        "  indented",
        "trailing  ",
        "tab\there",
        "cr\rhere",
        "'single'",
        "\"double\"",
        "back\\slash",
        "[1, 2]",
        "{a: 1}",
        "&anchor",
        "*alias",
        "!tag",
        "%directive",
        "@at",
        "`tick",
        "|",
        ">",
        "---",
        "...",
        "plain words",
        "path/to/file.txt",
        "under_score",
        "caf\xC3\xA9",
        "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E",
        "\xF0\x9F\x98\x80 emoji",
        "bell\x07",
        "nel\xC2\x85",
        "ls\xE2\x80\xA8",
    };
    for (size_t i = 0; i < ARRAY_SIZE(strings); i++) {
        json_t *s = json_string(strings[i]);
        assert_non_null(s);
        expect_round_trip(s);
        json_t *obj = json_pack("{s:O, s:[O]}", "v", s, "list", s);
        expect_round_trip(obj);
        /* The string as a key, too. */
        json_t *keyed = json_object();
        json_object_set(keyed, strings[i], s);
        expect_round_trip(keyed);
        json_decref(keyed);
        json_decref(obj);
        json_decref(s);
    }
    /* A long string with no natural break stays one value. */
    char *long_text = xmalloc(5001);
    memset(long_text, 'x', 5000);
    long_text[5000] = '\0';
    json_t *s = json_string(long_text);
    expect_round_trip(s);
    json_decref(s);
    free(long_text);
}

static void test_emit_round_trip_values(void **state)
{
    (void)state;
    const char *docs[] = {
        "null",
        "true",
        "false",
        "0",
        "-42",
        "9223372036854775807",
        "-9223372036854775808",
        "1.5",
        "-0.25",
        "0.1",
        "1e300",
        "[]",
        "{}",
        "[1, \"1\", true, \"true\", null, \"null\", [], {}]",
        "{\"a\": {\"b\": {\"c\": [1, {\"d\": \"e\"}]}}, \"empty\": \"\", \"list\": [[]]}",
        "{\"123\": 1, \"true\": 2, \"\": 3, \"a: b\": 4}",
    };
    for (size_t i = 0; i < ARRAY_SIZE(docs); i++) {
        json_error_t jerr;
        json_t *v = json_loads(docs[i], JSON_DECODE_ANY, &jerr);
        if (!v)
            fail_msg("bad test JSON %s: %s", docs[i], jerr.text);
        expect_round_trip(v);
        json_decref(v);
    }
}

static void test_emit_appends_block_style(void **state)
{
    (void)state;
    struct strbuf out;
    strbuf_init(&out);
    strbuf_puts(&out, "# head\n");
    json_t *v = json_pack("{s:s, s:[i,i]}", "name", "x", "list", 1, 2);
    assert_int_equal(yaml_emit(v, &out), 0);
    assert_true(str_starts_with(out.data, "# head\n"));
    /* Block style: one key per line, list items as "- ". */
    assert_non_null(strstr(out.data, "\nlist:\n"));
    assert_non_null(strstr(out.data, "- 1\n"));
    assert_null(strchr(out.data, '{'));
    json_decref(v);
    strbuf_free(&out);
}

/* The cap is exact: a file of max_bytes loads, one byte more does not. */
static void test_load_file_cap_and_messages(void **state)
{
    (void)state;
    char dir[] = "/tmp/attune-test-yaml-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *path = xasprintf("%s/f.yaml", dir);
    char err[256] = "";
    json_t *v = NULL;
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("a: 1\n", f);
    fclose(f);
    assert_int_equal(yaml_load_file(path, 5, &v, err, sizeof(err)), 0);
    assert_int_equal(json_integer_value(json_object_get(v, "a")), 1);
    json_decref(v);
    assert_int_equal(yaml_load_file(path, 4, &v, err, sizeof(err)), -EFBIG);
    assert_null(v);
    char *want = xasprintf("%s: larger than 4 bytes", path);
    assert_string_equal(err, want);
    free(want);

    f = fopen(path, "w");
    assert_non_null(f);
    fputs("a: [\n", f);
    fclose(f);
    assert_int_equal(yaml_load_file(path, 100, &v, err, sizeof(err)), -EINVAL);
    assert_true(str_starts_with(err, path) && strstr(err, ": line ") == err + strlen(path));

    assert_int_equal(unlink(path), 0);
    assert_int_equal(yaml_load_file(path, 100, &v, err, sizeof(err)), -ENOENT);
    want = xasprintf("%s: %s", path, strerror(ENOENT));
    assert_string_equal(err, want);
    free(want);
    free(path);
    assert_int_equal(remove_tree(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_scalars_typed),
        cmocka_unit_test(test_quoted_scalars_stay_strings),
        cmocka_unit_test(test_nested_values),
        cmocka_unit_test(test_errors_name_the_line),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_alias_bomb_rejected),
        cmocka_unit_test(test_emit_round_trip_strings),
        cmocka_unit_test(test_emit_round_trip_values),
        cmocka_unit_test(test_emit_appends_block_style),
        cmocka_unit_test(test_load_file_cap_and_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
