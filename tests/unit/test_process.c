/* Unit tests for exec/process: real children supervised on an sd-event loop
 * (exit code and signal, stdin and control channel delivery, timeouts that
 * take the whole process group, cancellation, session, fds, environment). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/util.h"
#include "exec/output.h"
#include "exec/process.h"

/* How long any one child may take before the test gives up on it. */
#define RUN_LIMIT_MS 10000

static char tmpdir[] = "/tmp/attune-test-process-XXXXXX";
static char *const shell_env[] = {(char *)"PATH=/usr/bin:/bin", NULL};

struct run {
    struct output_sink out, err;
    struct proc *proc;
    pid_t pid;
    int done_calls;
    struct proc_result result; /* copied in the done callback; reply owned */
    struct strbuf out_text, err_text;
    uint64_t cancel_after_ms;
    sd_event_source *cancel_src;
};

/* ATTUNE_TEST_PROC_UID (as root): every child runs as that uid, as in the
 * sandbox's uid mode; the folder the children write to is theirs. */
static uid_t test_uid;

static void as_test_uid(struct proc_spec *spec)
{
    spec->uid = test_uid;
    spec->gid = (gid_t)test_uid;
}

static int setup(void **state)
{
    (void)state;
    const char *uid = getenv("ATTUNE_TEST_PROC_UID");
    if (uid && geteuid() == 0)
        test_uid = (uid_t)strtoul(uid, NULL, 10);
    if (!mkdtemp(tmpdir))
        return -1;
    return test_uid && chown(tmpdir, test_uid, (gid_t)test_uid) < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    return remove_tree(tmpdir) == 0 ? 0 : -1;
}

static void expect_gone(pid_t pid);

static void on_done(struct proc *proc, void *userdata)
{
    struct run *r = userdata;
    const struct proc_result *res = proc_get_result(proc);
    r->done_calls++;
    r->result = *res;
    /* The reply belongs to the proc; keep a copy. */
    strbuf_init(&r->result.reply);
    if (res->reply.len)
        strbuf_append(&r->result.reply, res->reply.data, res->reply.len);
    /* The callback may free the proc (the executor does). */
    proc_free(proc);
    r->proc = NULL;
}

static int on_cancel_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
    struct run *r = userdata;
    (void)s;
    (void)usec;
    if (r->proc)
        proc_cancel(r->proc, 0);
    return 0;
}

static void run_init(struct run *r)
{
    memset(r, 0, sizeof(*r));
    strbuf_init(&r->result.reply);
    strbuf_init(&r->out_text);
    strbuf_init(&r->err_text);
}

static void run_free(struct run *r)
{
    strbuf_free(&r->result.reply);
    strbuf_free(&r->out_text);
    strbuf_free(&r->err_text);
}

/* Starts spec on a fresh loop with sinks of out_cap bytes, runs the loop
 * until done was called and reads both logs. */
static void run_spec_capped(struct proc_spec *spec, struct run *r, int64_t out_cap)
{
    sd_event *loop = NULL;
    assert_int_equal(sd_event_new(&loop), 0);
    char *out_path = xasprintf("%s/stdout.log", tmpdir);
    char *err_path = xasprintf("%s/stderr.log", tmpdir);
    assert_int_equal(output_sink_open(&r->out, out_path, out_cap), 0);
    assert_int_equal(output_sink_open(&r->err, err_path, 1 << 20), 0);
    spec->stdout_sink = &r->out;
    spec->stderr_sink = &r->err;
    char err[256] = "";
    as_test_uid(spec);
    int rc = proc_start(loop, spec, on_done, r, &r->proc, err, sizeof(err));
    if (rc != 0)
        fail_msg("proc_start failed: %s", err);
    r->pid = proc_pid(r->proc);
    assert_true(r->pid > 0);
    if (r->cancel_after_ms)
        assert_int_equal(sd_event_add_time_relative(loop, &r->cancel_src, CLOCK_MONOTONIC,
                                                    r->cancel_after_ms * 1000, 0, on_cancel_timer,
                                                    r),
                         0);
    uint64_t start = time_monotonic_ms();
    while (r->done_calls == 0) {
        assert_true(sd_event_run(loop, 100 * 1000) >= 0);
        if (time_monotonic_ms() - start > RUN_LIMIT_MS) {
            proc_free(r->proc);
            fail_msg("%s did not finish within %d ms", spec->path, RUN_LIMIT_MS);
        }
    }
    /* Nothing is called again once done. */
    assert_true(sd_event_run(loop, 20 * 1000) >= 0);
    assert_int_equal(r->done_calls, 1);
    r->cancel_src = sd_event_source_disable_unref(r->cancel_src);
    /* The child was reaped, not left a zombie. */
    expect_gone(r->pid);
    output_sink_close(&r->out);
    output_sink_close(&r->err);
    assert_int_equal(read_file(out_path, 0, &r->out_text), 0);
    assert_int_equal(read_file(err_path, 0, &r->err_text), 0);
    free(out_path);
    free(err_path);
    sd_event_unref(loop);
}

