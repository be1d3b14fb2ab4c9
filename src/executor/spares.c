/* The pool of spare interpreter processes (see spares.h). */
#include "executor/spares.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/metrics.h"
#include "exec/sandbox.h"
#include "exec/sandbox_limits.h"
#include "executor/executor.h"

/* Spares of a runtime that die while idle this many times in a row: the
 * runtime gets no more (its interpreter cannot start, say). */
#define SPARE_DEATHS_MAX 5
#define SPARE_KINDS_MAX 4
/* After a spare could not be started (no free uid, say): the next try. */
#define SPARE_RETRY_US (1000 * 1000)

struct spare_kind {
    const struct runtime *rt;
    size_t target;       /* spares kept ready */
    struct spare **idle; /* oldest first */
    size_t n_idle;
    int deaths; /* idle deaths in a row */
};

struct spare_pool {
    sd_event *loop;
    struct executor_settings *settings;
    struct spare_kind kinds[SPARE_KINDS_MAX];
    size_t n_kinds;
    struct strv env;             /* what each spare starts with */
    struct strv preload;         /* runtimes.python.preload */
    struct limits_slot limits;   /* the rlimits, when they are the limits */
    sd_event_source *refill_src; /* deferred, one shot */
    sd_event_source *retry_src;  /* a timer, after a failed start */
    sd_event_source *exit_src;
    bool stopped;
};

struct spare {
    struct spare_pool *pool;
    struct spare_kind *kind;
    struct proc *proc;
    uid_t uid; /* 0: none, or handed to an execution */
};

static void spare_schedule_refill(struct spare_pool *pool)
{
    if (!pool->stopped)
        sd_event_source_set_enabled(pool->refill_src, SD_EVENT_ONESHOT);
}

static void spare_remove_idle(struct spare *spare)
{
    struct spare_kind *k = spare->kind;
    for (size_t i = 0; i < k->n_idle; i++) {
        if (k->idle[i] != spare)
            continue;
        memmove(&k->idle[i], &k->idle[i + 1], (k->n_idle - i - 1) * sizeof(*k->idle));
        k->n_idle--;
        metrics_spares_idle(k->rt->name, k->n_idle);
        return;
    }
}

void spare_discard(struct spare *spare)
{
    if (!spare)
        return;
    const struct executor_settings *s = spare->pool->settings;
    pid_t pid = proc_pid(spare->proc);
    proc_free(spare->proc); /* kills the group and reaps it */
    if (s->on_reap && pid > 0)
        s->on_reap(pid, s->hook_userdata);
    sandbox_drop_uid(s->sandbox, spare->uid, -1);
    free(spare);
}

static void on_spare_exit(struct proc *proc, void *userdata)
{
    struct spare *spare = userdata;
    const struct proc_result *r = proc_get_result(proc);
    struct spare_kind *k = spare->kind;
    struct spare_pool *pool = spare->pool;
    spare_remove_idle(spare);
    if (!r->exited && r->signal == 0) { /* never started: the fork server refused */
        spare_discard(spare);
        spare_schedule_refill(pool);
        return;
    }
    log_warn("spare %s process %d ended while idle (%s %d)", k->rt->name, (int)proc_pid(proc),
             r->exited ? "exit status" : "signal", r->exited ? r->exit_code : r->signal);
    if (++k->deaths == SPARE_DEATHS_MAX)
        log_warn("no more spare %s processes: %d died idle in a row", k->rt->name, k->deaths);
    spare_discard(spare);
    spare_schedule_refill(pool);
}

/* The guardian learns of the spare's group once it exists. */
static void on_spare_started(struct proc *proc, void *userdata)
{
    struct spare_pool *pool = ((struct spare *)userdata)->pool;
    const struct executor_settings *s = pool->settings;
    if (s->on_spawn)
        s->on_spawn(proc_pid(proc), s->hook_userdata);
    spare_schedule_refill(pool); /* the fork server may fork the next now */
}

static int spare_spawn(struct spare_pool *pool, struct spare_kind *k)
{
    struct executor_settings *s = pool->settings;
    struct spare *spare = xcalloc(1, sizeof(*spare));
    spare->pool = pool;
    spare->kind = k;
    int rc = sandbox_take_uid(s->sandbox, &spare->uid);
    if (rc < 0) {
        free(spare);
        return rc;
    }
    struct launch l;
    launch_init(&l);
    k->rt->spare_launch(k->rt, pool->preload.items, &l);
    struct proc_spec spec = {
        .path = l.path,
        .argv = l.argv.items,
        .envp = pool->env.items,
        .cwd = "/",
        .control = l.control,
        .kill_grace_ms = s->kill_grace_ms,
        .uid = spare->uid,
        .gid = (gid_t)spare->uid,
        .limits = &pool->limits.spawn,
        /* Forked from the runtime's warm interpreter when it is ready;
         * else started cold from argv, to the same end. */
        .fork_server = l.forkable ? s->fork_server : NULL,
        .started = on_spare_started,
    };
    char err[256];
    rc = proc_prespawn(pool->loop, &spec, on_spare_exit, spare, &spare->proc, err, sizeof(err));
    launch_free(&l);
    if (rc < 0) {
        if (rc != -EBUSY)
            log_warn("%s", err);
        sandbox_drop_uid(s->sandbox, spare->uid, -1);
        free(spare);
        return rc;
    }
    k->idle[k->n_idle++] = spare;
    metrics_spares_idle(k->rt->name, k->n_idle);
    return 0;
}

