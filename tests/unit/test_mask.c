/* Unit tests for exec/mask: values split at every chunk boundary, the
 * encodings of a value, overlapping and nested values, the minimum length,
 * what is held back and flushed, large input, restoring masked text, JSON
 * values, and a masked output sink. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"
#include "exec/mask.h"
#include "exec/output.h"

static void append(void *userdata, const void *data, size_t len)
{
    strbuf_append(userdata, data, len);
}

static struct mask_set *set_of(const char *const *values, size_t n)
{
    struct mask_set *set = mask_set_new();
    for (size_t i = 0; i < n; i++)
        mask_set_add(set, values[i], strlen(values[i]));
    mask_set_build(set);
    return set;
}

/* text masked whole, as a new string */
static char *masked(const struct mask_set *set, const char *text)
{
    struct strbuf b;
    strbuf_init(&b);
    mask_buffer(set, text, strlen(text), &b);
    strbuf_putc(&b, '\0');
    return strbuf_detach(&b, NULL);
}

/* text fed in the chunks that cuts (sorted offsets) make */
static char *masked_in_pieces(const struct mask_set *set, const char *text, const size_t *cuts,
                              size_t ncuts)
{
    struct strbuf b;
    strbuf_init(&b);
    struct mask_stream *s = mask_stream_new(set);
    size_t pos = 0, len = strlen(text);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        mask_stream_write(s, text + pos, end - pos, append, &b);
        assert_true(mask_stream_held(s) < mask_set_max_len(set));
        pos = end;
    }
    mask_stream_flush(s, append, &b);
    assert_int_equal(mask_stream_held(s), 0);
    mask_stream_free(s);
    strbuf_putc(&b, '\0');
    return strbuf_detach(&b, NULL);
}

static void expect_masked(const struct mask_set *set, const char *text, const char *want)
{
    char *got = masked(set, text);
    assert_string_equal(got, want);
    free(got);
}

static void test_whole_values(void **state)
{
    (void)state;
    const char *values[] = {"s3cret-value", "abcd"};
    struct mask_set *set = set_of(values, 2);
    assert_int_equal(mask_set_count(set), 2);
    expect_masked(set, "token=s3cret-value; abcd!", "token=********; ********!");
    expect_masked(set, "nothing here", "nothing here");
    expect_masked(set, "abcdabcd", "****************");
    expect_masked(set, "", "");
    mask_set_free(set);
}

static void test_split_at_every_boundary(void **state)
{
    (void)state;
    const char *values[] = {"abcd", "correct horse battery"};
    struct mask_set *set = set_of(values, 2);
    const char *text = "x abcd y correct horse battery z abcd";
    const char *want = "x ******** y ******** z ********";
    size_t len = strlen(text);
    for (size_t i = 0; i <= len; i++) {
        for (size_t j = i; j <= len; j++) {
            size_t cuts[] = {i, j};
            char *got = masked_in_pieces(set, text, cuts, 2);
            assert_string_equal(got, want);
            free(got);
        }
    }
    /* One byte at a time. */
    size_t *cuts = xmalloc(len * sizeof(*cuts));
    for (size_t i = 0; i < len; i++)
        cuts[i] = i;
    char *got = masked_in_pieces(set, text, cuts, len);
    assert_string_equal(got, want);
    free(got);
    free(cuts);
    mask_set_free(set);
}

static void test_longest_at_earliest(void **state)
{
    (void)state;
    /* Nested: the longer wins where both start; overlapping: the earlier. */
    const char *values[] = {"abcd", "abcdef", "cdefgh", "bcdefghij"};
    struct mask_set *set = set_of(values, 4);
    expect_masked(set, "abcdef", "********");
    expect_masked(set, "abcdefgh", "********gh");
    expect_masked(set, "xbcdefghijk", "x********k");
    expect_masked(set, "abcdx", "********x");
    /* Held back: "abcd" may still become "abcdef". */
    struct strbuf b;
    strbuf_init(&b);
    struct mask_stream *s = mask_stream_new(set);
    mask_stream_write(s, "1 abcd", 6, append, &b);
    assert_int_equal(b.len, 2);
    assert_int_equal(mask_stream_held(s), 4);
    mask_stream_write(s, "ef 2", 4, append, &b);
    assert_int_equal(mask_stream_held(s), 0);
    mask_stream_flush(s, append, &b);
    assert_int_equal(b.len, strlen("1 ******** 2"));
    assert_memory_equal(b.data, "1 ******** 2", b.len);
    mask_stream_free(s);
    strbuf_free(&b);
    mask_set_free(set);
}

