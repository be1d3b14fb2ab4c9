/* Unit tests for worker/guardian: the orders it understands (groups, sandbox
 * uids, bye) and those it refuses; and, as root, that a guardian whose pipe
 * closes without "bye" kills a setsid process on a uid it was told about,
 * while one told "bye" kills nothing (exec/uid_reaper does the killing). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "exec/uid_reaper.h"
#include "worker/guardian.h"

/* Far from the ranges the fault and security tests use. */
#define STRAY_UID 237999

static void test_orders_applied(void **state)
{
    (void)state;
    struct guardian_orders o = {0};
    assert_true(guardian_orders_apply(&o, "+1234"));
    assert_true(guardian_orders_apply(&o, "+u200001"));
    assert_true(guardian_orders_apply(&o, "+u200002"));
    assert_true(guardian_orders_apply(&o, "+u4294967294"));
    assert_int_equal(o.groups.len, 1);
    assert_int_equal(o.groups.items[0], 1234);
    assert_int_equal(o.uids.len, 3);
    assert_true(guardian_orders_apply(&o, "-u200001"));
    assert_true(guardian_orders_apply(&o, "-u4294967294"));
    assert_int_equal(o.uids.len, 1);
    assert_int_equal(o.uids.items[0], 200002);
    /* A uid is not a group, nor the other way round. */
    assert_true(guardian_orders_apply(&o, "-200002"));
    assert_true(guardian_orders_apply(&o, "-u1234"));
    assert_int_equal(o.uids.len, 1);
    assert_int_equal(o.groups.len, 1);
    assert_false(o.bye);
    assert_true(guardian_orders_apply(&o, "bye"));
    assert_true(o.bye);
    guardian_orders_free(&o);
    assert_int_equal(o.uids.len + o.groups.len, 0);
}

static void test_orders_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",    "+",    "-",  "+u",   "+0",  "+1",           "+-5",
        "+u0", "+u-3", "+x", "+12x", "u+5", "+u4294967295", "+2147483648",
        "by",  "bye ", "*5", "+ 5",  "++5", "+u+5",         "-+5",
    };
    struct guardian_orders o = {0};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (guardian_orders_apply(&o, bad[i]))
            fail_msg("order '%s' accepted", bad[i]);
    }
    assert_int_equal(o.groups.len + o.uids.len, 0);
    assert_false(o.bye);
    guardian_orders_free(&o);
}

/* A uid taken twice (two orders) needs two forgets. */
static void test_orders_count_each_take(void **state)
{
    (void)state;
    struct guardian_orders o = {0};
    for (int i = 0; i < 100; i++)
        assert_true(guardian_orders_apply(&o, "+u300000"));
    for (int i = 0; i < 99; i++)
        assert_true(guardian_orders_apply(&o, "-u300000"));
    assert_int_equal(o.uids.len, 1);
    assert_true(guardian_orders_apply(&o, "-u300000"));
    assert_true(guardian_orders_apply(&o, "-u300000")); /* unknown: nothing to undo */
    assert_int_equal(o.uids.len, 0);
    guardian_orders_free(&o);
}

static void test_range_match(void **state)
{
    (void)state;
    struct uid_reaper_range r = {.first = 1000, .count = 10};
    assert_false(uid_reaper_in_range(999, &r));
    assert_true(uid_reaper_in_range(1000, &r));
    assert_true(uid_reaper_in_range(1009, &r));
    assert_false(uid_reaper_in_range(1010, &r));
    struct uid_reaper_range empty = {.first = 1000, .count = 0};
    assert_false(uid_reaper_in_range(1000, &empty));
}

/* A sleeper in a session of its own on uid, like an action's escaper. */
static pid_t start_stray(uid_t uid)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (setsid() < 0 || setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 ||
            setresuid(uid, uid, uid) < 0)
            _exit(126);
        execl("/bin/sleep", "sleep", "600", (char *)NULL);
        _exit(127);
    }
    /* Running on uid once its /proc status says so. */
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    for (int i = 0; i < 2000; i++) {
        FILE *f = fopen(path, "r");
        unsigned long real = 0;
        while (f && fgets(line, sizeof(line), f))
            sscanf(line, "Uid: %lu", &real);
        if (f)
            fclose(f);
        if (real == uid)
            return pid;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    fail_msg("stray process %d never ran on uid %u", (int)pid, (unsigned)uid);
    return -1;
}

/* A guardian on a pipe of ours, told `orders`; then the pipe closes. */
static void run_guardian(const char *orders)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t g = fork();
    assert_true(g >= 0);
    if (g == 0) {
        close(p[1]);
        _exit(guardian_main(p[0]));
    }
    close(p[0]);
    assert_int_equal(write(p[1], orders, strlen(orders)), (ssize_t)strlen(orders));
    close(p[1]);
    int status;
    assert_int_equal(waitpid(g, &status, 0), g);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_dead_worker_uid_swept(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip(); /* sweeping another uid needs root */
    pid_t stray = start_stray(STRAY_UID);
    char orders[64];
    snprintf(orders, sizeof(orders), "+u%d\n+u%d\n", STRAY_UID - 1, STRAY_UID);
    run_guardian(orders);
    int status;
    assert_int_equal(waitpid(stray, &status, 0), stray);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
}

static void test_bye_kills_nothing(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    pid_t stray = start_stray(STRAY_UID);
    char orders[64];
    snprintf(orders, sizeof(orders), "+u%d\nbye\n", STRAY_UID);
    run_guardian(orders);
    int status;
    assert_int_equal(waitpid(stray, &status, WNOHANG), 0);
    kill(stray, SIGKILL);
    assert_int_equal(waitpid(stray, &status, 0), stray);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_orders_applied),         cmocka_unit_test(test_orders_refused),
        cmocka_unit_test(test_orders_count_each_take), cmocka_unit_test(test_range_match),
        cmocka_unit_test(test_dead_worker_uid_swept),  cmocka_unit_test(test_bye_kills_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