static int on_retry(sd_event_source *src, uint64_t usec, void *userdata)
{
    (void)src;
    (void)usec;
    spare_schedule_refill(userdata);
    return 0;
}

static int on_refill(sd_event_source *src, void *userdata)
{
    struct spare_pool *pool = userdata;
    bool retry = false;
    /* A spare's start takes milliseconds of CPU, which executions at work
     * would share: while there are some, only a runtime with no spare left
     * gets one; the rest come when they are done (spare_pool_refill). */
    bool busy = proc_busy_count() > 0;
    (void)src;
    for (size_t i = 0; i < pool->n_kinds; i++) {
        struct spare_kind *k = &pool->kinds[i];
        if (busy && k->n_idle > 0)
            continue;
        while (!pool->stopped && k->deaths < SPARE_DEATHS_MAX && k->n_idle < k->target) {
            int rc = spare_spawn(pool, k);
            if (rc == -EBUSY) /* the fork server forks one: the rest once it has */
                break;
            if (rc < 0) {
                retry = ++k->deaths < SPARE_DEATHS_MAX;
                break;
            }
        }
    }
    if (retry) {
        sd_event_source_set_time_relative(pool->retry_src, SPARE_RETRY_US);
        sd_event_source_set_enabled(pool->retry_src, SD_EVENT_ONESHOT);
    }
    return 0;
}

static void spare_pool_stop(struct spare_pool *pool)
{
    pool->stopped = true;
    sd_event_source_set_enabled(pool->refill_src, SD_EVENT_OFF);
    sd_event_source_set_enabled(pool->retry_src, SD_EVENT_OFF);
    for (size_t i = 0; i < pool->n_kinds; i++) {
        struct spare_kind *k = &pool->kinds[i];
        while (k->n_idle > 0)
            spare_discard(k->idle[--k->n_idle]);
        metrics_spares_idle(k->rt->name, 0);
    }
}

/* At the loop's exit, while the guardian still hears of the uids swept. */
static int on_loop_exit(sd_event_source *src, void *userdata)
{
    (void)src;
    spare_pool_stop(userdata);
    return 0;
}

struct spare *spare_pool_take(struct spare_pool *pool, const struct runtime *rt,
                              const struct action *action)
{
    if (!pool || pool->stopped || runtime_has_config(action) ||
        action->parameter_delivery == PARAM_DELIVERY_FILE)
        return NULL;
    for (size_t i = 0; i < pool->n_kinds; i++) {
        struct spare_kind *k = &pool->kinds[i];
        if (k->rt != rt)
            continue;
        struct spare *spare = NULL; /* the oldest that is not still being forked */
        for (size_t j = 0; j < k->n_idle && !spare; j++)
            if (proc_started(k->idle[j]->proc))
                spare = k->idle[j];
        if (!spare)
            return NULL;
        spare_remove_idle(spare);
        k->deaths = 0;
        spare_schedule_refill(pool);
        return spare;
    }
    return NULL;
}

void spare_pool_refill(struct spare_pool *pool)
{
    if (pool)
        spare_schedule_refill(pool);
}

bool spare_pool_serves(const struct spare_pool *pool, const struct runtime *rt)
{
    for (size_t i = 0; pool && i < pool->n_kinds; i++)
        if (pool->kinds[i].rt == rt && pool->kinds[i].target > 0)
            return true;
    return false;
}

uid_t spare_hand_uid(struct spare *spare)
{
    uid_t uid = spare->uid;
    spare->uid = 0;
    return uid;
}

int spare_start(struct spare **spare_p, struct spare_input *in, const struct proc_spec *spec,
                proc_done_fn done, void *userdata, struct proc **out, char *err, size_t errlen)
{
    struct spare *spare = *spare_p;
    struct strbuf control;
    strbuf_init(&control);
    *spare_p = NULL;
    in->spare_env = &spare->pool->env;
    in->spare_path = spare->kind->rt->interpreter;
    int rc = spare->kind->rt->spare_control(in, &control);
    struct proc_spec armed = *spec;
    armed.control_data = control.data;
    armed.control_len = control.len;
    if (rc < 0)
        set_error(err, errlen, rc, "the execution cannot run in a spare process");
    else
        rc = proc_arm(spare->proc, &armed, done, userdata, err, errlen);
    if (control.data)
        secure_zero(control.data, control.cap);
    strbuf_free(&control);
    if (rc < 0) {
        spare_discard(spare);
        return rc;
    }
    *out = spare->proc;
    free(spare);
    return 0;
}

