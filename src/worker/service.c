/* The worker service (see service.h): start-up in order (runtimes, database,
 * registration, broker), the loop, and the graceful shutdown of CONTRACT.md
 * section 9. */
#include "worker/service.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/util.h"
#include "db/db.h"
#include "executor/executor.h"
#include "executor/settings.h"
#include "mq/envelope.h"
#include "mq/mq.h"
#include "runtime/registry.h"
#include "worker/artifacts.h"
#include "worker/cancel_requests.h"
#include "worker/guardian.h"
#include "worker/job.h"
#include "worker/job_io.h"
#include "worker/observability.h"
#include "worker/registration.h"
#include "worker/report.h"

#define SERVICE_RETENTION_PERIOD_S (6 * 3600)
#define SERVICE_CONFIRM_WAIT_MS 5000
/* What may wait for the broker or the database before new work stops. */
#define SERVICE_BACKLOG_MAX_BYTES ((size_t)64 << 20)
#define SERVICE_BACKLOG_MAX_QUERIES 2000
#define SERVICE_FLOW_CHECK_US 200000

enum service_state { SERVICE_STARTING, SERVICE_READY, SERVICE_DRAINING, SERVICE_STOPPING };

struct service {
    const struct config *cfg;
    sd_event *loop;
    struct db *db;
    struct mq *mq;
    struct registry registry;
    struct executor_settings settings;
    struct job_io job_io;
    struct job_context job_ctx;
    struct guardian *guardian;
    struct observability *obs;
    bool paused;    /* flow control: too much waits for the broker or database */
    bool consuming; /* what was last asked of the broker */
    int64_t worker_id;
    struct job **jobs;       /* max_concurrent_tasks slots, the first n_jobs in use */
    struct cancels *cancels; /* cancel requests waiting for their dispatch */
    size_t n_jobs;
    enum service_state state;
    int signals_seen;
    int exit_status;
    uint64_t started_ms;
    uint64_t stop_deadline_ms;
    sd_event_source *heartbeat_src, *retention_src, *drain_src, *confirm_src, *flow_src,
        *hard_stop_src, *reap_src;
};

static void service_stop(struct service *svc, int status)
{
    svc->exit_status = status;
    sd_event_exit(svc->loop, status);
}

/* Jobs */

/* Messages are acknowledged as soon as an execution is claimed (an action may
 * run longer than the broker's consumer timeout), so the prefetch does not
 * bound the work in hand: the consumer is cancelled while every slot is
 * taken or while flow control holds, and resumed after. */
static void service_update_consuming(struct service *svc)
{
    if (svc->state != SERVICE_READY || !svc->mq)
        return;
    bool full = svc->n_jobs >= (size_t)svc->cfg->max_concurrent_tasks;
    bool want = !svc->paused && !full;
    if (want == svc->consuming)
        return;
    svc->consuming = want;
    if (want)
        mq_resume_consuming(svc->mq);
    else
        mq_stop_consuming(svc->mq);
}

static void on_delivery(struct mq *mq, const struct mq_delivery *d, void *userdata)
{
    struct service *svc = userdata;
    if (d->queue == MQ_QUEUE_CANCEL) {
        cancel_requests_take(svc->cancels, svc->jobs, svc->n_jobs, mq, d);
        return;
    }
    if (svc->state != SERVICE_READY || svc->n_jobs >= (size_t)svc->cfg->max_concurrent_tasks) {
        /* Not ours to start now (stopping, or sent before the consumer was
         * cancelled): back to the queue. */
        mq_reject(mq, d, true);
        metrics_message_requeued();
        return;
    }
    struct job *job = job_start(&svc->job_ctx, d);
    svc->jobs[svc->n_jobs++] = job;
    cancel_requests_apply_pending(svc->cancels, job);
    service_update_consuming(svc);
}

static void service_finish_shutdown(struct service *svc);

/* Jobs that are over are freed here, from the loop, never from inside
 * their own last step. */
static int on_reap(sd_event_source *s, void *userdata)
{
    struct service *svc = userdata;
    (void)s;
    for (size_t i = 0; i < svc->n_jobs;) {
        if (job_state(svc->jobs[i]) != JOB_DONE) {
            i++;
            continue;
        }
        job_free(svc->jobs[i]);
        svc->jobs[i] = svc->jobs[--svc->n_jobs];
    }
    if (svc->state == SERVICE_DRAINING && svc->n_jobs == 0)
        service_finish_shutdown(svc);
    else
        service_update_consuming(svc);
    return 0;
}

static void on_job_done(struct job *job, void *userdata)
{
    struct service *svc = userdata;
    (void)job;
    sd_event_source_set_enabled(svc->reap_src, SD_EVENT_ONESHOT);
}

