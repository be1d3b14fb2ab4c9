/* Unit tests for core/util: strbuf, strv and strv_setenv, UTF-8 sanitising,
 * str_trim, parse_int64, mkdir_p and remove_tree, read_file with a limit,
 * set_error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"

#define FFFD "\xEF\xBF\xBD"

static char tmpdir[] = "/tmp/attune-test-util-XXXXXX";

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return remove_tree(tmpdir) == 0 ? 0 : -1;
}

static void write_bytes(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write_all(fd, data, len), 0);
    assert_int_equal(close(fd), 0);
}

/* True when s[0..len) is well-formed UTF-8 with no NUL (checked here
 * independently of the code under test). */
static bool utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp, min;
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 2, cp = c & 0x1F, min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 3, cp = c & 0x0F, min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (i + n > len)
            return false;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n;
    }
    return true;
}

/* Sanitises input and checks the output is exactly want. */
static void expect_sanitized(const char *in, size_t len, const char *want)
{
    struct strbuf out;
    strbuf_init(&out);
    utf8_sanitize(in, len, &out);
    assert_non_null(out.data);
    assert_int_equal(strlen(out.data), out.len);
    if (out.len != strlen(want) || memcmp(out.data, want, out.len) != 0)
        fail_msg("sanitised output differs (got %zu bytes, want %zu)", out.len, strlen(want));
    strbuf_free(&out);
}

/* Sanitises input that holds a broken sequence between "<" and ">": the
 * output must be valid UTF-8, keep both markers, hold at least one U+FFFD
 * between them and nothing else. */
static void expect_replaced(const char *in, size_t len)
{
    struct strbuf out;
    strbuf_init(&out);
    utf8_sanitize(in, len, &out);
    assert_true(utf8_valid((const unsigned char *)out.data, out.len));
    assert_true(out.len >= 5);
    assert_int_equal(out.data[0], '<');
    assert_int_equal(out.data[out.len - 1], '>');
    size_t middle = out.len - 2;
    assert_true(middle > 0 && middle % 3 == 0);
    for (size_t i = 1; i + 1 < out.len; i += 3)
        assert_memory_equal(out.data + i, FFFD, 3);
    strbuf_free(&out);
}

static void test_strbuf_append_and_printf(void **state)
{
    (void)state;
    struct strbuf sb;
    strbuf_init(&sb);
    strbuf_append(&sb, "ab", 2);
    strbuf_puts(&sb, "cd");
    strbuf_putc(&sb, 'e');
    strbuf_append(&sb, "\0z", 2); /* binary data keeps its NUL */
    assert_int_equal(sb.len, 7);
    assert_memory_equal(sb.data, "abcde\0z", 8); /* and a terminator after len */
    strbuf_reset(&sb);
    assert_int_equal(sb.len, 0);
    assert_string_equal(sb.data, "");

    strbuf_printf(&sb, "%s=%d", "n", 42);
    strbuf_printf(&sb, "[%05.1f]", 2.5);
    assert_string_equal(sb.data, "n=42[002.5]");
    assert_int_equal(sb.len, strlen("n=42[002.5]"));

    /* Growth well past the first allocation keeps every byte. */
    strbuf_reset(&sb);
    for (int i = 0; i < 10000; i++)
        strbuf_printf(&sb, "%04d", i);
    assert_int_equal(sb.len, 40000);
    assert_memory_equal(sb.data + 4 * 9999, "9999", 5);
    assert_memory_equal(sb.data + 4 * 1234, "1234", 4);
    strbuf_free(&sb);
    assert_null(sb.data);
    assert_int_equal(sb.len, 0);
}

static void test_strbuf_detach(void **state)
{
    (void)state;
    struct strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, "hello");
    size_t len = 0;
    char *s = strbuf_detach(&sb, &len);
    assert_string_equal(s, "hello");
    assert_int_equal(len, 5);
    /* The buffer is left empty and usable. */
    assert_null(sb.data);
    assert_int_equal(sb.len, 0);
    strbuf_puts(&sb, "again");
    assert_string_equal(sb.data, "again");
    strbuf_free(&sb);
    free(s);

    /* Detaching a buffer that never held anything gives a valid "" string. */
    strbuf_init(&sb);
    len = 99;
    s = strbuf_detach(&sb, &len);
    assert_non_null(s);
    assert_string_equal(s, "");
    assert_int_equal(len, 0);
    free(s);

    /* An empty printf on an empty buffer, then detach (len may be NULL). */
    strbuf_init(&sb);
    strbuf_printf(&sb, "%s", "");
    s = strbuf_detach(&sb, NULL);
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);
}