static void run_spec(struct proc_spec *spec, struct run *r)
{
    run_spec_capped(spec, r, 16 << 20);
}

/* A spec for /bin/sh -c SCRIPT with a small clean environment. */
static struct proc_spec sh_spec(char **argv, const char *script)
{
    argv[0] = (char *)"sh";
    argv[1] = (char *)"-c";
    argv[2] = (char *)script;
    argv[3] = NULL;
    struct proc_spec spec = {
        .path = "/bin/sh",
        .argv = argv,
        .envp = shell_env,
        .reply_max = 1024,
        .kill_grace_ms = 500,
    };
    return spec;
}

/* True when pid no longer runs: gone, or a zombie someone else must reap
 * (an orphan re-parented away from us). A zombie that is our own child
 * still counts as alive: we failed to reap it. */
static bool pid_gone(pid_t pid)
{
    if (kill(pid, 0) < 0 && errno == ESRCH)
        return true;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    struct strbuf stat_text;
    strbuf_init(&stat_text);
    int rc = read_file(path, 0, &stat_text);
    bool gone = rc == -ENOENT || rc == -ESRCH;
    if (rc == 0) {
        const char *close_paren = strrchr(stat_text.data, ')');
        char st = 0;
        int ppid = 0;
        if (close_paren && sscanf(close_paren + 1, " %c %d", &st, &ppid) == 2)
            gone = (st == 'Z' || st == 'X') && ppid != (int)getpid();
    }
    strbuf_free(&stat_text);
    return gone;
}

/* A process that got SIGKILL may take a moment to finish exiting. */
static void expect_gone(pid_t pid)
{
    uint64_t start = time_monotonic_ms();
    while (!pid_gone(pid)) {
        if (time_monotonic_ms() - start > 2000)
            fail_msg("process %d is still alive", (int)pid);
        usleep(10 * 1000);
    }
}

static pid_t read_pid_file(const char *path)
{
    struct strbuf text;
    strbuf_init(&text);
    assert_int_equal(read_file(path, 0, &text), 0);
    int64_t v = 0;
    while (text.len && text.data[text.len - 1] == '\n')
        text.data[--text.len] = '\0';
    if (!parse_int64(text.data, &v) || v <= 0)
        fail_msg("bad pid file content '%s'", text.data);
    strbuf_free(&text);
    return (pid_t)v;
}

static void test_exit_code_and_output(void **state)
{
    (void)state;
    char *argv[4];
    struct proc_spec spec = sh_spec(argv, "echo out; echo err >&2; exit 7");
    struct run r;
    run_init(&r);
    run_spec(&spec, &r);
    assert_true(r.result.exited);
    assert_int_equal(r.result.exit_code, 7);
    assert_int_equal(r.result.signal, 0);
    assert_false(r.result.timed_out);
    assert_false(r.result.cancelled);
    assert_true(r.result.duration_ms < 2000);
    assert_string_equal(r.out_text.data, "out\n");
    assert_string_equal(r.err_text.data, "err\n");
    assert_int_equal(r.result.reply.len, 0);
    assert_false(r.result.output_cut);
    run_free(&r);

    spec = sh_spec(argv, "exit 0");
    run_init(&r);
    run_spec(&spec, &r);
    assert_true(r.result.exited);
    assert_int_equal(r.result.exit_code, 0);
    run_free(&r);
}