static bool service_holds(int64_t execution_id, void *userdata)
{
    struct service *svc = userdata;
    for (size_t i = 0; i < svc->n_jobs; i++)
        if (job_holds_execution(svc->jobs[i]) && job_execution_id(svc->jobs[i]) == execution_id)
            return true;
    return false;
}

/* Shutdown */

static int on_confirm_wait(sd_event_source *s, uint64_t usec, void *userdata)
{
    struct service *svc = userdata;
    (void)s;
    (void)usec;
    bool waiting = mq_unconfirmed(svc->mq) > 0 || db_pending(svc->db) > 0;
    if (!waiting || time_monotonic_ms() >= svc->stop_deadline_ms) {
        if (waiting)
            log_warn("stopping with %zu messages unconfirmed and %zu queries pending",
                     mq_unconfirmed(svc->mq), db_pending(svc->db));
        log_info("stopped");
        service_stop(svc, 0);
        return 0;
    }
    sd_event_source_set_time_relative(s, 20000);
    sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
    return 0;
}

static void on_deregistered(void *userdata)
{
    struct service *svc = userdata;
    svc->stop_deadline_ms = time_monotonic_ms() + SERVICE_CONFIRM_WAIT_MS;
    sd_event_add_time_relative(svc->loop, &svc->confirm_src, CLOCK_MONOTONIC, 0, 1000,
                               on_confirm_wait, svc);
}

static void service_finish_shutdown(struct service *svc)
{
    if (svc->state == SERVICE_STOPPING)
        return;
    svc->state = SERVICE_STOPPING;
    svc->drain_src = sd_event_source_disable_unref(svc->drain_src);
    svc->heartbeat_src = sd_event_source_disable_unref(svc->heartbeat_src);
    if (svc->worker_id > 0)
        registration_deregister(svc->db, svc->worker_id, on_deregistered, svc);
    else
        service_stop(svc, 0);
}

static int on_drain_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
    struct service *svc = userdata;
    (void)s;
    (void)usec;
    log_warn("shutdown_timeout reached; cancelling %zu running executions", svc->n_jobs);
    for (size_t i = 0; i < svc->n_jobs; i++)
        job_step(svc->jobs[i], &(struct job_event){.kind = JOB_EVENT_SHUTDOWN});
    return 0;
}

/* Whatever waits on a server that does not come back, the service stops
 * in bounded time: shutdown_timeout for the actions, the kill grace of the
 * ones still running then, and this much more to record and report them. */
#define SERVICE_HARD_STOP_EXTRA_S 10

static int on_hard_stop(sd_event_source *s, uint64_t usec, void *userdata)
{
    struct service *svc = userdata;
    (void)s;
    (void)usec;
    log_warn("could not finish stopping in time (database or broker away?); stopping now");
    service_stop(svc, 0);
    return 0;
}

static void service_arm_hard_stop(struct service *svc)
{
    uint64_t seconds = (uint64_t)svc->cfg->shutdown_timeout +
                       (uint64_t)svc->cfg->kill_grace_seconds + SERVICE_HARD_STOP_EXTRA_S;
    sd_event_add_time_relative(svc->loop, &svc->hard_stop_src, CLOCK_MONOTONIC, seconds * 1000000u,
                               100000, on_hard_stop, svc);
}

static void service_begin_shutdown(struct service *svc)
{
    sd_notify(0, "STOPPING=1");
    if (svc->state == SERVICE_STARTING) {
        service_stop(svc, 0);
        return;
    }
    svc->state = SERVICE_DRAINING;
    if (svc->mq)
        mq_stop_consuming(svc->mq);
    log_info("stopping: waiting up to %d s for %zu running executions", svc->cfg->shutdown_timeout,
             svc->n_jobs);
    if (svc->n_jobs == 0) {
        service_arm_hard_stop(svc);
        service_finish_shutdown(svc);
        return;
    }
    sd_event_add_time_relative(svc->loop, &svc->drain_src, CLOCK_MONOTONIC,
                               (uint64_t)svc->cfg->shutdown_timeout * 1000000u, 1000,
                               on_drain_timeout, svc);
    service_arm_hard_stop(svc);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
    struct service *svc = userdata;
    (void)s;
    if (++svc->signals_seen > 1) {
        log_warn("second signal (%s): stopping now", strsignal((int)si->ssi_signo));
        service_stop(svc, 0);
        return 0;
    }
    log_info("received %s", strsignal((int)si->ssi_signo));
    service_begin_shutdown(svc);
    return 0;
}

/* Periodic work */

static int on_heartbeat(sd_event_source *s, uint64_t usec, void *userdata)
{
    struct service *svc = userdata;
    registration_heartbeat(svc->db, svc->worker_id);
    sd_event_source_set_time(s, usec + (uint64_t)svc->cfg->heartbeat_interval * 1000000u);
    return 0;
}