static void test_strv(void **state)
{
    (void)state;
    struct strv v;
    strv_init(&v);
    assert_int_equal(v.len, 0);
    assert_non_null(v.items);
    assert_null(v.items[0]);
    char owned[] = "owned";
    strv_push(&v, "a");
    strv_push_owned(&v, xstrdup(owned));
    for (int i = 0; i < 20; i++) {
        char *s = xasprintf("item%d", i);
        strv_push(&v, s);
        free(s);
    }
    assert_int_equal(v.len, 22);
    assert_string_equal(v.items[0], "a");
    assert_string_equal(v.items[1], "owned");
    assert_string_equal(v.items[21], "item19");
    assert_null(v.items[22]); /* always NULL-terminated, usable as argv */
    strv_free(&v);
    assert_null(v.items);
    assert_int_equal(v.len, 0);
}

static void test_strv_setenv_replaces(void **state)
{
    (void)state;
    struct strv v;
    strv_init(&v);
    strv_setenv(&v, "PATH", "/bin");
    strv_setenv(&v, "PATHX", "x");
    strv_setenv(&v, "HOME", "/root");
    strv_setenv(&v, "PAT", "short");
    assert_int_equal(v.len, 4);
    /* Same name: replaced in place, neither the longer nor the shorter
     * name that shares a prefix is touched. */
    strv_setenv(&v, "PATH", "/usr/bin:/bin");
    strv_setenv(&v, "HOME", "");
    assert_int_equal(v.len, 4);
    assert_string_equal(v.items[0], "PATH=/usr/bin:/bin");
    assert_string_equal(v.items[1], "PATHX=x");
    assert_string_equal(v.items[2], "HOME=");
    assert_string_equal(v.items[3], "PAT=short");
    assert_null(v.items[4]);
    /* A value holding '=' is kept whole. */
    strv_setenv(&v, "EQ", "a=b=c");
    assert_string_equal(v.items[4], "EQ=a=b=c");
    strv_setenv(&v, "EQ", "d");
    assert_string_equal(v.items[4], "EQ=d");
    assert_int_equal(v.len, 5);
    strv_free(&v);
}

static void test_utf8_valid_kept(void **state)
{
    (void)state;
    const char *valid = "plain ASCII, caf\xC3\xA9, \xE2\x82\xAC 5, \xE6\x97\xA5\xE6\x9C\xAC, "
                        "\xF0\x9F\x98\x80, edges \xC2\x80 \xDF\xBF \xE0\xA0\x80 \xEF\xBF\xBF "
                        "\xF0\x90\x80\x80 \xF4\x8F\xBF\xBF \xED\x9F\xBF \xEE\x80\x80";
    expect_sanitized(valid, strlen(valid), valid);
    expect_sanitized("", 0, "");
    /* Only len bytes are read. */
    expect_sanitized("abcdef", 3, "abc");

    /* Appends to what the buffer already holds. */
    struct strbuf out;
    strbuf_init(&out);
    strbuf_puts(&out, "pre:");
    utf8_sanitize("\xC3\xA9", 2, &out);
    assert_string_equal(out.data, "pre:\xC3\xA9");
    strbuf_free(&out);

    /* An empty input still leaves a terminated string. */
    strbuf_init(&out);
    utf8_sanitize("", 0, &out);
    assert_non_null(out.data);
    assert_string_equal(out.data, "");
    strbuf_free(&out);
}

