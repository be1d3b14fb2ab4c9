/* One execution from validated parameters to result object (see executor.h). */
#include "executor/executor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/metrics.h"
#include "exec/output.h"
#include "exec/params.h"
#include "exec/process.h"
#include "exec/sandbox.h"
#include "exec/sandbox_limits.h"
#include "executor/env.h"
#include "exec/fork_server.h"
#include "executor/exec_files.h"
#include "executor/fork_route.h"
#include "executor/result.h"
#include "executor/result_limits.h"
#include "executor/secret_mask.h"
#include "executor/spares.h"

struct execution {
    const struct executor_settings *settings;
    char *dir;
    struct exec_files files; /* the directory and logs, held open */
    int param_fd;            /* the in-memory parameter file; -1 with stdin delivery */
    enum output_format output_format;
    int timeout_seconds;
    launch_decode_fn decode_reply;
    struct output_sink out, err;
    struct mask_set *mask; /* the secrets masked in the logs and the result */
    struct proc *proc;
    struct spare *spare; /* taken for this execution, until it starts in it */
    enum execution_status status;
    json_t *result;
    void (*result_filter)(json_t *result, enum execution_status *status, void *userdata);
    void *result_filter_userdata;
    execution_done_fn done;
    void *userdata;
    struct sandbox_slot sandbox;
    struct limits_slot limits;
    sd_event *loop;
    sd_event_source *leave_src; /* the sweep of the uid, due at the latest then */
    pid_t leave_pid;            /* the action's own process, for sandbox_leave */
};

/* In uid mode the execution's uid is swept once execution.completed is out
 * (execution_free, at the job's end) rather than on the way to it: the sweep's
 * helper process costs a wake-up of another process and back, a millisecond
 * or more on a busy host. The uid stays taken (no other execution gets it, the
 * guardian still knows it) until swept; should the job's end take long (a
 * slow database), the sweep comes at the latest this long after the action's
 * end, so that escapers never outlive it by more. */
#define EXECUTION_SWEEP_DELAY_US (500 * 1000)
/* sd-event's default slack would be 250 ms more. */
#define EXECUTION_SWEEP_SLACK_US (50 * 1000)

const char *execution_status_name(enum execution_status status)
{
    static const char *const names[] = {"completed", "failed", "timeout", "cancelled"};
    return names[status];
}

/* Result */

static json_t *execution_build_result(struct execution *ex, const struct proc_result *pr)
{
    json_t *reply = execution_reply_parse(ex->decode_reply, pr);
    ex->status = execution_result_status(pr, reply);
    /* What the worker wrote, from its own descriptors: what the files hold
     * by name now is not the worker's to trust. */
    char *out = exec_files_read_log(&ex->files, EXEC_FILES_STDOUT, ex->out.file_bytes);
    char *err = exec_files_read_log(&ex->files, EXEC_FILES_STDERR, ex->err.file_bytes);
    char *plain = ex->output_format == OUTPUT_FORMAT_TEXT
                      ? NULL
                      : execution_unmask_log(&ex->files, ex->mask, &ex->out);
    struct result_input in = {
        .dir = ex->dir,
        .output_format = ex->output_format,
        .timeout_seconds = ex->timeout_seconds,
        .proc = pr,
        .reply = reply,
        .stdout_text = out,
        .stderr_text = err,
        .stdout_parse_text = plain,
        .stdout_truncated = output_sink_truncated(&ex->out),
        .stderr_truncated = output_sink_truncated(&ex->err),
        .stdout_dropped = ex->out.dropped,
        .stderr_dropped = ex->err.dropped,
        .logs_incomplete = pr->output_cut || ex->out.write_error || ex->err.write_error,
    };
    json_t *r = execution_result_new(&in, ex->status);
    free(out);
    free(err);
    if (plain)
        secure_zero(plain, strlen(plain));
    free(plain);
    json_decref(reply);
    return r;
}