static void test_signal_reported(void **state)
{
    (void)state;
    char *argv[4];
    struct proc_spec spec = sh_spec(argv, "echo before; kill -USR1 $$; echo after");
    struct run r;
    run_init(&r);
    run_spec(&spec, &r);
    assert_false(r.result.exited);
    assert_int_equal(r.result.signal, SIGUSR1);
    assert_false(r.result.timed_out);
    assert_string_equal(r.out_text.data, "before\n");
    run_free(&r);
}

static void test_stdin_delivered(void **state)
{
    (void)state;
    size_t size = 1 << 20;
    char *data = xmalloc(size);
    for (size_t i = 0; i < size; i++)
        data[i] = (char)(i * 7 + i / 251);
    char *argv[] = {(char *)"cat", NULL};
    struct proc_spec spec = {
        .path = "/bin/cat",
        .argv = argv,
        .envp = shell_env,
        .stdin_data = data,
        .stdin_len = size,
        .kill_grace_ms = 500,
    };
    struct run r;
    run_init(&r);
    run_spec(&spec, &r);
    assert_true(r.result.exited);
    assert_int_equal(r.result.exit_code, 0);
    assert_int_equal(r.out_text.len, size);
    assert_memory_equal(r.out_text.data, data, size);
    run_free(&r);

    /* No stdin data: the child sees end of file at once. */
    spec.stdin_data = NULL;
    spec.stdin_len = 0;
    run_init(&r);
    run_spec(&spec, &r);
    assert_true(r.result.exited);
    assert_int_equal(r.result.exit_code, 0);
    assert_int_equal(r.out_text.len, 0);
    run_free(&r);
    free(data);
}

static void test_stdin_ignored_does_not_hang(void **state)
{
    (void)state;
    size_t size = 4 << 20;
    char *data = xmalloc(size);
    memset(data, 'x', size);
    char *argv[4];
    struct proc_spec spec = sh_spec(argv, "exit 0");
    spec.stdin_data = data;
    spec.stdin_len = size;
    struct run r;
    run_init(&r);
    uint64_t start = time_monotonic_ms();
    run_spec(&spec, &r);
    assert_true(time_monotonic_ms() - start < 2000);
    assert_true(r.result.exited);
    assert_int_equal(r.result.exit_code, 0);
    run_free(&r);

    /* A child that reads a little and exits. */
    spec = sh_spec(argv, "head -c 10; exit 3");
    spec.stdin_data = data;
    spec.stdin_len = size;
    run_init(&r);
    run_spec(&spec, &r);
    assert_int_equal(r.result.exit_code, 3);
    assert_string_equal(r.out_text.data, "xxxxxxxxxx");
    run_free(&r);
    free(data);
}

static void test_output_over_cap_does_not_block(void **state)
{
    (void)state;
    char *argv[4];
    struct proc_spec spec = sh_spec(argv, "head -c 3145728 /dev/zero; echo done >&2");
    struct run r;
    run_init(&r);
    run_spec_capped(&spec, &r, 1 << 20);
    assert_true(r.result.exited);
    assert_int_equal(r.result.exit_code, 0);
    assert_int_equal(r.out.kept, 1 << 20);
    assert_int_equal(r.out.dropped, 2 << 20);
    assert_string_equal(r.err_text.data, "done\n");
    run_free(&r);
}

static void test_timeout_kills_group(void **state)
{
    (void)state;
    char *pidfile = xasprintf("%s/bg.pid", tmpdir);
    char *script = xasprintf("sleep 1000 & echo $! > %s; sleep 1000", pidfile);
    char *argv[4];
    struct proc_spec spec = sh_spec(argv, script);
    spec.timeout_ms = 300;
    spec.kill_grace_ms = 500;
    struct run r;
    run_init(&r);
    run_spec(&spec, &r);
    assert_true(r.result.timed_out);
    assert_false(r.result.cancelled);
    assert_false(r.result.exited);
    /* SIGTERM was enough: no SIGKILL needed. */
    assert_int_equal(r.result.signal, SIGTERM);
    assert_true(r.result.duration_ms >= 290);
    assert_true(r.result.duration_ms < 300 + 500);
    /* The kill closed the background sleep's stdout: all of it was read. */
    assert_false(r.result.output_cut);
    pid_t bg = read_pid_file(pidfile);
    expect_gone(r.pid);
    expect_gone(bg);
    run_free(&r);
    free(script);
    free(pidfile);
}

