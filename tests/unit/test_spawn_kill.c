/* Unit tests for spawn_kill_uid_extra (exec/spawn): it signals nothing while
 * the uid holds no more processes than the caller said, and kills them all
 * (zombies counted) when it holds more. Needs root to put processes on a uid. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <grp.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec/spawn.h"

/* Not a uid of any other test or bench: the helper signals all of it. */
#define TEST_UID 243999

/* A child on TEST_UID that waits to be killed (or exits at once). */
static pid_t start_on_uid(bool stay)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (setgroups(0, NULL) < 0 || setresgid(TEST_UID, TEST_UID, TEST_UID) < 0 ||
            setresuid(TEST_UID, TEST_UID, TEST_UID) < 0)
            _exit(2);
        while (stay)
            pause();
        _exit(0);
    }
    assert_true(pid > 0);
    return pid;
}

static int wait_signal(pid_t pid)
{
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

static void test_counts_and_kills(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    struct rlimit before, after;
    assert_int_equal(getrlimit(RLIMIT_NPROC, &before), 0);
    assert_int_equal(spawn_kill_uid_extra(TEST_UID, 0), 0);
    /* The helper lowers its own limit, never ours. */
    assert_int_equal(getrlimit(RLIMIT_NPROC, &after), 0);
    assert_int_equal(after.rlim_cur, before.rlim_cur);
    pid_t alive = start_on_uid(true);
    usleep(50 * 1000); /* on the uid by now */
    /* The one process the caller knows of is left alone. */
    assert_int_equal(spawn_kill_uid_extra(TEST_UID, 1), 0);
    assert_int_equal(kill(alive, 0), 0);
    assert_int_equal(spawn_kill_uid_extra(TEST_UID, 0), 1);
    assert_int_equal(wait_signal(alive), SIGKILL);
    assert_int_equal(spawn_kill_uid_extra(TEST_UID, 0), 0);
}

static void test_zombie_counts(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    pid_t zombie = start_on_uid(false);
    siginfo_t si = {0};
    assert_int_equal(waitid(P_PID, (id_t)zombie, &si, WEXITED | WNOWAIT), 0);
    assert_int_equal(spawn_kill_uid_extra(TEST_UID, 1), 0);
    assert_int_equal(spawn_kill_uid_extra(TEST_UID, 0), 1);
    assert_int_equal(wait_signal(zombie), 0);
    assert_int_equal(spawn_kill_uid_extra(TEST_UID, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_and_kills),
        cmocka_unit_test(test_zombie_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
