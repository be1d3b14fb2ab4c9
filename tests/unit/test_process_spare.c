/* Unit tests for the two-phase start of exec/process (proc_prespawn, then
 * proc_arm): real children on an sd-event loop that wait on fd 3, are handed
 * their control payload and stdin later, time out from the hand-over, and
 * are reported when they end before it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "exec/output.h"
#include "exec/process.h"

#define RUN_LIMIT_MS 10000

static char tmpdir[] = "/tmp/attune-test-spare-XXXXXX";
static char *const shell_env[] = {(char *)"PATH=/usr/bin:/bin", NULL};

struct run {
    sd_event *loop;
    struct output_sink out, err;
    struct proc *proc;
    int exited_calls, done_calls;
    struct proc_result result;
};

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

static void on_exited(struct proc *proc, void *userdata)
{
    struct run *r = userdata;
    r->exited_calls++;
    r->result = *proc_get_result(proc);
}

static void on_done(struct proc *proc, void *userdata)
{
    struct run *r = userdata;
    r->done_calls++;
    r->result = *proc_get_result(proc);
    strbuf_init(&r->result.reply); /* the proc's own is freed with it */
}

/* Runs the loop until *flag is set, or the limit. */
static void run_until(struct run *r, const int *flag)
{
    uint64_t deadline = time_monotonic_ms() + RUN_LIMIT_MS;
    while (!*flag && time_monotonic_ms() < deadline)
        assert_true(sd_event_run(r->loop, 100 * 1000) >= 0);
    assert_true(*flag);
}

/* Runs the loop for ms, whatever happens. */
static void run_for(struct run *r, uint64_t ms)
{
    uint64_t deadline = time_monotonic_ms() + ms;
    while (time_monotonic_ms() < deadline)
        assert_true(sd_event_run(r->loop, 10 * 1000) >= 0);
}

static void prespawn(struct run *r, const char *script, enum proc_control control)
{
    char *const argv[] = {(char *)"sh", (char *)"-c", (char *)script, NULL};
    struct proc_spec spec = {
        .path = "/bin/sh", .argv = argv, .envp = shell_env, .cwd = "/", .control = control};
    char err[256] = "";
    memset(r, 0, sizeof(*r));
    assert_int_equal(sd_event_new(&r->loop), 0);
    assert_int_equal(proc_prespawn(r->loop, &spec, on_exited, r, &r->proc, err, sizeof(err)), 0);
}

static void open_sinks(struct run *r)
{
    char *out = xasprintf("%s/out-%d.log", tmpdir, (int)proc_pid(r->proc));
    char *err = xasprintf("%s/err-%d.log", tmpdir, (int)proc_pid(r->proc));
    assert_int_equal(output_sink_open(&r->out, out, 1 << 20), 0);
    assert_int_equal(output_sink_open(&r->err, err, 1 << 20), 0);
    free(out);
    free(err);
}

static char *read_sink(const struct run *r)
{
    char *path = xasprintf("%s/out-%d.log", tmpdir, (int)proc_pid(r->proc));
    struct strbuf text;
    strbuf_init(&text);
    assert_int_equal(read_file(path, 1 << 20, &text), 0);
    free(path);
    strbuf_append(&text, "", 0);
    return strbuf_detach(&text, NULL);
}

static void run_free(struct run *r)
{
    output_sink_close(&r->out);
    output_sink_close(&r->err);
    output_sink_release(&r->out);
    output_sink_release(&r->err);
    proc_free(r->proc);
    sd_event_unref(r->loop);
}

