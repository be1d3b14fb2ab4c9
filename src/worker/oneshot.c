/* `attune-worker run-action` (see oneshot.h). */
#include "worker/oneshot.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/yaml.h"
#include "exec/action.h"
#include "exec/sandbox.h"
#include "executor/executor.h"
#include "executor/settings.h"
#include "exec/params.h"
#include "runtime/registry.h"
#include "worker/artifacts.h"

#define ONESHOT_SECRETS_FILE_MAX (16u << 20)

struct oneshot {
    sd_event *loop;
    struct execution *execution;
    int signals_seen;
};

static int oneshot_params(const struct oneshot_options *opts, const struct action *action,
                          json_t **out, char *err, size_t errlen)
{
    json_t *params = NULL;
    int rc = opts->params_json ? params_load_json_arg(opts->params_json, &params, err, errlen) : 0;
    if (rc < 0)
        return rc;
    if (!params)
        params = json_object();
    for (char **a = opts->assignments; rc == 0 && a && *a; a++)
        rc = params_assign(params, action->param_schema, *a, err, errlen);
    if (rc == 0)
        rc = params_validate(params, action->param_schema, err, errlen);
    if (rc == 0)
        rc =
            params_check_names(params, action->param_schema, action->parameter_format, err, errlen);
    if (rc < 0) {
        json_decref(params);
        return rc;
    }
    *out = params;
    return 0;
}