static void execution_write_result_file(const struct execution *ex)
{
    /* The file holds what run-action prints: the result and its status. */
    json_t *copy = json_copy(ex->result);
    json_object_set_new(copy, "status", json_string(execution_status_name(ex->status)));
    char *text = json_dumps(copy, JSON_INDENT(2));
    json_decref(copy);
    char *line = xasprintf("%s\n", text);
    int rc = exec_files_write_result(&ex->files, line, strlen(line));
    if (rc < 0)
        log_warn("cannot write %s/result.json: %s", ex->dir, strerror(-rc));
    free(line);
    free(text);
}

/* Kills what is left on the execution's uid, takes its folders back and
 * frees the uid (once: the slot is empty after). */
static void execution_leave_sandbox(struct execution *ex)
{
    ex->leave_src = sd_event_source_disable_unref(ex->leave_src);
    sandbox_leave(ex->settings->sandbox, &ex->sandbox, ex->leave_pid);
}

static int on_sweep_due(sd_event_source *src, uint64_t usec, void *userdata)
{
    (void)src;
    (void)usec;
    execution_leave_sandbox(userdata);
    return 0;
}

/* At the action's end: in uid mode the sweep waits (see
 * EXECUTION_SWEEP_DELAY_US); any other sandbox is left at once. */
static void execution_end_sandbox(struct execution *ex, pid_t main_pid)
{
    ex->leave_pid = main_pid;
    if (ex->sandbox.uid && ex->loop &&
        sd_event_add_time_relative(ex->loop, &ex->leave_src, CLOCK_MONOTONIC,
                                   EXECUTION_SWEEP_DELAY_US, EXECUTION_SWEEP_SLACK_US, on_sweep_due,
                                   ex) >= 0)
        return;
    execution_leave_sandbox(ex);
}

/* The action's process exists (proc_start's spec.started): at once, or once
 * the fork server forked it. A spare's group has been known since it
 * started. */
static void on_proc_started(struct proc *proc, void *userdata)
{
    const struct execution *ex = userdata;
    if (ex->settings->on_spawn)
        ex->settings->on_spawn(proc_pid(proc), ex->settings->hook_userdata);
}

static void on_proc_done(struct proc *proc, void *userdata)
{
    struct execution *ex = userdata;
    if (ex->settings->on_reap && proc_started(proc))
        ex->settings->on_reap(proc_pid(proc), ex->settings->hook_userdata);
    struct limits_outcome over;
    sandbox_limits_leave(ex->settings->limits, &ex->limits, &over);
    execution_end_sandbox(ex, proc_pid(proc));
    spare_pool_refill(ex->settings->spares);
    if (ex->settings->fork_server && !ex->settings->sandbox)
        fork_server_reap_strays(ex->settings->fork_server);
    output_sink_close(&ex->out);
    output_sink_close(&ex->err);
    ex->result = execution_build_result(ex, proc_get_result(proc));
    execution_result_note_limits(ex->result, ex->status, ex->settings->limits, &over);
    if (ex->result_filter)
        ex->result_filter(ex->result, &ex->status, ex->result_filter_userdata);
    /* After the filter, which seals secret output fields from the real data. */
    execution_mask_result(ex->mask, ex->result);
    execution_write_result_file(ex);
    ex->done(ex, ex->userdata);
}

/* Preparation */

static int execution_open_log(struct execution *ex, int which, struct output_sink *sink,
                              int64_t cap)
{
    int fd = exec_files_open_log(&ex->files, which);
    int rc = output_sink_open_fd(sink, fd, cap);
    return fd < 0 ? fd : rc;
}