/* worker.spare_processes per runtime, in turn, until the spares of all
 * runtimes reach worker.max_concurrent_tasks, and in uid mode the uids the
 * running executions can never need. Returns the total. */
static size_t spare_targets(struct spare_pool *pool, const struct executor_settings *s,
                            const struct config *cfg)
{
    size_t cap = (size_t)cfg->max_concurrent_tasks, total = 0;
    size_t wanted = (size_t)cfg->spare_processes * pool->n_kinds;
    if (s->sandbox && s->sandbox->mode == SANDBOX_MODE_UID &&
        s->sandbox->uids.count - (size_t)cfg->max_concurrent_tasks < cap)
        cap = s->sandbox->uids.count - (size_t)cfg->max_concurrent_tasks;
    for (size_t round = 0; round < (size_t)cfg->spare_processes; round++)
        for (size_t i = 0; i < pool->n_kinds && total < cap; i++, total++)
            pool->kinds[i].target++;
    if (total < wanted)
        log_info("worker.spare_processes: %zu spares in all rather than %zu, at most "
                 "worker.max_concurrent_tasks and in uid mode the uids of sandbox.uid_range "
                 "beyond it",
                 total, wanted);
    return total;
}

static bool spare_pool_possible(const struct executor_settings *s)
{
    return !(s->sandbox && s->sandbox->mode != SANDBOX_MODE_UID) &&
           sandbox_limits_backend(s->limits) != LIMITS_CGROUP;
}

static void spare_pool_env(struct spare_pool *pool, const struct executor_settings *s)
{
    for (size_t i = 0; i < s->base_env.len; i++)
        strv_push(&pool->env, s->base_env.items[i]);
    /* As sandbox_env gives executions: bash on a uid without a user entry
     * spares its lookup. */
    if (s->sandbox && !strv_getenv(&pool->env, "SHELL"))
        strv_setenv(&pool->env, "SHELL", "/bin/sh");
}

struct spare_pool *spare_pool_new(sd_event *loop, struct executor_settings *s,
                                  const struct config *cfg)
{
    if (cfg->spare_processes == 0 || !spare_pool_possible(s))
        return NULL;
    struct spare_pool *pool = xcalloc(1, sizeof(*pool));
    for (size_t i = 0; i < s->registry->count && pool->n_kinds < SPARE_KINDS_MAX; i++) {
        const struct runtime *rt = s->registry->runtimes[i];
        if (rt->usable && rt->spare_launch && rt->spare_control)
            pool->kinds[pool->n_kinds++].rt = rt;
    }
    size_t total = spare_targets(pool, s, cfg);
    char err[256];
    if (total == 0 || sandbox_limits_enter(s->limits, &pool->limits, err, sizeof(err))) {
        free(pool);
        return NULL;
    }
    pool->loop = sd_event_ref(loop);
    pool->settings = s;
    strv_init(&pool->env);
    spare_pool_env(pool, s);
    strv_init(&pool->preload);
    for (char *const *m = cfg->python_preload; m && *m; m++)
        strv_push(&pool->preload, *m);
    for (size_t i = 0; i < pool->n_kinds; i++)
        pool->kinds[i].idle = xcalloc(pool->kinds[i].target + 1, sizeof(*pool->kinds[i].idle));
    sd_event_add_defer(loop, &pool->refill_src, on_refill, pool);
    /* After whatever else is pending: an execution's own events come first. */
    sd_event_source_set_priority(pool->refill_src, SD_EVENT_PRIORITY_IDLE);
    sd_event_add_time_relative(loop, &pool->retry_src, CLOCK_MONOTONIC, SPARE_RETRY_US, 100000,
                               on_retry, pool);
    sd_event_source_set_enabled(pool->retry_src, SD_EVENT_OFF);
    sd_event_add_exit(loop, &pool->exit_src, on_loop_exit, pool);
    for (size_t i = 0; i < pool->n_kinds; i++) {
        log_info("spare processes: %zu of %s", pool->kinds[i].target, pool->kinds[i].rt->name);
        metrics_spares_idle(pool->kinds[i].rt->name, 0);
    }
    return pool;
}

void spare_pool_free(struct spare_pool *pool)
{
    if (!pool)
        return;
    spare_pool_stop(pool);
    sd_event_source_disable_unref(pool->refill_src);
    sd_event_source_disable_unref(pool->retry_src);
    sd_event_source_disable_unref(pool->exit_src);
    for (size_t i = 0; i < pool->n_kinds; i++)
        free(pool->kinds[i].idle);
    sandbox_limits_leave(pool->settings->limits, &pool->limits, NULL);
    strv_free(&pool->env);
    strv_free(&pool->preload);
    sd_event_unref(pool->loop);
    free(pool);
}
