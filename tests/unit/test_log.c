/* Unit tests for core/log: control characters in a message are escaped in
 * the text format, so that a quoted value cannot forge a log line, and the
 * JSON format keeps one object per line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"

static void check_escape(const char *in, const char *want)
{
    struct strbuf out;
    strbuf_init(&out);
    log_escape_text(in, &out);
    assert_string_equal(out.data, want);
    strbuf_free(&out);
}

static void test_escape_control_characters(void **state)
{
    (void)state;
    check_escape("", "");
    check_escape("plain text, 'quoted' and \\ kept", "plain text, 'quoted' and \\ kept");
    check_escape("a\nb\tc\rd", "a\\nb\\tc\\rd");
    check_escape("\x01\x1b[31m\x1f\x7f", "\\x01\\x1b[31m\\x1f\\x7f");
    /* UTF-8 is not touched. */
    check_escape("schl\xc3\xbcssel \xf0\x9f\x94\x91", "schl\xc3\xbcssel \xf0\x9f\x94\x91");
}

/* Runs log_warn with stderr sent to a file; returns what was written. */
static char *logged(enum log_format format, const char *value)
{
    char path[] = "/tmp/attune-test-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    log_setup(LOG_LEVEL_INFO, format);
    log_warn("parameter 'mode' must be one of: fast, safe; got '%s'", value);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fd);
    struct strbuf text;
    strbuf_init(&text);
    assert_int_equal(read_file(path, 0, &text), 0);
    unlink(path);
    log_setup(LOG_LEVEL_INFO, LOG_FORMAT_TEXT);
    return strbuf_detach(&text, NULL);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static const char forged[] = "x'\n2026-01-01T00:00:00.000000Z error the worker was compromised";

static void test_text_line_cannot_be_forged(void **state)
{
    (void)state;
    char *line = logged(LOG_FORMAT_TEXT, forged);
    assert_int_equal(count_lines(line), 1);
    assert_non_null(strstr(line, "got 'x'\\n2026-01-01T00:00:00.000000Z error the worker"));
    free(line);
}

static void test_json_line_cannot_be_forged(void **state)
{
    (void)state;
    char *line = logged(LOG_FORMAT_JSON, forged);
    assert_int_equal(count_lines(line), 1);
    assert_non_null(strstr(line, "got 'x'\\n2026-01-01"));
    free(line);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_control_characters),
        cmocka_unit_test(test_text_line_cannot_be_forged),
        cmocka_unit_test(test_json_line_cannot_be_forged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