/* A secrets file is a mapping of name to string value. */
static int oneshot_secrets(const char *path, json_t **out, char *err, size_t errlen)
{
    struct strbuf text;
    strbuf_init(&text);
    *out = json_object();
    if (!path)
        return 0;
    int rc = read_file(path, ONESHOT_SECRETS_FILE_MAX, &text);
    json_t *doc = NULL;
    char perr[256];
    if (rc < 0)
        set_error(err, errlen, rc, "cannot read secrets file %s: %s", path, strerror(-rc));
    else if (!(doc = json_loadb(text.data, text.len, 0, NULL)) &&
             (rc = yaml_parse(text.data, text.len, &doc, perr, sizeof(perr))) < 0)
        set_error(err, errlen, rc, "secrets file %s: %s", path, perr);
    else if (!json_is_object(doc) && !json_is_null(doc))
        rc = set_error(err, errlen, EINVAL, "secrets file %s: expected a mapping of name to value",
                       path);
    const char *name;
    json_t *value;
    json_object_foreach(doc, name, value)
    {
        if (rc < 0)
            break;
        /* A number would come back re-printed (0123 as 123): only text is exact. */
        if (json_is_string(value))
            json_object_set(*out, name, value);
        else
            rc =
                set_error(err, errlen, EINVAL,
                          "secrets file %s: value of '%s' must be a string (quote it)", path, name);
    }
    json_decref(doc);
    if (text.data)
        secure_zero(text.data, text.len);
    strbuf_free(&text);
    if (rc < 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

static void on_execution_done(struct execution *ex, void *userdata)
{
    struct oneshot *os = userdata;
    (void)ex;
    sd_event_exit(os->loop, 0);
}

static int on_stop_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
    struct oneshot *os = userdata;
    (void)s;
    log_warn("received signal %u; stopping the action", si->ssi_signo);
    if (os->execution)
        execution_cancel(os->execution, 0);
    if (++os->signals_seen > 1)
        sd_event_exit(os->loop, 1);
    return 0;
}

static char *oneshot_exec_id(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return xasprintf("local-%lld%03ld-%d", (long long)tv.tv_sec, (long)(tv.tv_usec / 1000),
                     (int)getpid());
}

static int oneshot_exit_status(enum execution_status status)
{
    switch (status) {
    case EXECUTION_COMPLETED:
        return ONESHOT_EXIT_COMPLETED;
    case EXECUTION_TIMEOUT:
        return ONESHOT_EXIT_TIMEOUT;
    default:
        return ONESHOT_EXIT_FAILED;
    }
}

static void oneshot_print(json_t *result, enum execution_status status)
{
    json_object_set_new(result, "status", json_string(execution_status_name(status)));
    json_dumpf(result, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    fflush(stdout);
}

static int oneshot_loop(struct oneshot *os)
{
    return event_loop_new(&os->loop, on_stop_signal, os);
}

/* Everything the run needs, released in one place. */
struct oneshot_run {
    struct action *action;
    json_t *params, *secrets;
    struct registry registry;
    struct executor_settings settings;
    char *exec_id, *dir;
};

static void oneshot_run_free(struct oneshot_run *r)
{
    action_free(r->action);
    json_decref(r->params);
    json_decref(r->secrets);
    registry_free(&r->registry);
    executor_settings_free(&r->settings);
    free(r->exec_id);
    free(r->dir);
}

static int oneshot_prepare(const struct config *cfg, const struct oneshot_options *opts,
                           struct oneshot_run *r, char *err, size_t errlen)
{
    const char *packs = opts->packs_dir ? opts->packs_dir : cfg->packs_base_dir;
    int rc = action_load_from_pack(packs, opts->action_ref, &r->action, err, errlen);
    if (rc == 0)
        rc = registry_check_runner(r->action, err, errlen);
    if (rc == 0 && !r->action->enabled)
        rc = set_error(err, errlen, EPERM, "action '%s' is disabled (enabled: false)",
                       r->action->ref);
    if (rc == 0)
        rc = oneshot_params(opts, r->action, &r->params, err, errlen);
    if (rc == 0)
        rc = oneshot_secrets(opts->secrets_file, &r->secrets, err, errlen);
    if (rc < 0)
        return rc;
    /* Only the runtime this action needs is looked for (and must be allowed). */
    char *needed[] = {(char *)registry_runtime_name(r->action), NULL};
    bool allowed = !cfg->runtimes;
    for (char **w = cfg->runtimes; w && *w; w++)
        allowed = allowed || strcmp(*w, needed[0]) == 0;
    rc = allowed
             ? executor_settings_init(&r->settings, &r->registry, cfg, needed, err, errlen)
             : set_error(err, errlen, ENOEXEC,
                         "runtime '%s' is not enabled on this worker (worker.runtimes)", needed[0]);
    if (rc == 0 && opts->secrets_file)
        sandbox_hide(r->settings.sandbox, opts->secrets_file);
    r->exec_id = oneshot_exec_id();
    r->dir = artifacts_execution_dir(opts->artifacts_dir ? opts->artifacts_dir : cfg->artifacts_dir,
                                     cfg->worker_name, r->exec_id);
    return rc;
}

int oneshot_run(const struct config *cfg, const struct oneshot_options *opts)
{
    char err[1024] = "";
    struct oneshot_run r = {0};
    struct oneshot os = {0};
    int status = ONESHOT_EXIT_USAGE;
    if (oneshot_prepare(cfg, opts, &r, err, sizeof(err)) < 0) {
        fprintf(stderr, "attune-worker: %s\n", err);
        goto done;
    }
    struct execution_request req = {
        .exec_id = r.exec_id,
        .artifacts_dir = r.dir,
        .artifacts_root = opts->artifacts_dir ? opts->artifacts_dir : cfg->artifacts_dir,
        .artifacts_worker = cfg->worker_name,
        .action = r.action,
        .params = r.params,
        .secrets = r.secrets,
        .timeout_seconds =
            action_timeout_seconds(r.action, opts->timeout_seconds, cfg->task_timeout),
    };
    if (oneshot_loop(&os) < 0) {
        fprintf(stderr, "attune-worker: cannot set up the event loop\n");
        goto done;
    }
    int rc = execution_start(os.loop, &r.settings, &req, on_execution_done, &os, &os.execution, err,
                             sizeof(err));
    if (rc < 0 && sandbox_userns_refusal(cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "attune-worker: configuration error: %s\n", err);
        status = CONFIG_EXIT_STATUS;
        goto done;
    }
    if (rc < 0) {
        fprintf(stderr, "attune-worker: %s\n", err);
        status = rc == -ENOEXEC || rc == -EINVAL || rc == -EACCES ? ONESHOT_EXIT_USAGE
                                                                  : ONESHOT_EXIT_FAILED;
        goto done;
    }
    sd_event_loop(os.loop);
    json_t *result = execution_get_result(os.execution);
    if (result) {
        oneshot_print(result, execution_get_status(os.execution));
        status = oneshot_exit_status(execution_get_status(os.execution));
    } else {
        status = ONESHOT_EXIT_FAILED;
    }
done:
    execution_free(os.execution);
    sd_event_unref(os.loop);
    oneshot_run_free(&r);
    return status;
}