static void test_timeout_sigkill_after_grace(void **state)
{
    (void)state;
    char *pidfile = xasprintf("%s/bg2.pid", tmpdir);
    /* Ignored signals are inherited: the sleeps ignore SIGTERM too. */
    char *script = xasprintf("trap '' TERM; sleep 1000 & echo $! > %s; sleep 1000", pidfile);
    char *argv[4];
    struct proc_spec spec = sh_spec(argv, script);
    spec.timeout_ms = 300;
    spec.kill_grace_ms = 500;
    struct run r;
    run_init(&r);
    run_spec(&spec, &r);
    assert_true(r.result.timed_out);
    assert_false(r.result.exited);
    assert_int_equal(r.result.signal, SIGKILL);
    assert_true(r.result.duration_ms >= 300 + 500 - 20);
    assert_true(r.result.duration_ms < 3000);
    expect_gone(r.pid);
    expect_gone(read_pid_file(pidfile));
    run_free(&r);
    free(script);
    free(pidfile);
}

static void test_cancel(void **state)
{
    (void)state;
    char *argv[4];
    struct proc_spec spec = sh_spec(argv, "sleep 1000");
    struct run r;
    run_init(&r);
    r.cancel_after_ms = 50;
    run_spec(&spec, &r);
    assert_true(r.result.cancelled);
    assert_false(r.result.timed_out);
    assert_false(r.result.exited);
    assert_int_equal(r.result.signal, SIGTERM);
    assert_true(r.result.duration_ms < 1000);
    expect_gone(r.pid);
    run_free(&r);
}

static void test_free_running_kills_group(void **state)
{
    (void)state;
    char *pidfile = xasprintf("%s/bg3.pid", tmpdir);
    char *script = xasprintf("sleep 1000 & echo $! > %s.tmp; mv %s.tmp %s; sleep 1000", pidfile,
                             pidfile, pidfile);
    char *argv[4];
    struct proc_spec spec = sh_spec(argv, script);
    sd_event *loop = NULL;
    assert_int_equal(sd_event_new(&loop), 0);
    struct run r;
    run_init(&r);
    struct proc *p = NULL;
    char err[256] = "";
    as_test_uid(&spec);
    assert_int_equal(proc_start(loop, &spec, on_done, &r, &p, err, sizeof(err)), 0);
    pid_t pid = proc_pid(p);
    uint64_t start = time_monotonic_ms();
    while (access(pidfile, F_OK) != 0) {
        assert_true(sd_event_run(loop, 10 * 1000) >= 0);
        assert_true(time_monotonic_ms() - start < 2000);
    }
    pid_t bg = read_pid_file(pidfile);
    proc_free(p);
    assert_int_equal(r.done_calls, 0);
    expect_gone(pid);
    expect_gone(bg);
    sd_event_unref(loop);
    run_free(&r);
    free(script);
    free(pidfile);
}

static void test_only_std_fds(void **state)
{
    (void)state;
    /* A descriptor the parent leaked without O_CLOEXEC stays out too. */
    int leaked = open("/dev/null", O_RDONLY);
    assert_true(leaked > 2);
    char *argv[4];
    /* The glob's own directory fd is closed by the time [ -h ] looks. */
    struct proc_spec spec =
        sh_spec(argv, "for f in /proc/$$/fd/*; do [ -h \"$f\" ] && echo ${f##*/}; done; true");
    struct run r;
    run_init(&r);
    run_spec(&spec, &r);
    assert_int_equal(r.result.exit_code, 0);
    assert_string_equal(r.out_text.data, "0\n1\n2\n");
    run_free(&r);

    /* With a control pipe: fd 3 and nothing else. */
    spec = sh_spec(argv, "for f in /proc/$$/fd/*; do [ -h \"$f\" ] && echo ${f##*/}; done; true");
    spec.control = PROC_CONTROL_PIPE;
    spec.control_data = "x";
    spec.control_len = 1;
    run_init(&r);
    run_spec(&spec, &r);
    assert_string_equal(r.out_text.data, "0\n1\n2\n3\n");
    run_free(&r);
    close(leaked);
}

