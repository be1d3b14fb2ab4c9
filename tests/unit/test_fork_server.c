/* Unit tests for exec/fork_server with the real python zygote: a child it
 * forks has the worker as its parent, a session of its own, exactly the
 * environment and folder sent on its control socket, and answers like a cold
 * start; a killed or hung zygote is replaced, and meanwhile children start
 * cold; a child cancelled while its fork is awaited never starts, and one
 * the zygote forks after the cancel is killed before it runs anything. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "core/util.h"
#include "exec/fork_server.h"
#include "exec/output.h"
#include "exec/process.h"
#include "runtime/pymarshal.h"
#include "runtime/runtime.h"

#define PYTHON "/usr/bin/python3"
#define WAIT_LIMIT_MS 15000

static char tmpdir[] = "/tmp/attune-test-fork-server-XXXXXX";
static char *entry;
static sd_event *loop;
static struct fork_server *server;

/* What the action reports: its parent, session, folder and environment. */
static const char action_py[] = "import os\n"
                                "def run(word):\n"
                                "    return {'word': word, 'ppid': os.getppid(),\n"
                                "            'sid': os.getsid(0) == os.getpid(),\n"
                                "            'cwd': os.getcwd(), 'env': dict(os.environ)}\n";

static bool wait_ready(void)
{
    uint64_t start = time_monotonic_ms();
    while (!fork_server_ready(server) && time_monotonic_ms() - start < WAIT_LIMIT_MS)
        sd_event_run(loop, 50 * 1000);
    return fork_server_ready(server);
}