static void test_hold_back_and_flush(void **state)
{
    (void)state;
    const char *values[] = {"secret"};
    struct mask_set *set = set_of(values, 1);
    struct strbuf b;
    strbuf_init(&b);
    struct mask_stream *s = mask_stream_new(set);
    /* A line that cannot begin the secret is emitted at once. */
    mask_stream_write(s, "hello\n", 6, append, &b);
    assert_int_equal(b.len, 6);
    mask_stream_write(s, "a sec", 5, append, &b);
    assert_int_equal(mask_stream_held(s), 3);
    assert_int_equal(b.len, 8);
    /* The stream ends inside what could have been the secret: emitted as is. */
    mask_stream_flush(s, append, &b);
    assert_int_equal(mask_stream_held(s), 0);
    assert_memory_equal(b.data, "hello\na sec", 11);
    mask_stream_free(s);
    strbuf_free(&b);
    mask_set_free(set);
}

static void test_minimum_length(void **state)
{
    (void)state;
    const char *values[] = {"a", "12", "abc", "****", "********", "abcd"};
    struct mask_set *set = set_of(values, 6);
    assert_int_equal(mask_set_count(set), 1);
    expect_masked(set, "a 12 abc **** abcd", "a 12 abc **** ********");
    mask_set_free(set);
    struct mask_set *forms = mask_set_new();
    mask_set_add_secret(forms, "abc", 3);
    mask_set_build(forms);
    assert_int_equal(mask_set_count(forms), 0);
    expect_masked(forms, "abc YWJj 616263", "abc YWJj 616263");
    mask_set_free(forms);
}

static void test_encodings(void **state)
{
    (void)state;
    /* base64 "aGk/Pz4+IHTDqXN0IDEyMw==" holds '/' and '+'. */
    const char *value = "hi?\?>> t\xc3\xa9st 123";
    struct mask_set *set = mask_set_new();
    mask_set_add_secret(set, value, strlen(value));
    mask_set_build(set);
    const char *forms[] = {
        "hi?\?>> t\xc3\xa9st 123",          "aGk/Pz4+IHTDqXN0IDEyMw==",
        "aGk/Pz4+IHTDqXN0IDEyMw",           "aGk_Pz4-IHTDqXN0IDEyMw==",
        "aGk_Pz4-IHTDqXN0IDEyMw",           "hi%3F%3F%3E%3E%20t%C3%A9st%20123",
        "hi%3f%3f%3e%3e%20t%c3%a9st%20123", "hi%3F%3F%3E%3E+t%C3%A9st+123",
        "68693f3f3e3e2074c3a9737420313233", "68693F3F3E3E2074C3A9737420313233",
        "hi?\?>> t\\u00e9st 123",
    };
    for (size_t i = 0; i < ARRAY_SIZE(forms); i++) {
        char *text = xasprintf("[%s]", forms[i]);
        char *got = masked(set, text);
        assert_string_equal(got, "[********]");
        free(got);
        free(text);
    }
    /* Not a form: a space inside the hex. */
    expect_masked(set, "6869 3f3f3e3e2074c3a9737420313233", "6869 3f3f3e3e2074c3a9737420313233");
    mask_set_free(set);
}

static void test_lines_and_json_escapes(void **state)
{
    (void)state;
    const char *value = "-----KEY-----\nAAAAline2\r\nBBBB\"q\"";
    struct mask_set *set = mask_set_new();
    mask_set_add_secret(set, value, strlen(value));
    mask_set_build(set);
    expect_masked(set, "k: -----KEY-----\\nAAAAline2\\r\\nBBBB\\\"q\\\"", "k: ********");
    expect_masked(set, "AAAAline2\n", "********\n");
    mask_set_free(set);
}

static void test_large_input(void **state)
{
    (void)state;
    struct mask_set *set = mask_set_new();
    char value[32];
    for (int i = 0; i < 100; i++) {
        int n = snprintf(value, sizeof(value), "Secret-%03d-xyzzy", i);
        mask_set_add_secret(set, value, (size_t)n);
    }
    mask_set_build(set);
    size_t len = 4u << 20;
    char *text = xmalloc(len);
    for (size_t i = 0; i < len; i++)
        text[i] = (char)('a' + (i * 7 + i / 13) % 26);
    memcpy(text + 1000, "Secret-042-xyzzy", 16);
    memcpy(text + len - 20, "U2VjcmV0LTA0Mi14eXp6eQ", 22 - 2); /* cut: no match */
    memcpy(text + 65530, "Secret-099-xyzzy", 16);              /* across 64 KiB reads */
    struct strbuf b;
    strbuf_init(&b);
    struct mask_stream *s = mask_stream_new(set);
    for (size_t pos = 0; pos < len; pos += 65536)
        mask_stream_write(s, text + pos, len - pos < 65536 ? len - pos : 65536, append, &b);
    mask_stream_flush(s, append, &b);
    assert_int_equal(b.len, len - 2 * 16 + 2 * MASK_TEXT_LEN);
    assert_memory_equal(b.data + 1000, MASK_TEXT, MASK_TEXT_LEN);
    assert_memory_equal(b.data + 65530 - 8, MASK_TEXT, MASK_TEXT_LEN);
    mask_stream_free(s);
    strbuf_free(&b);
    free(text);
    mask_set_free(set);
}