static void test_control_pipe(void **state)
{
    (void)state;
    /* More than a pipe buffer, so the parent must feed it as the child reads. */
    size_t size = 300000;
    char *data = xmalloc(size);
    for (size_t i = 0; i < size; i++)
        data[i] = (char)('A' + i % 23);
    char *argv[4];
    struct proc_spec spec = sh_spec(argv, "cat <&3; echo; read line; echo \"stdin:$line\"");
    spec.control = PROC_CONTROL_PIPE;
    spec.control_data = data;
    spec.control_len = size;
    spec.stdin_data = "on stdin\n";
    spec.stdin_len = 9;
    struct run r;
    run_init(&r);
    run_spec(&spec, &r);
    assert_int_equal(r.result.exit_code, 0);
    assert_true(r.out_text.len > size);
    assert_memory_equal(r.out_text.data, data, size);
    /* Control data and stdin stay apart. */
    assert_string_equal(r.out_text.data + size, "\nstdin:on stdin\n");
    assert_int_equal(r.result.reply.len, 0);
    run_free(&r);
    free(data);
}

static void test_control_socket_reply(void **state)
{
    (void)state;
    char *argv[4];
    /* Reads fd 3 to end of file, then answers on it. */
    struct proc_spec spec = sh_spec(argv, "cat <&3; printf pong >&3");
    spec.control = PROC_CONTROL_SOCKET;
    spec.control_data = "ping";
    spec.control_len = 4;
    struct run r;
    run_init(&r);
    run_spec(&spec, &r);
    assert_true(r.result.exited);
    assert_int_equal(r.result.exit_code, 0);
    assert_string_equal(r.out_text.data, "ping");
    assert_int_equal(r.result.reply.len, 4);
    assert_memory_equal(r.result.reply.data, "pong", 4);
    assert_false(r.result.reply_truncated);
    run_free(&r);

    /* A reply longer than reply_max is cut and marked. */
    spec = sh_spec(argv, "cat <&3 >/dev/null; printf 0123456789 >&3");
    spec.control = PROC_CONTROL_SOCKET;
    spec.control_data = "ping";
    spec.control_len = 4;
    spec.reply_max = 4;
    run_init(&r);
    run_spec(&spec, &r);
    assert_int_equal(r.result.reply.len, 4);
    assert_memory_equal(r.result.reply.data, "0123", 4);
    assert_true(r.result.reply_truncated);
    run_free(&r);

    /* The same with python, as the python wrapper does it. */
    if (access("/usr/bin/python3", X_OK) == 0) {
        char *pargv[] = {(char *)"python3", (char *)"-c",
                         (char *)"import os\n"
                                 "d = b''\n"
                                 "while True:\n"
                                 "    c = os.read(3, 65536)\n"
                                 "    if not c:\n"
                                 "        break\n"
                                 "    d += c\n"
                                 "os.write(3, b'pong:' + d)\n",
                         NULL};
        spec.path = "/usr/bin/python3";
        spec.argv = pargv;
        spec.reply_max = 1024;
        run_init(&r);
        run_spec(&spec, &r);
        assert_int_equal(r.result.exit_code, 0);
        assert_string_equal(r.result.reply.data, "pong:ping");
        run_free(&r);
    }
}

/* A signal mask line ("SigBlk:", "SigIgn:") of /proc/PID/status. */
static uint64_t status_sigmask(const char *status, const char *field)
{
    const char *line = strstr(status, field);
    if (!line)
        fail_msg("no %s in status", field);
    unsigned long long mask = 0;
    assert_int_equal(sscanf(line + strlen(field), " %llx", &mask), 1);
    return mask;
}

static void test_own_session_and_clean_signals(void **state)
{
    (void)state;
    char *argv[] = {(char *)"cat", (char *)"/proc/self/stat", NULL};
    struct proc_spec spec = {
        .path = "/bin/cat", .argv = argv, .envp = shell_env, .kill_grace_ms = 500};
    struct run r;
    run_init(&r);
    run_spec(&spec, &r);
    const char *close_paren = strrchr(r.out_text.data, ')');
    assert_non_null(close_paren);
    char st;
    int ppid, pgrp, sid;
    assert_int_equal(sscanf(close_paren + 1, " %c %d %d %d", &st, &ppid, &pgrp, &sid), 4);
    assert_int_equal(pgrp, r.pid);
    assert_int_equal(sid, r.pid);
    assert_int_equal(ppid, getpid());
    run_free(&r);

    /* The parent blocks SIGCHLD and ignores SIGPIPE; the child must not. */
    char *argv2[] = {(char *)"cat", (char *)"/proc/self/status", NULL};
    spec.argv = argv2;
    run_init(&r);
    run_spec(&spec, &r);
    assert_int_equal(status_sigmask(r.out_text.data, "SigBlk:"), 0);
    /* glibc's posix_spawn itself leaves its two internal signals (32, 33)
     * ignored; every other signal must be at its default. */
    uint64_t internal = (1ull << 31) | (1ull << 32);
    assert_int_equal(status_sigmask(r.out_text.data, "SigIgn:") & ~internal, 0);
    run_free(&r);
}