static int on_retention(sd_event_source *s, uint64_t usec, void *userdata)
{
    struct service *svc = userdata;
    int removed = artifacts_remove_expired(svc->cfg->artifacts_dir, svc->cfg->worker_name,
                                           svc->cfg->artifact_retention_days);
    if (removed > 0)
        log_info("removed %d artifact directories older than %d days", removed,
                 svc->cfg->artifact_retention_days);
    sd_event_source_set_time(s, usec + (uint64_t)SERVICE_RETENTION_PERIOD_S * 1000000u);
    return 0;
}

static int service_add_timer(struct service *svc, sd_event_source **src, uint64_t period_s,
                             sd_event_time_handler_t fn)
{
    int rc = sd_event_add_time_relative(svc->loop, src, CLOCK_MONOTONIC, period_s * 1000000u,
                                        100000, fn, svc);
    if (rc >= 0)
        rc = sd_event_source_set_enabled(*src, SD_EVENT_ON);
    return rc;
}

/* Nothing held back is ever dropped, so while the broker or the database is
 * away what waits for them is bounded by taking no new work. */
static int on_flow_check(sd_event_source *s, uint64_t usec, void *userdata)
{
    struct service *svc = userdata;
    size_t bytes = mq_unconfirmed_bytes(svc->mq), queries = db_pending(svc->db);
    bool over = bytes > SERVICE_BACKLOG_MAX_BYTES || queries > SERVICE_BACKLOG_MAX_QUERIES;
    bool under = bytes < SERVICE_BACKLOG_MAX_BYTES / 2 && queries < SERVICE_BACKLOG_MAX_QUERIES / 2;
    if (svc->state == SERVICE_READY && !svc->paused && over) {
        log_warn("%zu bytes of messages and %zu queries are waiting; taking no new work until "
                 "they are through",
                 bytes, queries);
        svc->paused = true;
        service_update_consuming(svc);
    } else if (svc->state == SERVICE_READY && svc->paused && under) {
        log_info("backlog cleared; taking work again");
        svc->paused = false;
        service_update_consuming(svc);
    }
    sd_event_source_set_time(s, usec + SERVICE_FLOW_CHECK_US);
    return 0;
}

/* Start-up */

static void on_mq_state(struct mq *mq, bool connected, void *userdata)
{
    (void)mq;
    (void)userdata;
    metrics_server_state(METRICS_SERVER_MESSAGE_QUEUE, connected);
    log_debug("broker %s", connected ? "connected" : "disconnected");
}

static void service_ready(struct service *svc)
{
    struct mq_settings ms = {
        .url = svc->cfg->message_queue_url,
        .worker_id = svc->worker_id,
        .prefetch = svc->cfg->max_concurrent_tasks,
        .heartbeat_seconds = 30,
    };
    svc->job_ctx.worker_id = svc->worker_id;
    /* Deliveries come from the loop, after this function has returned. */
    svc->mq = mq_new(svc->loop, &ms, on_delivery, on_mq_state, svc);
    svc->job_io.mq = svc->mq;
    service_add_timer(svc, &svc->heartbeat_src, (uint64_t)svc->cfg->heartbeat_interval,
                      on_heartbeat);
    service_add_timer(svc, &svc->retention_src, 1, on_retention);
    sd_event_add_time_relative(svc->loop, &svc->flow_src, CLOCK_MONOTONIC, SERVICE_FLOW_CHECK_US,
                               50000, on_flow_check, svc);
    sd_event_source_set_enabled(svc->flow_src, SD_EVENT_ON);
    svc->state = SERVICE_READY;
    svc->consuming = true; /* mq_new starts the consumer */
    sd_notify(0, "READY=1");
    log_info("worker %s (id %lld) ready in %llu ms: queue worker.%lld.executions, %d slots",
             svc->cfg->worker_name, (long long)svc->worker_id,
             (unsigned long long)(time_monotonic_ms() - svc->started_ms), (long long)svc->worker_id,
             svc->cfg->max_concurrent_tasks);
}

/* Each execution an earlier run left behind gets its two messages now. */
static void on_stale_abandoned(const struct abandoned_row *rows, size_t count, const char *error,
                               void *userdata)
{
    struct service *svc = userdata;
    (void)error;
    if (count > 0)
        log_warn("%zu executions left running by an earlier run of this worker were marked "
                 "abandoned",
                 count);
    report_abandoned(svc->mq, rows, count);
}

static void on_registered(int64_t worker_id, const char *error, void *userdata)
{
    struct service *svc = userdata;
    if (error) {
        log_error("cannot register the worker: %s (has `attunectl migrate` been run?)", error);
        service_stop(svc, 1);
        return;
    }
    svc->worker_id = worker_id;
    /* Queued before any claim the broker's deliveries cause, so it runs first. */
    registration_abandon_stale(svc->db, worker_id, on_stale_abandoned, svc);
    service_ready(svc);
}