static int execution_open_logs(struct execution *ex, const struct executor_settings *s, char *err,
                               size_t errlen)
{
    int rc = execution_open_log(ex, EXEC_FILES_STDOUT, &ex->out, s->max_stdout_bytes);
    if (rc == 0)
        rc = execution_open_log(ex, EXEC_FILES_STDERR, &ex->err, s->max_stderr_bytes);
    if (rc < 0)
        return set_error(err, errlen, -rc, "cannot create the log files in %s: %s", ex->dir,
                         rc == -EEXIST ? "something is already there" : strerror(-rc));
    if (s->log_digests) {
        output_sink_start_digest(&ex->out);
        output_sink_start_digest(&ex->err);
    }
    bool parsed = ex->output_format != OUTPUT_FORMAT_TEXT;
    output_sink_mask(&ex->out, ex->mask, parsed ? EXECUTION_MASK_MATCHES_MAX : 0);
    output_sink_mask(&ex->err, ex->mask, 0);
    return 0;
}

/* File delivery: the parameters live in a sealed memfd the child gets as
 * PROC_FILE_FD, so no byte of them (nor of the secrets merged in) is ever on
 * disk; /proc/self/fd/N opens it like a file, for the action and its children. */
static int execution_write_param_file(struct execution *ex, const struct strbuf *text, char *err,
                                      size_t errlen)
{
    static const int seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL;
    int fd = memfd_create("attune-parameters", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    int rc = fd < 0 ? -errno : write_all(fd, text->data, text->len);
    if (rc == 0 && (fchmod(fd, 0400) < 0 || fcntl(fd, F_ADD_SEALS, seals) < 0))
        rc = -errno;
    /* Above the numbers the child's descriptors are moved to. */
    ex->param_fd = rc == 0 ? fcntl(fd, F_DUPFD_CLOEXEC, PROC_FILE_FD + 1) : -1;
    if (rc == 0 && ex->param_fd < 0)
        rc = -errno;
    if (fd >= 0)
        close(fd);
    if (rc < 0)
        return set_error(err, errlen, rc, "cannot make the in-memory parameter file: %s",
                         strerror(-rc));
    return 0;
}

/* Sets each NAME=VALUE of vars in env, replacing what env had. */
static void execution_env_merge(struct strv *env, const struct strv *vars)
{
    for (size_t i = 0; i < vars->len; i++) {
        char *eq = strchr(vars->items[i], '=');
        char *key = xstrndup(vars->items[i], (size_t)(eq - vars->items[i]));
        strv_setenv(env, key, eq + 1);
        free(key);
    }
}

static void execution_env(const struct execution *ex, const struct executor_settings *s,
                          const struct execution_request *req, const struct launch *l,
                          struct strv *env)
{
    const struct action *a = req->action;
    for (size_t i = 0; i < s->base_env.len; i++)
        strv_push(env, s->base_env.items[i]);
    /* The runtime definition's variables, then execution.env_vars over them,
     * in Attune's order. */
    execution_env_merge(env, &l->config_env);
    execution_env_set_vars(env, req->env_vars);
    execution_env_merge(env, &l->env);
    execution_env_set_attune(env, s, req);
    strv_setenv(env, "ATTUNE_PARAMETER_DELIVERY", param_delivery_name(a->parameter_delivery));
    strv_setenv(env, "ATTUNE_PARAMETER_FORMAT", param_format_name(a->parameter_format));
    if (ex->param_fd >= 0)
        strv_setenv(env, "ATTUNE_PARAMETER_FILE", "/proc/self/fd/" STRINGIFY(PROC_FILE_FD));
    char *files = xasprintf("%s/files", ex->dir);
    strv_setenv(env, "ATTUNE_ARTIFACTS_DIR", files);
    free(files);
    sandbox_env(&ex->sandbox, env);
}

/* The environment may hold the execution's API token: wiped before it is freed. */
static void execution_env_free(struct strv *env)
{
    for (size_t i = 0; i < env->len; i++)
        secure_zero(env->items[i], strlen(env->items[i]));
    strv_free(env);
}

/* In the spare taken for the execution, if any: 0 when it runs there; else
 * the spare is gone and the execution starts cold (on the same uid). */
static int execution_start_spare(struct execution *ex, const struct launch *l,
                                 const struct strv *env, const struct proc_spec *spec)
{
    char err[256];
    if (!ex->spare)
        return -ENOENT;
    struct spare_input in = {.launch = l, .envp = env->items, .cwd = spec->cwd};
    int rc = spare_start(&ex->spare, &in, spec, on_proc_done, ex, &ex->proc, err, sizeof(err));
    if (rc < 0)
        log_debug("%s: starting cold: %s", ex->dir, err);
    else
        log_debug("%s: in the spare process %d", ex->dir, (int)proc_pid(ex->proc));
    return rc;
}

/* A spare of the runtime takes the execution when one is ready and the
 * execution can run in it: the sandbox then puts it on the spare's uid. */
static int execution_enter_sandbox(struct execution *ex, const struct executor_settings *s,
                                   const struct execution_request *req, const struct runtime *rt,
                                   char *err, size_t errlen)
{
    bool warm = rt != &runtime_python || executor_pack_allows_warm_python(req->action);
    ex->spare = warm ? spare_pool_take(s->spares, rt, req->action) : NULL;
    if (!ex->spare && spare_pool_serves(s->spares, rt))
        log_debug("%s: no %s spare ready", ex->dir, rt->name);
    if (!ex->spare)
        return sandbox_enter(s->sandbox, ex->dir, ex->files.dir_fd, ex->files.files_fd,
                             &ex->sandbox, err, errlen);
    return sandbox_enter_on_uid(s->sandbox, spare_hand_uid(ex->spare), ex->dir, ex->files.dir_fd,
                                ex->files.files_fd, &ex->sandbox, err, errlen);
}

static int execution_spawn(struct execution *ex, sd_event *loop, const struct executor_settings *s,
                           const struct execution_request *req, const struct runtime *rt,
                           const struct strbuf *params_text, char *err, size_t errlen)
{
    json_t *empty = json_object();
    struct launch_input in = {
        .action = req->action,
        .params = req->params,
        .secrets = req->secrets ? req->secrets : empty,
        .hidden_params = req->hidden_params,
        .base_env = &s->base_env,
        .runtime_envs_dir = s->runtime_envs_dir,
    };
    struct launch l;
    struct strv env;
    launch_init(&l);
    strv_init(&env);
    int rc = rt->prepare(rt, &in, &l, err, errlen);
    if (rc == 0) {
        execution_env(ex, s, req, &l, &env);
        bool on_stdin = req->action->parameter_delivery == PARAM_DELIVERY_STDIN;
        struct proc_spec spec = {
            .path = l.path,
            .argv = l.argv.items,
            .envp = env.items,
            .cwd = req->action->pack_dir,
            .stdin_data = on_stdin ? params_text->data : NULL,
            .stdin_len = on_stdin ? params_text->len : 0,
            .control = l.control,
            .control_data = l.control_data.data,
            .control_len = l.control_data.len,
            .file_fd = ex->param_fd,
            .reply_max = EXECUTION_REPLY_MAX,
            .stdout_sink = &ex->out,
            .stderr_sink = &ex->err,
            .timeout_ms = (uint64_t)req->timeout_seconds * 1000u,
            .kill_grace_ms = s->kill_grace_ms,
            .uid = ex->sandbox.uid,
            .gid = (gid_t)ex->sandbox.uid,
            .limits = &ex->limits.spawn,
            .ns = ex->sandbox.ns,
            .fork_server = executor_fork_route(s, &l, req->action, &env, ex->sandbox.ns != NULL),
            .fork_args = l.fork_args.items,
            .started = on_proc_started,
        };
        ex->decode_reply = l.decode_reply;
        bool warm = execution_start_spare(ex, &l, &env, &spec) == 0;
        if (spare_pool_serves(s->spares, rt))
            metrics_spare_start(rt->name, warm);
        rc = warm ? 0 : proc_start(loop, &spec, on_proc_done, ex, &ex->proc, err, errlen);
        if (ex->param_fd >= 0) { /* the child has its own */
            close(ex->param_fd);
            ex->param_fd = -1;
        }
    }
    launch_free(&l);
    execution_env_free(&env);
    json_decref(empty);
    return rc;
}

int execution_start(sd_event *loop, const struct executor_settings *settings,
                    const struct execution_request *req, execution_done_fn done, void *userdata,
                    struct execution **out, char *err, size_t errlen)
{
    const struct runtime *rt;
    int rc = execution_env_vars_check(req->env_vars, err, errlen);
    if (rc == 0)
        rc = registry_select(settings->registry, req->action, &rt, err, errlen);
    if (rc < 0)
        return rc;
    struct execution *ex = xcalloc(1, sizeof(*ex));
    ex->settings = settings;
    ex->loop = sd_event_ref(loop);
    ex->leave_pid = -1;
    ex->dir = xstrdup(req->artifacts_dir);
    ex->out.fd = ex->err.fd = ex->param_fd = -1;
    ex->limits.cgroup_fd = ex->limits.spawn.cgroup_procs_fd = -1;
    exec_files_init(&ex->files);
    ex->output_format = req->action->output_format;
    ex->timeout_seconds = req->timeout_seconds;
    ex->result_filter = req->result_filter;
    ex->result_filter_userdata = req->result_filter_userdata;
    ex->done = done;
    ex->userdata = userdata;
    ex->mask = execution_mask_set(req);
    struct strbuf params_text;
    strbuf_init(&params_text);
    params_format(req->params, req->action->parameter_format, &params_text);
    rc = exec_files_create(&ex->files, req->artifacts_root, req->artifacts_worker, req->exec_id,
                           err, errlen);
    if (rc == 0)
        rc = execution_enter_sandbox(ex, settings, req, rt, err, errlen);
    if (rc == 0)
        rc = sandbox_limits_enter(settings->limits, &ex->limits, err, errlen);
    if (rc == 0)
        rc = execution_open_logs(ex, settings, err, errlen);
    if (rc == 0 && req->action->parameter_delivery == PARAM_DELIVERY_FILE)
        rc = execution_write_param_file(ex, &params_text, err, errlen);
    if (rc == 0)
        rc = execution_spawn(ex, loop, settings, req, rt, &params_text, err, errlen);
    strbuf_free(&params_text);
    if (rc < 0) {
        execution_free(ex);
        return rc;
    }
    *out = ex;
    return 0;
}

enum execution_status execution_get_status(const struct execution *ex)
{
    return ex->status;
}

json_t *execution_get_result(const struct execution *ex)
{
    return ex->result;
}

bool execution_started(const struct execution *ex)
{
    return ex->proc && proc_started(ex->proc);
}

pid_t execution_pid(const struct execution *ex)
{
    return ex->proc ? proc_pid(ex->proc) : -1;
}

bool execution_log_digest(const struct execution *ex, bool is_stderr,
                          struct execution_log_digest *out)
{
    const struct output_sink *sink = is_stderr ? &ex->err : &ex->out;
    out->truncated = output_sink_truncated(sink);
    return ex->result && output_sink_digest(sink, &out->size, out->sha256);
}

void execution_cancel(struct execution *ex, uint64_t grace_ms)
{
    if (ex->proc && !ex->result)
        proc_cancel(ex->proc, grace_ms);
}

void execution_free(struct execution *ex)
{
    if (!ex)
        return;
    proc_free(ex->proc);
    spare_discard(ex->spare);
    sandbox_limits_leave(ex->settings->limits, &ex->limits, NULL);
    execution_leave_sandbox(ex);
    output_sink_close(&ex->out);
    output_sink_close(&ex->err);
    output_sink_release(&ex->out);
    output_sink_release(&ex->err);
    exec_files_close(&ex->files);
    mask_set_free(ex->mask);
    json_decref(ex->result);
    if (ex->param_fd >= 0)
        close(ex->param_fd);
    sd_event_unref(ex->loop);
    free(ex->dir);
    free(ex);
}
