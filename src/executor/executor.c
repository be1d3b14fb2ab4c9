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
#include "core/yaml.h"
#include "exec/output.h"
#include "exec/params.h"
#include "exec/process.h"

/* A python/node wrapper's answer larger than this is cut (and fails to parse). */
#define EXECUTION_REPLY_MAX (16u << 20)
/* How much of stderr's end goes into `error` after a non-zero exit. */
#define EXECUTION_ERROR_TAIL 1024

struct execution {
    const struct executor_settings *settings;
    char *dir;
    int param_fd; /* the in-memory parameter file; -1 with stdin delivery */
    enum output_format output_format;
    int timeout_seconds;
    launch_decode_fn decode_reply;
    struct output_sink out, err;
    struct proc *proc;
    enum execution_status status;
    json_t *result;
    execution_done_fn done;
    void *userdata;
};

const char *execution_status_name(enum execution_status status)
{
    static const char *const names[] = {"completed", "failed", "timeout", "cancelled"};
    return names[status];
}

/* Output parsing */

static json_t *parse_json_text(const char *text, size_t len)
{
    /* No JSON_ALLOW_NUL: PostgreSQL's jsonb refuses \u0000, and the result
     * must always be storable. */
    return json_loadb(text, len, JSON_DECODE_ANY, NULL);
}

static json_t *parse_last_line(const char *text, size_t len)
{
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        len--;
    size_t start = len;
    while (start > 0 && text[start - 1] != '\n')
        start--;
    return len > start ? parse_json_text(text + start, len - start) : NULL;
}

static json_t *parse_json_lines(const char *text, size_t len)
{
    json_t *arr = json_array();
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        size_t line_len = end - pos;
        size_t blanks = 0;
        while (blanks < line_len && text[pos + blanks] && strchr(" \t\r", text[pos + blanks]))
            blanks++;
        bool blank = blanks == line_len;
        if (!blank) {
            json_t *v = parse_json_text(text + pos, line_len);
            if (!v) {
                json_decref(arr);
                return NULL;
            }
            json_array_append_new(arr, v);
        }
        pos = end + 1;
    }
    return arr;
}

json_t *execution_parse_output(const char *text, size_t len, enum output_format format)
{
    json_t *v = NULL;
    char err[256];
    switch (format) {
    case OUTPUT_FORMAT_JSON:
        v = parse_json_text(text, len);
        return v ? v : parse_last_line(text, len);
    case OUTPUT_FORMAT_YAML:
        return yaml_parse(text, len, &v, err, sizeof(err)) == 0 ? v : NULL;
    case OUTPUT_FORMAT_JSONL:
        return parse_json_lines(text, len);
    default:
        return NULL;
    }
}

/* Result */

json_t *execution_failure_result(const char *error)
{
    return json_pack("{s:b, s:n, s:i, s:s, s:s, s:s, s:b, s:b, s:i, s:i}", "succeeded", 0,
                     "exit_code", "duration_ms", 0, "stdout", "", "stderr", "", "error", error,
                     "stdout_truncated", 0, "stderr_truncated", 0, "stdout_bytes_truncated", 0,
                     "stderr_bytes_truncated", 0);
}

static char *read_log(const struct execution *ex, const char *name)
{
    struct strbuf raw, clean;
    strbuf_init(&raw);
    strbuf_init(&clean);
    char *path = xasprintf("%s/%s", ex->dir, name);
    (void)read_file(path, 0, &raw);
    free(path);
    utf8_sanitize(raw.data ? raw.data : "", raw.len, &clean);
    strbuf_free(&raw);
    return strbuf_detach(&clean, NULL);
}

/* The last lines of stderr, for `error`. */
static char *stderr_tail(const char *text)
{
    size_t len = strlen(text);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
        len--;
    size_t start = len > EXECUTION_ERROR_TAIL ? len - EXECUTION_ERROR_TAIL : 0;
    /* Start on a character boundary. */
    while (start < len && ((unsigned char)text[start] & 0xC0) == 0x80)
        start++;
    return xstrndup(text + start, len - start);
}

/* The wrapper's answer: {"data": ...} or {"error": "..."}; NULL if none. An
 * answer that does not decode becomes an error of its own. */
static json_t *reply_parse(const struct execution *ex, const struct proc_result *pr)
{
    char err[256] = "the wrapper's answer is not an object";
    if (!ex->decode_reply || pr->reply.len == 0 || pr->reply_truncated)
        return NULL;
    json_t *reply = ex->decode_reply(pr->reply.data, pr->reply.len, err, sizeof(err));
    if (!json_is_object(reply)) {
        json_decref(reply);
        return json_pack("{s:s}", "error", err);
    }
    return reply;
}

