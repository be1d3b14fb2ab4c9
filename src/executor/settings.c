/* The executor settings built from the configuration (see settings.h). */
#include "executor/settings.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "exec/fork_server.h"
#include "exec/sandbox.h"
#include "exec/sandbox_limits.h"
#include "exec/uid_lock.h"
#include "exec/uid_reaper.h"
#include "executor/fork_route.h"
#include "executor/spares.h"

/* What every action starts from: a known PATH, HOME and LANG rather than the
 * worker's own environment, then the variables worker.env adds. */
static void settings_base_env(const struct config *cfg, struct strv *env)
{
    const char *home = getenv("HOME");
    const char *lang = getenv("LANG");
    strv_setenv(env, "PATH", RUNTIME_DEFAULT_PATH);
    strv_setenv(env, "HOME", home && *home ? home : "/");
    strv_setenv(env, "LANG", lang && *lang ? lang : "C.UTF-8");
    for (size_t i = 0; i < cfg->n_action_env; i++)
        strv_setenv(env, cfg->action_env[i].name, cfg->action_env[i].value);
}

/* A uid of the range no live worker or run-action has claimed. */
static bool unclaimed_in_range(uid_t uid, const void *range)
{
    return uid_reaper_in_range(uid, range) && !uid_lock_held(uid);
}

/* A worker killed earlier (with its guardian, say, or a run-action, which has
 * none) may have left processes on the range: they must not meet the
 * executions that get their uids now. The uids other workers and run-actions
 * of the host hold are theirs. One /proc scan when nothing is left. */
void executor_settings_sweep_leftovers(const struct executor_settings *s)
{
    const struct sandbox *sb = s->sandbox;
    if (sb && sb->mode == SANDBOX_MODE_USERNS)
        log_info("sandbox: userns mode, each execution in user, PID, mount and IPC "
                 "namespaces of its own");
    if (!sb || sb->mode != SANDBOX_MODE_UID)
        return;
    log_info("sandbox: uid mode, each execution on a uid of its own from %u-%u",
             (unsigned)sb->uids.first, (unsigned)(sb->uids.first + sb->uids.count - 1));
    struct uid_reaper_range range = {.first = sb->uids.first, .count = sb->uids.count};
    struct uid_reaper_report rep;
    int rc = uid_reaper_kill(unclaimed_in_range, &range, &rep);
    if (rc < 0)
        log_warn("cannot sweep sandbox.uid_range at start: %s", strerror(-rc));
    if (rep.found > 0)
        log_warn("killed %d processes left on %d uids of sandbox.uid_range by an earlier "
                 "worker (%d still alive)",
                 rep.found, rep.uids, rep.left);
    else
        log_debug("no process left on sandbox.uid_range");
}

void executor_settings_service_start(struct executor_settings *s, const struct config *cfg,
                                     sd_event *loop)
{
    executor_settings_sweep_leftovers(s);
    executor_fork_server_start(s, cfg, loop);
    s->spares = spare_pool_new(loop, s, cfg);
}

char *executor_api_url(const char *url)
{
    static const char *const any[] = {"://0.0.0.0", "://[::]"};
    static const char local[] = "://127.0.0.1";
    struct strbuf out;
    strbuf_init(&out);
    for (const char *p = url; *p;) {
        size_t skip = 0;
        for (size_t i = 0; i < 2 && !skip; i++)
            skip = str_starts_with(p, any[i]) ? strlen(any[i]) : 0;
        if (skip)
            strbuf_puts(&out, local);
        else
            strbuf_putc(&out, *p);
        p += skip ? skip : 1;
    }
    return strbuf_detach(&out, NULL);
}

int executor_settings_init(struct executor_settings *s, struct registry *reg,
                           const struct config *cfg, char *const *wanted_runtimes, char *err,
                           size_t errlen)
{
    strv_init(&s->base_env);
    settings_base_env(cfg, &s->base_env);
    s->registry = reg;
    s->fork_server = NULL;
    s->runtime_envs_dir = xstrdup(cfg->runtime_envs_dir);
    s->max_stdout_bytes = cfg->max_stdout_bytes;
    s->max_stderr_bytes = cfg->max_stderr_bytes;
    s->kill_grace_ms = (uint64_t)cfg->kill_grace_seconds * 1000u;
    s->api_url = executor_api_url(cfg->api_url);
    int rc = sandbox_new(cfg, &s->sandbox, err, errlen);
    if (rc == 0)
        rc = sandbox_limits_new(cfg, &s->limits, err, errlen);
    if (rc < 0)
        return rc;
    /* worker.env may set PATH: the interpreters are found where actions look. */
    return registry_init(reg, wanted_runtimes, strv_getenv(&s->base_env, "PATH"), err, errlen);
}

void executor_settings_free(struct executor_settings *s)
{
    spare_pool_free(s->spares);
    s->spares = NULL;
    strv_free(&s->base_env);
    fork_server_free(s->fork_server);
    s->fork_server = NULL;
    sandbox_free(s->sandbox);
    s->sandbox = NULL;
    sandbox_limits_free(s->limits);
    s->limits = NULL;
    free(s->runtime_envs_dir);
    s->runtime_envs_dir = NULL;
    free(s->api_url);
    s->api_url = NULL;
}