static void test_utf8_invalid_replaced(void **state)
{
    (void)state;
    /* Single bad bytes: exactly one U+FFFD each, neighbours kept. */
    expect_sanitized("a\xFF"
                     "b",
                     3, "a" FFFD "b");
    expect_sanitized("a\x80"
                     "b",
                     3, "a" FFFD "b");
    expect_sanitized("\xFE", 1, FFFD);
    expect_sanitized("x\xF8\x88\x80\x80\x80y", 7, "x" FFFD FFFD FFFD FFFD FFFD "y");
    /* NUL becomes U+FFFD so the result fits a JSON/C string. */
    expect_sanitized("a\0b", 3, "a" FFFD "b");
    expect_sanitized("\0", 1, FFFD);

    /* Overlong encodings of '/', NUL and U+07FF / U+FFFF. */
    expect_replaced("<\xC0\xAF>", 4);
    expect_replaced("<\xC1\xBF>", 4);
    expect_replaced("<\xC0\x80>", 4);
    expect_replaced("<\xE0\x80\xAF>", 5);
    expect_replaced("<\xE0\x9F\xBF>", 5);
    expect_replaced("<\xF0\x80\x80\xAF>", 6);
    expect_replaced("<\xF0\x8F\xBF\xBF>", 6);
    /* UTF-16 surrogates (high, low, a pair) and beyond U+10FFFF. */
    expect_replaced("<\xED\xA0\x80>", 5);
    expect_replaced("<\xED\xBF\xBF>", 5);
    expect_replaced("<\xED\xA0\xBD\xED\xB8\x80>", 8);
    expect_replaced("<\xF4\x90\x80\x80>", 6);
    expect_replaced("<\xF5\x80\x80\x80>", 6);
    /* Truncated sequences, in the middle and at the very end. */
    expect_replaced("<\xC3>", 3);
    expect_replaced("<\xE2\x82>", 4);
    expect_replaced("<\xF0\x9F\x98>", 5);

    struct strbuf out;
    strbuf_init(&out);
    utf8_sanitize("ok\xE2\x82", 4, &out);
    assert_true(utf8_valid((const unsigned char *)out.data, out.len));
    assert_true(str_starts_with(out.data, "ok" FFFD));
    strbuf_free(&out);

    /* A valid character right after a bad byte is kept. */
    expect_sanitized("\xC3\xC3\xA9", 3, FFFD "\xC3\xA9");
    expect_sanitized("\xE2\x82\xE2\x82\xAC", 5, FFFD FFFD "\xE2\x82\xAC");
}

/* White space goes at both ends (every ASCII kind), never inside, and a blank
 * text is left empty. */
static void test_str_trim(void **state)
{
    (void)state;
    const char *text = " \t\n\v\f\ra b\r\n";
    const char *s = text;
    size_t len = strlen(text);
    str_trim(&s, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "a b", 3);
    s = " \n ";
    len = 3;
    str_trim(&s, &len);
    assert_int_equal(len, 0);
    s = "x";
    len = 1;
    str_trim(&s, &len);
    assert_int_equal(len, 1);
    assert_int_equal(*s, 'x');
}

static void test_parse_int64(void **state)
{
    (void)state;
    int64_t v = 0;
    assert_true(parse_int64("0", &v));
    assert_int_equal(v, 0);
    assert_true(parse_int64("42", &v));
    assert_int_equal(v, 42);
    assert_true(parse_int64("-17", &v));
    assert_int_equal(v, -17);
    assert_true(parse_int64("007", &v));
    assert_int_equal(v, 7);
    assert_true(parse_int64("9223372036854775807", &v));
    assert_true(v == INT64_MAX);
    assert_true(parse_int64("-9223372036854775808", &v));
    assert_true(v == INT64_MIN);

    v = 1234;
    const char *bad[] = {"",
                         "-",
                         "+",
                         "abc",
                         "12abc",
                         "1.5",
                         "1e3",
                         "0x10",
                         "12 ",
                         "1 2",
                         "--1",
                         "9223372036854775808",
                         "-9223372036854775809",
                         "99999999999999999999999"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        if (parse_int64(bad[i], &v))
            fail_msg("parse_int64 accepted '%s'", bad[i]);
    }
    assert_false(parse_int64(NULL, &v));
    assert_int_equal(v, 1234); /* untouched on failure */
}