static int setup(void **state)
{
    (void)state;
    if (access(PYTHON, X_OK) != 0 || !mkdtemp(tmpdir))
        return -1;
    entry = xasprintf("%s/action.py", tmpdir);
    FILE *f = fopen(entry, "w");
    if (!f || fputs(action_py, f) < 0 || fclose(f) != 0)
        return -1;
    /* As the worker does: sd-event watches children with SIGCHLD blocked. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    struct runtime rt = runtime_python;
    rt.interpreter = (char *)PYTHON;
    struct strv argv;
    strv_init(&argv);
    runtime_python_zygote_argv(&rt, NULL, &argv);
    char *const envp[] = {(char *)"PATH=/usr/bin:/bin", (char *)"LANG=C.UTF-8", NULL};
    const struct fork_server_conf conf = {
        .path = PYTHON, .argv = argv.items, .envp = envp, .name = "python"};
    char err[256];
    sd_event_new(&loop);
    int rc = fork_server_new(loop, &conf, &server, err, sizeof(err));
    strv_free(&argv);
    return rc == 0 && wait_ready() ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    fork_server_free(server);
    sd_event_unref(loop);
    free(entry);
    return remove_tree(tmpdir) == 0 ? 0 : -1;
}

struct run {
    int done;
    struct strbuf reply;
    int exit_code;
};

static void on_done(struct proc *proc, void *userdata)
{
    struct run *r = userdata;
    const struct proc_result *res = proc_get_result(proc);
    strbuf_append(&r->reply, res->reply.data, res->reply.len);
    r->exit_code = res->exited ? res->exit_code : -1;
    r->done = 1;
    proc_free(proc);
}

/* The action's output files, and a spec that runs the action forked by the
 * fork server (its cold argv exits 3, which a forked child never runs). */
struct action_io {
    struct output_sink out, err;
    char *out_path, *err_path;
    char *fork_args[2];
};

static char *const cold_argv[] = {(char *)"python3", (char *)"-s", (char *)"-c",
                                  (char *)"import sys; sys.exit(3)", NULL};

static struct proc_spec forked_action_spec(struct action_io *io, char *const *envp,
                                           const char *control, size_t control_len)
{
    io->out_path = xasprintf("%s/out.log", tmpdir);
    io->err_path = xasprintf("%s/err.log", tmpdir);
    assert_int_equal(output_sink_open(&io->out, io->out_path, 1 << 20), 0);
    assert_int_equal(output_sink_open(&io->err, io->err_path, 1 << 20), 0);
    io->fork_args[0] = entry;
    io->fork_args[1] = NULL;
    return (struct proc_spec){
        .path = PYTHON,
        .argv = cold_argv,
        .envp = envp,
        .cwd = tmpdir,
        .control = PROC_CONTROL_SOCKET,
        .control_data = control,
        .control_len = control_len,
        .reply_max = 1 << 16,
        .stdout_sink = &io->out,
        .stderr_sink = &io->err,
        .kill_grace_ms = 500,
        .fork_server = server,
        .fork_args = io->fork_args,
    };
}

static void action_io_free(struct action_io *io)
{
    output_sink_close(&io->out);
    output_sink_close(&io->err);
    output_sink_release(&io->out);
    output_sink_release(&io->err);
    free(io->out_path);
    free(io->err_path);
}

/* Runs the action with the fork server's route; returns its decoded reply. */
static json_t *run_action(const char *word, char *const *envp)
{
    json_t *control =
        json_pack("{s:{}, s:{s:s}, s:s}", "secrets", "parameters", "word", word, "entry", "run");
    struct strbuf data;
    strbuf_init(&data);
    pymarshal_encode(control, &data);
    struct action_io io;
    struct proc_spec spec = forked_action_spec(&io, envp, data.data, data.len);
    struct run r = {0};
    strbuf_init(&r.reply);
    struct proc *proc;
    char msg[256];
    assert_int_equal(proc_start(loop, &spec, on_done, &r, &proc, msg, sizeof(msg)), 0);
    uint64_t start = time_monotonic_ms();
    while (!r.done && time_monotonic_ms() - start < WAIT_LIMIT_MS)
        sd_event_run(loop, 50 * 1000);
    assert_true(r.done);
    json_t *reply = r.reply.len ? pymarshal_decode(r.reply.data, r.reply.len, msg, sizeof(msg))
                                : json_pack("{s:i}", "exit", r.exit_code);
    action_io_free(&io);
    strbuf_free(&r.reply);
    strbuf_free(&data);
    json_decref(control);
    return reply;
}

static void test_forked_child_gets_its_own_launch(void **state)
{
    (void)state;
    char *const envp[] = {(char *)"PATH=/usr/bin:/bin", (char *)"ONLY_MINE=yes", NULL};
    json_t *reply = run_action("hello", envp);
    json_t *data = json_object_get(reply, "data");
    assert_non_null(data);
    assert_string_equal(json_string_value(json_object_get(data, "word")), "hello");
    /* Forked, not the cold argv (which exits 3), and ours. */
    assert_int_equal(json_integer_value(json_object_get(data, "ppid")), getpid());
    assert_true(json_is_true(json_object_get(data, "sid")));
    assert_string_equal(json_string_value(json_object_get(data, "cwd")), tmpdir);
    json_t *env = json_object_get(data, "env");
    assert_int_equal(json_object_size(env), 2);
    assert_string_equal(json_string_value(json_object_get(env, "ONLY_MINE")), "yes");
    json_decref(reply);
}

/* Our child named attune-zygote. */
static pid_t zygote_pid(void)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    pid_t found = -1;
    while (d && (e = readdir(d)) && found < 0) {
        char path[300], comm[32] = "";
        int ppid = 0;
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (fscanf(f, "%*d (%31[^)]) %*c %d", comm, &ppid) == 2 && ppid == (int)getpid() &&
            strcmp(comm, "attune-zygote") == 0)
            found = (pid_t)atoi(e->d_name);
        fclose(f);
    }
    if (d)
        closedir(d);
    return found;
}

static void test_killed_zygote_is_replaced(void **state)
{
    (void)state;
    char *const envp[] = {(char *)"PATH=/usr/bin:/bin", NULL};
    pid_t zygote = zygote_pid();
    assert_true(zygote > 0);
    assert_int_equal(kill(zygote, SIGKILL), 0);
    /* Until the loop sees the death, a request fails and the child starts cold. */
    json_t *reply = run_action("cold", envp);
    assert_int_equal(json_integer_value(json_object_get(reply, "exit")), 3);
    json_decref(reply);
    assert_true(wait_ready());
    reply = run_action("warm again", envp);
    assert_string_equal(json_string_value(json_object_get(json_object_get(reply, "data"), "word")),
                        "warm again");
    json_decref(reply);
}