static void test_environment_is_envp(void **state)
{
    (void)state;
    setenv("ATTUNE_TEST_PARENT_ONLY", "leak", 1);
    char *argv[] = {(char *)"env", NULL};
    char *const envp[] = {(char *)"A=1", (char *)"B=two words", (char *)"EMPTY=", NULL};
    struct proc_spec spec = {
        .path = "/usr/bin/env", .argv = argv, .envp = envp, .kill_grace_ms = 500};
    struct run r;
    run_init(&r);
    run_spec(&spec, &r);
    assert_int_equal(r.result.exit_code, 0);
    assert_string_equal(r.out_text.data, "A=1\nB=two words\nEMPTY=\n");
    run_free(&r);

    /* argv[0] and the working directory come from the spec as well. */
    char *argv2[] = {(char *)"custom-name", (char *)"-c", (char *)"echo $0; pwd -P", NULL};
    spec.path = "/bin/sh";
    spec.argv = argv2;
    spec.envp = shell_env;
    spec.cwd = tmpdir;
    run_init(&r);
    run_spec(&spec, &r);
    char *want = xasprintf("custom-name\n%s\n", tmpdir);
    assert_string_equal(r.out_text.data, want);
    free(want);
    run_free(&r);
    unsetenv("ATTUNE_TEST_PARENT_ONLY");
}

static void test_waits_for_exit_after_output_closed(void **state)
{
    (void)state;
    char *argv[4];
    struct proc_spec spec = sh_spec(argv, "echo hi; exec >&- 2>&-; sleep 0.3; exit 4");
    struct run r;
    run_init(&r);
    run_spec(&spec, &r);
    assert_true(r.result.exited);
    assert_int_equal(r.result.exit_code, 4);
    assert_true(r.result.duration_ms >= 250);
    assert_string_equal(r.out_text.data, "hi\n");
    run_free(&r);
}

/* A process in a session of its own holds stdout past the grace: the output
 * is closed unread, and the result says so. */
