/* Unit tests for runtime/probe: the version found in what an interpreter
 * prints, and `--version` runs that fail, print nothing useful or hang (the
 * wait is bounded and the hanging group is killed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"
#include "runtime/probe.h"

static char tmpdir[] = "/tmp/attune-test-probe-XXXXXX";

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

static void check_find(const char *text, const char *want)
{
    char out[16];
    bool found = probe_find_version(text, out, sizeof(out));
    if (!want) {
        assert_false(found);
        return;
    }
    assert_true(found);
    assert_string_equal(out, want);
}

static void test_find_version(void **state)
{
    (void)state;
    check_find("Python 3.11.2\n", "3.11.2");
    check_find("v20.20.2\n", "20.20.2");
    check_find("GNU bash, version 5.2.15(1)-release", "5.2.15");
    check_find("Python 3.13.0rc1", "3.13.0");
    check_find("version 7.", "7");
    check_find("no digits here", NULL);
    check_find("", NULL);
    check_find("1.2.3.4.5.6.7.8.9.10", NULL); /* does not fit in 16 bytes */
}

static char *script(const char *name, const char *body)
{
    char *path = xasprintf("%s/%s", tmpdir, name);
    char *text = xasprintf("#!/bin/sh\n%s\n", body);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0755);
    assert_true(fd >= 0);
    assert_int_equal(write_all(fd, text, strlen(text)), 0);
    close(fd);
    free(text);
    return path;
}

static int probe(const char *name, const char *body, int timeout_ms, char *out, size_t outlen)
{
    char *path = script(name, body);
    int rc = probe_version(path, timeout_ms, out, outlen);
    free(path);
    return rc;
}

static void test_probe_version(void **state)
{
    (void)state;
    char out[64] = "";
    /* It asks with --version and reads stdout and stderr alike. */
    assert_int_equal(
        probe("ok", "[ \"$1\" = --version ] && echo \"Fancy 1.2.3\" >&2", 2000, out, sizeof(out)),
        0);
    assert_string_equal(out, "1.2.3");
    assert_int_equal(probe("fails", "echo 'Fancy 1.2.3'; exit 1", 2000, out, sizeof(out)), -EPROTO);
    assert_int_equal(probe("silent", "echo 'no version'", 2000, out, sizeof(out)), -EPROTO);
    char *missing = xasprintf("%s/missing", tmpdir);
    assert_true(probe_version(missing, 2000, out, sizeof(out)) < 0);
    free(missing);
}

/* Gone, or a zombie its new parent has yet to reap. */
static bool process_alive(pid_t pid)
{
    char *path = xasprintf("/proc/%d/stat", (int)pid);
    struct strbuf stat;
    strbuf_init(&stat);
    bool alive = read_file(path, 0, &stat) == 0;
    const char *paren = alive ? strrchr(stat.data, ')') : NULL;
    if (paren && paren[1] == ' ' && paren[2] == 'Z')
        alive = false;
    strbuf_free(&stat);
    free(path);
    return alive;
}

static void test_probe_hangs(void **state)
{
    (void)state;
    char out[64] = "";
    char *pidfile = xasprintf("%s/child.pid", tmpdir);
    /* A child in the background keeps stdout open: the group goes at the deadline. */
    char *body = xasprintf("sleep 30 & echo $! > %s; echo 'Fancy 1.0'; wait", pidfile);
    uint64_t start = time_monotonic_ms();
    assert_int_equal(probe("hangs", body, 300, out, sizeof(out)), -ETIMEDOUT);
    assert_true(time_monotonic_ms() - start < 5000);
    struct strbuf pid;
    strbuf_init(&pid);
    assert_int_equal(read_file(pidfile, 0, &pid), 0);
    int64_t child = 0;
    pid.data[strcspn(pid.data, "\n")] = '\0';
    assert_true(parse_int64(pid.data, &child));
    uint64_t deadline = time_monotonic_ms() + 5000;
    while (process_alive((pid_t)child) && time_monotonic_ms() < deadline)
        usleep(10000);
    assert_false(process_alive((pid_t)child));
    strbuf_free(&pid);
    free(body);
    free(pidfile);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find_version),
        cmocka_unit_test(test_probe_version),
        cmocka_unit_test(test_probe_hangs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