static void test_unmask(void **state)
{
    (void)state;
    const char *values[] = {"p4ssw0rd", "t0ken-t0ken"};
    struct mask_set *set = set_of(values, 2);
    const char *text = "{\"a\": \"p4ssw0rd\", \"b\": \"********\", \"c\": \"t0ken-t0ken\"}";
    struct strbuf out, back;
    strbuf_init(&out);
    strbuf_init(&back);
    struct mask_stream *s = mask_stream_new(set);
    mask_stream_keep_matches(s, 16);
    mask_stream_write(s, text, strlen(text), append, &out);
    mask_stream_flush(s, append, &out);
    const struct mask_match *m;
    size_t n;
    assert_true(mask_stream_matches(s, &m, &n));
    assert_int_equal(n, 2);
    mask_unmask(set, out.data, out.len, m, n, &back);
    assert_int_equal(back.len, strlen(text));
    assert_memory_equal(back.data, text, back.len);
    /* Cut short (an output cap): the last mask is incomplete and stays. */
    strbuf_reset(&back);
    mask_unmask(set, out.data, out.len - 6, m, n, &back);
    assert_int_equal(back.len, out.len - 6 - 8 + 8);
    mask_stream_free(s);
    /* More matches than kept. */
    s = mask_stream_new(set);
    mask_stream_keep_matches(s, 1);
    strbuf_reset(&out);
    mask_stream_write(s, text, strlen(text), append, &out);
    assert_false(mask_stream_matches(s, &m, &n));
    mask_stream_free(s);
    strbuf_free(&out);
    strbuf_free(&back);
    mask_set_free(set);
}

static void test_json(void **state)
{
    (void)state;
    struct mask_set *set = mask_set_new();
    json_t *secret = json_pack("{s:s, s:i, s:b}", "user", "admin-user", "pin", 123456, "on", 1);
    mask_set_add_json(set, secret);
    mask_set_build(set);
    json_t *doc = json_pack("{s:s, s:[s, i], s:{s:s}, s:s}", "msg", "hi admin-user", "list",
                            "pin 123456", 7, "admin-user", "k", "true", "plain", "true");
    assert_true(mask_json(set, doc));
    char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text, "{\"********\":{\"k\":\"true\"},\"list\":[\"pin ********\",7],"
                              "\"msg\":\"hi ********\",\"plain\":\"true\"}");
    free(text);
    assert_false(mask_json(set, doc));
    json_decref(doc);
    json_decref(secret);
    mask_set_free(set);
}

static void test_masked_sink(void **state)
{
    (void)state;
    char dir[] = "/tmp/attune-test-mask-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *path = xasprintf("%s/out.log", dir);
    const char *values[] = {"abcdefgh"};
    struct mask_set *set = set_of(values, 1);
    struct output_sink sink;
    assert_int_equal(output_sink_open(&sink, path, 12), 0);
    output_sink_mask(&sink, set, 4);
    output_sink_write(&sink, "1 abcd", 6);
    output_sink_write(&sink, "efgh 2 abcdefgh", 15);
    output_sink_close(&sink);
    /* "1 ******** 2 ********": the cap counts masked bytes. */
    assert_int_equal(sink.kept, 12);
    assert_int_equal(sink.dropped, 21 - 12);
    struct strbuf b;
    strbuf_init(&b);
    assert_int_equal(read_file(path, 0, &b), 0);
    assert_true(b.len > 12);
    assert_memory_equal(b.data, "1 ******** 2", 12);
    const struct mask_match *m;
    size_t n;
    assert_true(output_sink_matches(&sink, &m, &n));
    assert_int_equal(n, 2);
    output_sink_release(&sink);
    strbuf_free(&b);
    mask_set_free(set);
    free(path);
    assert_int_equal(remove_tree(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_values),
        cmocka_unit_test(test_split_at_every_boundary),
        cmocka_unit_test(test_longest_at_earliest),
        cmocka_unit_test(test_hold_back_and_flush),
        cmocka_unit_test(test_minimum_length),
        cmocka_unit_test(test_encodings),
        cmocka_unit_test(test_lines_and_json_escapes),
        cmocka_unit_test(test_large_input),
        cmocka_unit_test(test_unmask),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_masked_sink),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