static void test_mkdir_p_and_remove_tree(void **state)
{
    (void)state;
    char *deep = xasprintf("%s/a/b/c/d", tmpdir);
    assert_int_equal(mkdir_p(deep, 0700), 0);
    struct stat st;
    assert_int_equal(stat(deep, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    char *mid = xasprintf("%s/a/b", tmpdir);
    assert_int_equal(stat(mid, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    /* Existing directories are fine, and a trailing slash too. */
    assert_int_equal(mkdir_p(deep, 0700), 0);
    char *slash = xasprintf("%s/a/x/", tmpdir);
    assert_int_equal(mkdir_p(slash, 0755), 0);
    assert_int_equal(stat(slash, &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    /* A file in the way is an error. */
    char *file = xasprintf("%s/a/file", tmpdir);
    write_bytes(file, "x", 1);
    char *under_file = xasprintf("%s/a/file/sub", tmpdir);
    assert_int_equal(mkdir_p(under_file, 0700), -ENOTDIR);

    /* remove_tree takes files, nested directories and symlinks, and does not
     * follow a symlink out of the tree. */
    char *outside = xasprintf("%s/outside", tmpdir);
    assert_int_equal(mkdir(outside, 0700), 0);
    char *keep = xasprintf("%s/outside/keep", tmpdir);
    write_bytes(keep, "keep", 4);
    char *link = xasprintf("%s/a/b/c/link", tmpdir);
    assert_int_equal(symlink(outside, link), 0);
    char *inner = xasprintf("%s/a/b/c/d/f", tmpdir);
    write_bytes(inner, "data", 4);

    char *top = xasprintf("%s/a", tmpdir);
    assert_int_equal(remove_tree(top), 0);
    assert_int_equal(lstat(top, &st), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(stat(keep, &st), 0);
    /* Removing what is not there reports it. */
    assert_int_equal(remove_tree(top), -ENOENT);

    free(deep);
    free(mid);
    free(slash);
    free(file);
    free(under_file);
    free(outside);
    free(keep);
    free(link);
    free(inner);
    free(top);
}

static void test_read_file(void **state)
{
    (void)state;
    char *path = xasprintf("%s/data", tmpdir);
    size_t size = 200000; /* more than one read chunk */
    char *data = xmalloc(size);
    for (size_t i = 0; i < size; i++)
        data[i] = (char)('a' + i % 26);
    data[10] = '\0'; /* binary content is kept as is */
    write_bytes(path, data, size);

    struct strbuf sb;
    strbuf_init(&sb);
    assert_int_equal(read_file(path, 0, &sb), 0);
    assert_int_equal(sb.len, size);
    assert_memory_equal(sb.data, data, size);
    assert_int_equal(sb.data[size], '\0');
    strbuf_free(&sb);

    /* A limit keeps the first max bytes only. */
    size_t limits[] = {1, 100, 65536, 65537, 199999, 200000, 300000};
    for (size_t i = 0; i < ARRAY_SIZE(limits); i++) {
        strbuf_init(&sb);
        assert_int_equal(read_file(path, limits[i], &sb), 0);
        size_t want = limits[i] < size ? limits[i] : size;
        assert_int_equal(sb.len, want);
        assert_memory_equal(sb.data, data, want);
        strbuf_free(&sb);
    }

    /* An empty file gives an empty, terminated string. */
    char *empty = xasprintf("%s/empty", tmpdir);
    write_bytes(empty, "", 0);
    strbuf_init(&sb);
    assert_int_equal(read_file(empty, 10, &sb), 0);
    assert_non_null(sb.data);
    assert_string_equal(sb.data, "");
    strbuf_free(&sb);

    /* Errors come back as -errno. */
    char *missing = xasprintf("%s/missing", tmpdir);
    strbuf_init(&sb);
    assert_int_equal(read_file(missing, 0, &sb), -ENOENT);
    strbuf_free(&sb);
    strbuf_init(&sb);
    assert_int_equal(read_file(tmpdir, 0, &sb), -EISDIR);
    strbuf_free(&sb);

    free(path);
    free(data);
    free(empty);
    free(missing);
}

static void test_set_error(void **state)
{
    (void)state;
    char err[64] = "";
    assert_int_equal(set_error(err, sizeof(err), EINVAL, "bad %s at %d", "thing", 3), -EINVAL);
    assert_string_equal(err, "bad thing at 3");
    /* An already negative code is passed through. */
    assert_int_equal(set_error(err, sizeof(err), -ENOENT, "gone"), -ENOENT);
    assert_string_equal(err, "gone");
    /* Long messages are cut to the buffer and stay terminated. */
    char small[8];
    memset(small, 'x', sizeof(small));
    assert_int_equal(set_error(small, sizeof(small), EIO, "%s", "0123456789abcdef"), -EIO);
    assert_string_equal(small, "0123456");
    /* No buffer: only the code. */
    assert_int_equal(set_error(NULL, 0, EPERM, "ignored %d", 1), -EPERM);
    err[0] = 'q';
    assert_int_equal(set_error(err, 0, EPERM, "ignored"), -EPERM);
    assert_int_equal(err[0], 'q');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strbuf_append_and_printf),
        cmocka_unit_test(test_strbuf_detach),
        cmocka_unit_test(test_strv),
        cmocka_unit_test(test_strv_setenv_replaces),
        cmocka_unit_test(test_utf8_valid_kept),
        cmocka_unit_test(test_utf8_invalid_replaced),
        cmocka_unit_test(test_str_trim),
        cmocka_unit_test(test_parse_int64),
        cmocka_unit_test(test_mkdir_p_and_remove_tree),
        cmocka_unit_test(test_read_file),
        cmocka_unit_test(test_set_error),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