static void test_hung_zygote_is_replaced(void **state)
{
    (void)state;
    char *const envp[] = {(char *)"PATH=/usr/bin:/bin", NULL};
    pid_t zygote = zygote_pid();
    assert_true(zygote > 0);
    assert_int_equal(kill(zygote, SIGSTOP), 0);
    /* No answer within a second: killed, and this child starts cold. */
    uint64_t start = time_monotonic_ms();
    json_t *reply = run_action("cold", envp);
    assert_int_equal(json_integer_value(json_object_get(reply, "exit")), 3);
    assert_true(time_monotonic_ms() - start >= 900);
    json_decref(reply);
    assert_true(wait_ready());
    assert_true(zygote_pid() != zygote);
    reply = run_action("warm again", envp);
    assert_non_null(json_object_get(reply, "data"));
    json_decref(reply);
}

/* Our live children other than the zygote. */
static int other_children(void)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d))) {
        char path[300], comm[32] = "", state = 0;
        int ppid = 0;
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (fscanf(f, "%*d (%31[^)]) %c %d", comm, &state, &ppid) == 3 && ppid == (int)getpid() &&
            state != 'Z' && strcmp(comm, "attune-zygote") != 0)
            n++;
        fclose(f);
    }
    if (d)
        closedir(d);
    return n;
}

struct cancelled_start {
    bool done, started, exited;
    int signal;
};

static void on_cancelled_done(struct proc *proc, void *userdata)
{
    struct cancelled_start *c = userdata;
    const struct proc_result *res = proc_get_result(proc);
    c->done = true;
    c->started = proc_started(proc);
    c->exited = res->exited;
    c->signal = res->signal;
    assert_true(res->cancelled);
    proc_free(proc);
}

/* A cancel while the child's fork is awaited from a stopped zygote: the
 * loop goes on meanwhile; then, continued, the zygote forks the child, which
 * is killed unfed (or, left stopped, it is replaced after a second and no
 * child starts cold); the proc ends unstarted. */
static void cancel_while_forking(bool continue_zygote)
{
    char *const envp[] = {(char *)"PATH=/usr/bin:/bin", NULL};
    pid_t zygote = zygote_pid();
    assert_true(zygote > 0);
    assert_int_equal(kill(zygote, SIGSTOP), 0);
    struct action_io io;
    struct proc_spec spec = forked_action_spec(&io, envp, "", 0);
    struct cancelled_start c = {0};
    struct proc *proc;
    char msg[256];
    uint64_t start = time_monotonic_ms();
    assert_int_equal(proc_start(loop, &spec, on_cancelled_done, &c, &proc, msg, sizeof(msg)), 0);
    /* Asked for without waiting: nothing started yet, and the loop is free. */
    assert_true(time_monotonic_ms() - start < 500);
    assert_false(proc_started(proc));
    proc_cancel(proc, 500);
    if (continue_zygote)
        assert_int_equal(kill(zygote, SIGCONT), 0);
    while (!c.done && time_monotonic_ms() - start < WAIT_LIMIT_MS)
        sd_event_run(loop, 50 * 1000);
    assert_true(c.done);
    assert_false(c.started);
    assert_false(c.exited);
    assert_int_equal(c.signal, 0);
    assert_int_equal(other_children(), 0);
    /* Continued, it answered and serves on; left stopped, it was replaced. */
    assert_true(wait_ready());
    assert_int_equal(zygote_pid() == zygote, continue_zygote);
    action_io_free(&io);
}

static void test_cancel_while_forking_starts_nothing(void **state)
{
    (void)state;
    cancel_while_forking(true);
    cancel_while_forking(false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forked_child_gets_its_own_launch),
        cmocka_unit_test(test_killed_zygote_is_replaced),
        cmocka_unit_test(test_hung_zygote_is_replaced),
        cmocka_unit_test(test_cancel_while_forking_starts_nothing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