static enum execution_status execution_decide(const struct proc_result *pr, const json_t *reply)
{
    if (pr->cancelled)
        return EXECUTION_CANCELLED;
    if (pr->timed_out)
        return EXECUTION_TIMEOUT;
    if (pr->exited && pr->exit_code == 0 && !json_object_get(reply, "error") &&
        !pr->reply_truncated)
        return EXECUTION_COMPLETED;
    return EXECUTION_FAILED;
}

static char *execution_error_text(const struct execution *ex, const struct proc_result *pr,
                                  const json_t *reply, const char *stderr_text)
{
    const char *wrapper_error = json_string_value(json_object_get(reply, "error"));
    switch (ex->status) {
    case EXECUTION_TIMEOUT:
        return xasprintf("timed out after %d seconds", ex->timeout_seconds);
    case EXECUTION_CANCELLED:
        return xstrdup("cancelled");
    case EXECUTION_COMPLETED:
        return NULL;
    default:
        break;
    }
    if (wrapper_error)
        return xstrdup(wrapper_error);
    if (pr->reply_truncated)
        return xasprintf("the return value is larger than %u MiB", EXECUTION_REPLY_MAX >> 20);
    if (!pr->exited)
        return xasprintf("killed by signal %d", pr->signal);
    char *tail = stderr_tail(stderr_text);
    if (*tail)
        return tail;
    free(tail);
    return xasprintf("exited with code %d", pr->exit_code);
}

static json_t *execution_data(const struct execution *ex, const json_t *reply,
                              const char *stdout_text)
{
    json_t *data = json_object_get(reply, "data");
    if (data)
        return json_incref(data);
    if (ex->status != EXECUTION_COMPLETED || ex->output_format == OUTPUT_FORMAT_TEXT)
        return NULL;
    data = execution_parse_output(stdout_text, strlen(stdout_text), ex->output_format);
    if (!data)
        log_warn("output of %s is not valid %s; no data recorded", ex->dir,
                 output_format_name(ex->output_format));
    return data;
}

static json_t *execution_build_result(struct execution *ex, const struct proc_result *pr)
{
    json_t *reply = reply_parse(ex, pr);
    ex->status = execution_decide(pr, reply);
    char *out = read_log(ex, "stdout.log");
    char *err = read_log(ex, "stderr.log");
    json_t *r = json_object();
    json_object_set_new(r, "succeeded", json_boolean(ex->status == EXECUTION_COMPLETED));
    json_object_set_new(r, "exit_code", pr->exited ? json_integer(pr->exit_code) : json_null());
    if (!pr->exited)
        json_object_set_new(r, "signal", json_integer(pr->signal));
    json_object_set_new(r, "duration_ms", json_integer((json_int_t)pr->duration_ms));
    json_t *data = execution_data(ex, reply, out);
    if (data)
        json_object_set_new(r, "data", data);
    char *error = execution_error_text(ex, pr, reply, err);
    if (error)
        json_object_set_new(r, "error", json_string(error));
    free(error);
    json_object_set_new(r, "stdout", json_string(out));
    json_object_set_new(r, "stderr", json_string(err));
    json_object_set_new(r, "stdout_truncated", json_boolean(output_sink_truncated(&ex->out)));
    json_object_set_new(r, "stderr_truncated", json_boolean(output_sink_truncated(&ex->err)));
    json_object_set_new(r, "stdout_bytes_truncated", json_integer(ex->out.dropped));
    json_object_set_new(r, "stderr_bytes_truncated", json_integer(ex->err.dropped));
    json_object_set_new(r, "artifacts_dir", json_string(ex->dir));
    free(out);
    free(err);
    json_decref(reply);
    return r;
}

static void execution_write_result_file(const struct execution *ex)
{
    char *path = xasprintf("%s/result.json", ex->dir);
    /* The file holds what run-action prints: the result and its status. */
    json_t *copy = json_copy(ex->result);
    json_object_set_new(copy, "status", json_string(execution_status_name(ex->status)));
    char *text = json_dumps(copy, JSON_INDENT(2));
    json_decref(copy);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    int rc = fd < 0 ? -errno : write_all(fd, text, strlen(text));
    if (rc == 0)
        rc = write_all(fd, "\n", 1);
    if (rc < 0)
        log_warn("cannot write %s: %s", path, strerror(-rc));
    if (fd >= 0)
        close(fd);
    free(text);
    free(path);
}

