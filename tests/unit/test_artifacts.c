/* Unit tests for worker/artifacts: the execution directory path and the
 * removal of execution directories older than the retention period. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "worker/artifacts.h"

#define DAY (24 * 60 * 60)

static char tmpdir[] = "/tmp/attune-test-artifacts-XXXXXX";

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

static void write_text(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write_all(fd, text, strlen(text)), 0);
    assert_int_equal(close(fd), 0);
}

/* Sets a path's access and modification times to days ago (no following). */
static void age(const char *path, int days)
{
    struct timespec times[2];
    times[0].tv_sec = time(NULL) - (time_t)days * DAY;
    times[0].tv_nsec = 0;
    times[1] = times[0];
    assert_int_equal(utimensat(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW), 0);
}

/* Makes an execution directory with logs and a files/ subfolder, then dates
 * it days back (after filling it, which updates its mtime). */
static char *make_execution(const char *root, const char *id, int days)
{
    char *dir = xasprintf("%s/%s", root, id);
    char *files = xasprintf("%s/files", dir);
    assert_int_equal(mkdir_p(files, 0700), 0);
    char *log = xasprintf("%s/stdout.log", dir);
    write_text(log, "output\n");
    char *extra = xasprintf("%s/extra.txt", files);
    write_text(extra, "extra\n");
    if (days > 0) {
        age(files, days);
        age(dir, days);
    }
    free(files);
    free(log);
    free(extra);
    return dir;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static void test_execution_dir(void **state)
{
    (void)state;
    char *dir = artifacts_execution_dir("/var/lib/attune/artifacts", "worker-1", "42");
    assert_string_equal(dir, "/var/lib/attune/artifacts/worker-1/42");
    /* The same file, relative to the artifacts root: what the log rows record. */
    char *rel = artifacts_relative_path("worker-1", "42", "stderr.log");
    assert_string_equal(rel, "worker-1/42/stderr.log");
    char *abs = xasprintf("%s/%s", "/var/lib/attune/artifacts", rel);
    char *file = xasprintf("%s/stderr.log", dir);
    assert_string_equal(abs, file);
    free(file);
    free(abs);
    free(rel);
    free(dir);
}

static void test_remove_expired(void **state)
{
    (void)state;
    char *base = xasprintf("%s/a", tmpdir);
    char *root = xasprintf("%s/w1", base);
    assert_int_equal(mkdir_p(root, 0700), 0);
    char *old1 = make_execution(root, "101", 10);
    char *old2 = make_execution(root, "102", 30);
    char *fresh = make_execution(root, "103", 0);
    char *recent = make_execution(root, "104", 6);

    /* Only directories go: an old plain file and an old symlink stay, and
     * the symlink's target is not touched. */
    char *old_file = xasprintf("%s/notes.txt", root);
    write_text(old_file, "keep me\n");
    age(old_file, 10);
    char *outside = make_execution(tmpdir, "outside", 10);
    char *link = xasprintf("%s/105", root);
    assert_int_equal(symlink(outside, link), 0);
    age(link, 10);

    /* Another worker's directory is not this call's business. */
    char *other_root = xasprintf("%s/w2", base);
    assert_int_equal(mkdir_p(other_root, 0700), 0);
    char *other_old = make_execution(other_root, "201", 10);

    assert_int_equal(artifacts_remove_expired(base, "w1", 7), 2);
    assert_false(exists(old1));
    assert_false(exists(old2));
    assert_true(exists(fresh));
    assert_true(exists(recent));
    assert_true(exists(old_file));
    assert_true(exists(link));
    assert_true(exists(outside));
    char *outside_log = xasprintf("%s/stdout.log", outside);
    assert_true(exists(outside_log));
    assert_true(exists(other_old));
    assert_true(exists(root));

    /* Nothing more to remove the second time. */
    assert_int_equal(artifacts_remove_expired(base, "w1", 7), 0);
    assert_true(exists(fresh));
    /* A shorter retention takes the 6-day-old one too. */
    assert_int_equal(artifacts_remove_expired(base, "w1", 5), 1);
    assert_false(exists(recent));
    assert_true(exists(fresh));

    free(base);
    free(root);
    free(old1);
    free(old2);
    free(fresh);
    free(recent);
    free(old_file);
    free(outside);
    free(link);
    free(other_root);
    free(other_old);
    free(outside_log);
}

static void test_retention_zero_keeps_all(void **state)
{
    (void)state;
    char *base = xasprintf("%s/b", tmpdir);
    char *root = xasprintf("%s/w", base);
    assert_int_equal(mkdir_p(root, 0700), 0);
    char *ancient = make_execution(root, "1", 3650);
    assert_int_equal(artifacts_remove_expired(base, "w", 0), 0);
    assert_true(exists(ancient));
    /* Negative retention is no removal either. */
    assert_int_equal(artifacts_remove_expired(base, "w", -1), 0);
    assert_true(exists(ancient));
    /* And the same directory does go with a retention set. */
    assert_int_equal(artifacts_remove_expired(base, "w", 1), 1);
    assert_false(exists(ancient));
    free(base);
    free(root);
    free(ancient);
}

static void test_missing_root_is_fine(void **state)
{
    (void)state;
    char *base = xasprintf("%s/never-created", tmpdir);
    assert_int_equal(artifacts_remove_expired(base, "w", 7), 0);
    assert_false(exists(base));
    free(base);
    /* The worker's folder missing under an existing base, too. */
    assert_int_equal(artifacts_remove_expired(tmpdir, "no-such-worker", 7), 0);
}

/* Removal goes through descriptors: a symlink inside an expired directory
 * goes as itself, and a worker directory that is a symlink is not entered. */
static void test_remove_expired_follows_no_symlink(void **state)
{
    (void)state;
    char *base = xasprintf("%s/c", tmpdir);
    char *root = xasprintf("%s/w", base);
    assert_int_equal(mkdir_p(root, 0700), 0);
    char *victim = make_execution(tmpdir, "victim", 0);
    char *old = make_execution(root, "1", 0);
    char *link = xasprintf("%s/files/escape", old);
    assert_int_equal(symlink(victim, link), 0);
    age(old, 10);
    assert_int_equal(artifacts_remove_expired(base, "w", 7), 1);
    assert_false(exists(old));
    char *victim_log = xasprintf("%s/stdout.log", victim);
    assert_true(exists(victim_log));

    char *linked = xasprintf("%s/linked", base);
    assert_int_equal(symlink(tmpdir, linked), 0);
    char *target_old = make_execution(tmpdir, "7", 10);
    assert_true(artifacts_remove_expired(base, "linked", 7) < 0);
    assert_true(exists(target_old));
    free(base);
    free(root);
    free(victim);
    free(old);
    free(link);
    free(victim_log);
    free(linked);
    free(target_old);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_execution_dir),
        cmocka_unit_test(test_remove_expired),
        cmocka_unit_test(test_retention_zero_keeps_all),
        cmocka_unit_test(test_missing_root_is_fine),
        cmocka_unit_test(test_remove_expired_follows_no_symlink),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