static void test_armed_later_gets_control_and_stdin(void **state)
{
    (void)state;
    struct run r;
    prespawn(&r, "cat <&3; cat; exit 7", PROC_CONTROL_PIPE);
    run_for(&r, 100); /* waiting on fd 3, not ended */
    assert_int_equal(r.exited_calls, 0);
    assert_int_equal(kill(proc_pid(r.proc), 0), 0);
    open_sinks(&r);
    struct proc_spec spec = {
        .control = PROC_CONTROL_PIPE,
        .control_data = "from-control\n",
        .control_len = 13,
        .stdin_data = "from-stdin\n",
        .stdin_len = 11,
        .stdout_sink = &r.out,
        .stderr_sink = &r.err,
        .timeout_ms = RUN_LIMIT_MS,
    };
    char err[256] = "";
    assert_int_equal(proc_arm(r.proc, &spec, on_done, &r, err, sizeof(err)), 0);
    run_until(&r, &r.done_calls);
    assert_int_equal(r.exited_calls, 0);
    assert_true(r.result.exited);
    assert_int_equal(r.result.exit_code, 7);
    output_sink_close(&r.out);
    char *text = read_sink(&r);
    assert_string_equal(text, "from-control\nfrom-stdin\n");
    free(text);
    run_free(&r);
}

static void test_timeout_counts_from_the_hand_over(void **state)
{
    (void)state;
    struct run r;
    prespawn(&r, "cat <&3 >/dev/null; exec sleep 30", PROC_CONTROL_PIPE);
    run_for(&r, 400); /* longer than the timeout: idle time does not count */
    open_sinks(&r);
    struct proc_spec spec = {.control = PROC_CONTROL_PIPE,
                             .control_data = "x",
                             .control_len = 1,
                             .stdout_sink = &r.out,
                             .stderr_sink = &r.err,
                             .timeout_ms = 300,
                             .kill_grace_ms = 100};
    char err[256] = "";
    uint64_t armed = time_monotonic_ms();
    assert_int_equal(proc_arm(r.proc, &spec, on_done, &r, err, sizeof(err)), 0);
    run_until(&r, &r.done_calls);
    assert_true(r.result.timed_out);
    assert_int_equal(r.result.signal, SIGTERM);
    assert_true(time_monotonic_ms() - armed >= 300);
    assert_true(r.result.duration_ms >= 300);
    run_free(&r);
}

static void test_end_before_arm_is_reported(void **state)
{
    (void)state;
    struct run r;
    prespawn(&r, "exit 3", PROC_CONTROL_PIPE);
    run_until(&r, &r.exited_calls);
    assert_true(r.result.exited);
    assert_int_equal(r.result.exit_code, 3);
    struct proc_spec spec = {.control = PROC_CONTROL_PIPE};
    char err[256] = "";
    assert_int_equal(proc_arm(r.proc, &spec, on_done, &r, err, sizeof(err)), -ESRCH);
    assert_int_equal(r.done_calls, 0);
    run_free(&r);
}

/* Gone before the loop saw it: proc_arm still refuses it. */
static void test_end_unseen_by_the_loop_refuses_arm(void **state)
{
    (void)state;
    struct run r;
    prespawn(&r, "exit 0", PROC_CONTROL_SOCKET);
    const struct timespec pause = {.tv_sec = 0, .tv_nsec = 300 * 1000 * 1000};
    nanosleep(&pause, NULL);
    struct proc_spec spec = {.control = PROC_CONTROL_SOCKET};
    char err[256] = "";
    assert_int_equal(proc_arm(r.proc, &spec, on_done, &r, err, sizeof(err)), -ESRCH);
    assert_non_null(strstr(err, "gone"));
    run_free(&r);
}

static void test_another_control_kind_is_refused(void **state)
{
    (void)state;
    struct run r;
    prespawn(&r, "cat <&3", PROC_CONTROL_PIPE);
    struct proc_spec spec = {.control = PROC_CONTROL_SOCKET};
    char err[256] = "";
    assert_int_equal(proc_arm(r.proc, &spec, on_done, &r, err, sizeof(err)), -EINVAL);
    pid_t pid = proc_pid(r.proc);
    run_free(&r); /* kills the waiting child */
    assert_int_equal(kill(pid, 0), -1);
}

int main(void)
{
    /* As the worker does: sd-event needs SIGCHLD blocked. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_armed_later_gets_control_and_stdin),
        cmocka_unit_test(test_timeout_counts_from_the_hand_over),
        cmocka_unit_test(test_end_before_arm_is_reported),
        cmocka_unit_test(test_end_unseen_by_the_loop_refuses_arm),
        cmocka_unit_test(test_another_control_kind_is_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