static void on_proc_done(struct proc *proc, void *userdata)
{
    struct execution *ex = userdata;
    if (ex->settings->on_reap)
        ex->settings->on_reap(proc_pid(proc), ex->settings->hook_userdata);
    output_sink_close(&ex->out);
    output_sink_close(&ex->err);
    ex->result = execution_build_result(ex, proc_get_result(proc));
    execution_write_result_file(ex);
    ex->done(ex, ex->userdata);
}

/* Preparation */

static int execution_make_dirs(struct execution *ex, char *err, size_t errlen)
{
    int rc = mkdir_p(ex->dir, 0700);
    char *files = xasprintf("%s/files", ex->dir);
    if (rc == 0)
        rc = mkdir_p(files, 0700);
    free(files);
    if (rc < 0)
        return set_error(err, errlen, rc, "cannot create artifacts directory %s: %s", ex->dir,
                         strerror(-rc));
    return 0;
}

static int execution_open_logs(struct execution *ex, const struct executor_settings *s, char *err,
                               size_t errlen)
{
    char *out = xasprintf("%s/stdout.log", ex->dir);
    char *errp = xasprintf("%s/stderr.log", ex->dir);
    int rc = output_sink_open(&ex->out, out, s->max_stdout_bytes);
    if (rc == 0)
        rc = output_sink_open(&ex->err, errp, s->max_stderr_bytes);
    if (rc < 0)
        set_error(err, errlen, rc, "cannot create log files in %s: %s", ex->dir, strerror(-rc));
    free(out);
    free(errp);
    return rc;
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
    const char *name;
    json_t *value;
    json_object_foreach((json_t *)req->env_vars, name, value)
    {
        if (json_is_string(value))
            strv_setenv(env, name, json_string_value(value));
    }
    execution_env_merge(env, &l->env);
    strv_setenv(env, "ATTUNE_ACTION", a->ref);
    strv_setenv(env, "ATTUNE_EXEC_ID", req->exec_id);
    strv_setenv(env, "ATTUNE_PACK", a->pack_ref);
    strv_setenv(env, "ATTUNE_PARAMETER_DELIVERY", param_delivery_name(a->parameter_delivery));
    strv_setenv(env, "ATTUNE_PARAMETER_FORMAT", param_format_name(a->parameter_format));
    if (ex->param_fd >= 0)
        strv_setenv(env, "ATTUNE_PARAMETER_FILE", "/proc/self/fd/" STRINGIFY(PROC_FILE_FD));
    char *files = xasprintf("%s/files", ex->dir);
    strv_setenv(env, "ATTUNE_ARTIFACTS_DIR", files);
    free(files);
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
        };
        ex->decode_reply = l.decode_reply;
        rc = proc_start(loop, &spec, on_proc_done, ex, &ex->proc, err, errlen);
        if (ex->param_fd >= 0) { /* the child has its own */
            close(ex->param_fd);
            ex->param_fd = -1;
        }
        if (rc == 0 && s->on_spawn)
            s->on_spawn(proc_pid(ex->proc), s->hook_userdata);
    }
    launch_free(&l);
    strv_free(&env);
    json_decref(empty);
    return rc;
}

int execution_start(sd_event *loop, const struct executor_settings *settings,
                    const struct execution_request *req, execution_done_fn done, void *userdata,
                    struct execution **out, char *err, size_t errlen)
{
    const struct runtime *rt;
    int rc = registry_select(settings->registry, req->action, &rt, err, errlen);
    if (rc < 0)
        return rc;
    struct execution *ex = xcalloc(1, sizeof(*ex));
    ex->settings = settings;
    ex->dir = xstrdup(req->artifacts_dir);
    ex->out.fd = ex->err.fd = ex->param_fd = -1;
    ex->output_format = req->action->output_format;
    ex->timeout_seconds = req->timeout_seconds;
    ex->done = done;
    ex->userdata = userdata;
    struct strbuf params_text;
    strbuf_init(&params_text);
    params_format(req->params, req->action->parameter_format, &params_text);
    rc = execution_make_dirs(ex, err, errlen);
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

pid_t execution_pid(const struct execution *ex)
{
    return ex->proc ? proc_pid(ex->proc) : -1;
}

void execution_cancel(struct execution *ex)
{
    if (ex->proc && !ex->result)
        proc_cancel(ex->proc);
}

void execution_free(struct execution *ex)
{
    if (!ex)
        return;
    proc_free(ex->proc);
    output_sink_close(&ex->out);
    output_sink_close(&ex->err);
    json_decref(ex->result);
    if (ex->param_fd >= 0)
        close(ex->param_fd);
    free(ex->dir);
    free(ex);
}