static void on_db_state(struct db *db, bool connected, void *userdata)
{
    (void)db;
    (void)userdata;
    metrics_server_state(METRICS_SERVER_DATABASE, connected);
    log_debug("database %s", connected ? "connected" : "disconnected");
}

static int service_setup_loop(struct service *svc)
{
    int rc = event_loop_new(&svc->loop, on_signal, svc);
    if (rc >= 0)
        rc = sd_event_set_watchdog(svc->loop, true);
    return rc < 0 ? rc : 0;
}

static int service_setup_runtimes(struct service *svc)
{
    char err[512];
    if (executor_settings_init(&svc->settings, &svc->registry, svc->cfg, svc->cfg->runtimes, err,
                               sizeof(err)) < 0) {
        fprintf(stderr, "attune-worker: configuration error: worker.runtimes: %s\n", err);
        return -EINVAL;
    }
    executor_settings_service_start(&svc->settings, svc->cfg, svc->loop);
    /* Before any execution: each one's group and uid reach the guardian. */
    guardian_attach(svc->guardian, &svc->settings);
    struct strbuf names;
    strbuf_init(&names);
    registry_describe(&svc->registry, &names);
    log_info("runtimes available: %s", names.len ? names.data : "none");
    strbuf_free(&names);
    return 0;
}

static void service_setup_jobs(struct service *svc)
{
    svc->jobs = xcalloc((size_t)svc->cfg->max_concurrent_tasks, sizeof(*svc->jobs));
    svc->cancels = xcalloc(1, sizeof(*svc->cancels));
    sd_event_add_defer(svc->loop, &svc->reap_src, on_reap, svc);
    sd_event_source_set_enabled(svc->reap_src, SD_EVENT_OFF);
    svc->job_io = (struct job_io){
        .loop = svc->loop,
        .db = svc->db,
        .settings = &svc->settings,
        .log_rows = log_rows_new(svc->db, svc->cfg),
        .held_here = service_holds,
        .done = on_job_done,
        .owner = svc,
    };
    svc->settings.log_digests = svc->job_io.log_rows != NULL; /* for the log rows' seal */
    svc->job_ctx = (struct job_context){
        .cfg = svc->cfg,
        .registry = &svc->registry,
        .ports = &job_io_ports,
        .io = &svc->job_io,
    };
}

static void service_observe(void *userdata, struct observability_status *st)
{
    const struct service *svc = userdata;
    *st = (struct observability_status){.db = svc->db, .mq = svc->mq, .running = svc->n_jobs};
    st->paused = svc->paused;
    st->registered = svc->state == SERVICE_READY;
}

static void service_free(struct service *svc)
{
    observability_free(svc->obs);
    for (size_t i = 0; i < svc->n_jobs; i++)
        job_free(svc->jobs[i]);
    free(svc->jobs);
    free(svc->cancels);
    log_rows_free(svc->job_io.log_rows);
    sd_event_source_disable_unref(svc->reap_src);
    sd_event_source_disable_unref(svc->heartbeat_src);
    sd_event_source_disable_unref(svc->retention_src);
    sd_event_source_disable_unref(svc->drain_src);
    sd_event_source_disable_unref(svc->confirm_src);
    sd_event_source_disable_unref(svc->flow_src);
    sd_event_source_disable_unref(svc->hard_stop_src);
    mq_free(svc->mq);
    db_free(svc->db);
    guardian_stop(svc->guardian);
    registry_free(&svc->registry);
    executor_settings_free(&svc->settings);
    sd_event_unref(svc->loop);
}

int service_run(const struct config *cfg)
{
    struct service svc = {.cfg = cfg, .started_ms = time_monotonic_ms(), .exit_status = 1};
    svc.guardian = guardian_start();
    if (service_setup_loop(&svc) < 0) {
        service_free(&svc);
        return 1;
    }
    if (service_setup_runtimes(&svc) < 0) {
        service_free(&svc);
        return CONFIG_EXIT_STATUS;
    }
    registry_start_version_probes(&svc.registry);
    svc.db = db_new(svc.loop, cfg, on_db_state, &svc);
    service_setup_jobs(&svc);
    svc.obs = observability_start(svc.loop, cfg, service_observe, &svc);
    registration_register(svc.db, cfg, &svc.registry, on_registered, &svc);
    log_rows_probe(svc.job_io.log_rows);
    log_info("starting worker %s", cfg->worker_name);
    sd_event_loop(svc.loop);
    int status = svc.exit_status;
    service_free(&svc);
    return status;
}