static void test_output_held_outside_group_is_cut(void **state)
{
    (void)state;
    char *pidfile = xasprintf("%s/holder.pid", tmpdir);
    char *script = xasprintf("/usr/bin/setsid sh -c 'echo $$ > %s.tmp; mv %s.tmp %s; "
                             "exec sleep 30' & while [ ! -e %s ]; do sleep 0.01; done; echo done",
                             pidfile, pidfile, pidfile, pidfile);
    char *argv[4];
    struct proc_spec spec = sh_spec(argv, script);
    spec.kill_grace_ms = 200;
    struct run r;
    run_init(&r);
    run_spec(&spec, &r);
    pid_t holder = read_pid_file(pidfile);
    kill(holder, SIGKILL);
    assert_true(r.result.exited);
    assert_int_equal(r.result.exit_code, 0);
    assert_true(r.result.output_cut);
    assert_string_equal(r.out_text.data, "done\n");
    run_free(&r);
    free(script);
    free(pidfile);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static void test_spawn_failure(void **state)
{
    (void)state;
    sd_event *loop = NULL;
    assert_int_equal(sd_event_new(&loop), 0);
    int before = count_fds();
    char *argv[] = {(char *)"nope", NULL};
    struct output_sink out = {.fd = -1}, err_sink = {.fd = -1};
    struct proc_spec spec = {.path = "/nonexistent/attune-no-such-program",
                             .argv = argv,
                             .envp = shell_env,
                             .control = PROC_CONTROL_SOCKET,
                             .control_data = "x",
                             .control_len = 1,
                             .stdout_sink = &out,
                             .stderr_sink = &err_sink};
    struct run r;
    run_init(&r);
    struct proc *p = (struct proc *)1;
    char err[256] = "";
    as_test_uid(&spec);
    int rc = proc_start(loop, &spec, on_done, &r, &p, err, sizeof(err));
    assert_int_equal(rc, -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/attune-no-such-program"));
    /* Every pipe and socket was closed again. */
    assert_int_equal(count_fds(), before);
    assert_true(sd_event_run(loop, 10 * 1000) >= 0);
    assert_int_equal(r.done_calls, 0);
    sd_event_unref(loop);
    run_free(&r);
}

/* A worker killed outright frees nothing: its action dies anyway, from the
 * parent-death signal the child armed before exec. */
static void test_dies_with_its_parent(void **state)
{
    (void)state;
    int p[2];
    pid_t pid = -1;
    assert_int_equal(pipe(p), 0);
    pid_t parent = fork();
    assert_true(parent >= 0);
    if (parent == 0) {
        sd_event *loop = NULL;
        char *argv[4], err[256];
        struct proc_spec spec = sh_spec(argv, "sleep 1000");
        struct output_sink out = {.fd = -1}, errs = {.fd = -1};
        struct run r;
        struct proc *proc;
        spec.stdout_sink = &out;
        spec.stderr_sink = &errs;
        as_test_uid(&spec);
        if (sd_event_new(&loop) < 0 || proc_start(loop, &spec, on_done, &r, &proc, err, 256) < 0)
            _exit(1);
        pid = proc_pid(proc);
        _exit(write(p[1], &pid, sizeof(pid)) == sizeof(pid) ? 0 : 1);
    }
    close(p[1]);
    assert_int_equal(read(p[0], &pid, sizeof(pid)), sizeof(pid));
    close(p[0]);
    int status;
    assert_int_equal(waitpid(parent, &status, 0), parent);
    assert_int_equal(status, 0);
    expect_gone(pid);
}

/* no_new_privs always; in uid mode the given uid and gid and no other group. */
static void test_credentials(void **state)
{
    (void)state;
    char *argv[4];
    struct proc_spec spec =
        sh_spec(argv, "id -u; id -g; id -G; grep -E '^(NoNewPrivs|CapEff)' /proc/self/status");
    struct run r;
    run_init(&r);
    run_spec(&spec, &r);
    assert_true(r.result.exited);
    assert_int_equal(r.result.exit_code, 0);
    uid_t uid = test_uid ? test_uid : geteuid();
    gid_t gid = test_uid ? (gid_t)test_uid : getegid();
    char *want = xasprintf("%u\n%u\n", (unsigned)uid, (unsigned)gid);
    if (strncmp(r.out_text.data, want, strlen(want)) != 0)
        fail_msg("expected ids %s, got %s", want, r.out_text.data);
    assert_non_null(strstr(r.out_text.data, "NoNewPrivs:\t1"));
    if (test_uid) {
        char *groups = xasprintf("%s%u\n", want, (unsigned)gid);
        assert_int_equal(strncmp(r.out_text.data, groups, strlen(groups)), 0);
        assert_non_null(strstr(r.out_text.data, "CapEff:\t0000000000000000"));
        free(groups);
    }
    free(want);
    run_free(&r);
}

int main(void)
{
    /* As the worker does: sd-event needs SIGCHLD blocked, and a child that
     * closes its stdin early must not kill us with SIGPIPE. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_code_and_output),
        cmocka_unit_test(test_signal_reported),
        cmocka_unit_test(test_stdin_delivered),
        cmocka_unit_test(test_stdin_ignored_does_not_hang),
        cmocka_unit_test(test_output_over_cap_does_not_block),
        cmocka_unit_test(test_timeout_kills_group),
        cmocka_unit_test(test_timeout_sigkill_after_grace),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_free_running_kills_group),
        cmocka_unit_test(test_only_std_fds),
        cmocka_unit_test(test_control_pipe),
        cmocka_unit_test(test_control_socket_reply),
        cmocka_unit_test(test_own_session_and_clean_signals),
        cmocka_unit_test(test_environment_is_envp),
        cmocka_unit_test(test_waits_for_exit_after_output_closed),
        cmocka_unit_test(test_output_held_outside_group_is_cut),
        cmocka_unit_test(test_spawn_failure),
        cmocka_unit_test(test_credentials),
        cmocka_unit_test(test_dies_with_its_parent),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
