/* One execution request as one state machine (see job.h), written in
 * lifecycle order: start, claim, load, run here, then record and report in
 * job_end.c. Each state has one handler, on_<state>; job_step at the end
 * hands every event to the handler of the current state. */
#include "worker/job.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jwt.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/util.h"
#include "mq/envelope.h"
#include "worker/artifacts.h"
#include "worker/job_action.h"
#include "worker/job_inputs.h"
#include "worker/job_private.h"
#include "worker/secret_results.h"
#include "worker/secrets.h"

static void job_run(struct job *job);

/* The broker message */

static void job_ack(struct job *job)
{
    PORT(job, ack, job->connection, job->delivery_tag);
    job->settled = true;
}

static void job_reject(struct job *job, const char *why)
{
    log_warn("message rejected to the dead-letter queue: %s", why);
    metrics_message_dead_lettered();
    PORT(job, reject, job->connection, job->delivery_tag, false);
    job->settled = true;
    job_over(job);
}

static void job_requeue(struct job *job, const char *why)
{
    log_warn("execution %s: %s; returned to the queue", job->id_text, why);
    metrics_message_requeued();
    PORT(job, reject, job->connection, job->delivery_tag, true);
    job->settled = true;
    job_over(job);
}

/* Start: the message parses, or goes to the dead-letter queue. */

struct job *job_start(const struct job_context *ctx, const struct mq_delivery *d)
{
    struct job *job = xcalloc(1, sizeof(*job));
    char why[512];
    job->ctx = *ctx;
    job->received_us = time_monotonic_us();
    job->state = JOB_CLAIMING;
    job->connection = d->connection;
    job->delivery_tag = d->delivery_tag;
    if (envelope_parse_request(d->body, d->len, &job->msg, why, sizeof(why)) < 0) {
        job_reject(job, why);
        return job;
    }
    snprintf(job->id_text, sizeof(job->id_text), "%lld", (long long)job->msg.execution_id);
    log_debug("execution %s: request received", job->id_text);
    job->ex.action_ref = xstrdup(job->msg.action_ref);
    PORT(job, claim, job, job->msg.execution_id, job->ctx.worker_id,
         job->ctx.cfg->secrets_keystore);
    return job;
}

/* Claim: one guarded UPDATE makes the execution ours; when it matches
 * nothing, the row says whether it is someone else's, gone, ours with the
 * claim's reply lost to a dropped connection, or cancelled before it ran. */

static void job_prepare(struct job *job, int64_t pack_id, int64_t action_id,
                        const struct execution_row *claim);
static void job_action_from_claim(struct job *job, const struct execution_row *claim);

/* The claim's row holds all a pinned execution needs: its release, its
 * snapshot and its secret values; for an unpinned one, its action row too,
 * and the keys of either, when they are those of the action it runs. */
static void job_claimed(struct job *job, const struct execution_row *row)
{
    job_execution_take(&job->ex, row);
    job->dir = artifacts_execution_dir(job->ctx.cfg->artifacts_dir, job->ctx.cfg->worker_name,
                                       job->id_text);
    job_ack(job);
    log_info("execution %s (%s) running", job->id_text, job->ex.action_ref);
    metrics_execution_started();
    metrics_queue_wait(job->msg.timestamp); /* once per execution, redelivered or not */
    job->claimed_ms = time_monotonic_ms();
    struct report_subject subject = job_subject(job);
    PORT(job, publish_status, &subject, row->previous_status, "running");
    char err[1024];
    if (job->stop != JOB_STOP_NONE) {
        job_stopped_before_start(job);
        return;
    }
    if (job_inputs_check_release(&job->ex, &job->msg, err, sizeof(err)) < 0 ||
        job_inputs_restore(&job->ex, row, job->ctx.cfg->encryption_key, err, sizeof(err)) < 0) {
        job_fail(job, err);
        return;
    }
    if (!job_execution_pinned(&job->ex)) {
        job_action_from_claim(job, row);
        return;
    }
    int64_t pack_id = 0, action_id = 0;
    if (job_action_from_snapshot(&job->ex, job->ctx.cfg->packs_base_dir, job->ctx.registry,
                                 &job->action, &action_id, &pack_id, err, sizeof(err)) < 0) {
        job_fail(job, err);
        return;
    }
    if (job->ex.action_id == 0)
        job->ex.action_id = action_id;
    job_prepare(job, pack_id, action_id, row);
}

/* Attune's worker leaves an execution cancelled before it ran as it is and
 * reports it cancelled (a canceling one) or not at all (a cancelled one). */
static void job_cancelled_before_start(struct job *job, const struct execution_owner *owner)
{
    job_ack(job);
    if (!job_release_matches(&job->msg, owner->pack_release, owner->pack_release_digest)) {
        log_warn("execution %s is %s, and the dispatch message names another pack release; "
                 "acknowledged, not reported",
                 job->id_text, owner->status);
    } else if (strcmp(owner->status, "canceling") == 0) {
        log_info("execution %s was cancelled before it started; reported cancelled", job->id_text);
        free(job->ex.action_ref);
        job->ex.action_ref = xstrdup(owner->action_ref);
        job->ex.action_id = owner->action_id;
        struct report_subject subject = job_subject(job);
        json_t *result = owner->result ? json_incref(owner->result) : json_null();
        PORT(job, publish_status, &subject, "canceling", "cancelled");
        PORT(job, publish_completed, &subject, "cancelled", result);
        json_decref(result);
    } else {
        log_info("execution %s is already cancelled; acknowledged, not run", job->id_text);
    }
    job_over(job);
}

static void on_claiming(struct job *job, const struct job_event *ev)
{
    if (ev->kind == JOB_EVENT_ROW) {
        job_claimed(job, ev->execution);
    } else if (ev->kind == JOB_EVENT_NO_ROW) {
        job_enter(job, JOB_CHECKING);
        PORT(job, find_owner, job, job->msg.execution_id);
    } else if (ev->kind == JOB_EVENT_DB_ERROR) {
        /* The database is the truth and cannot answer: let the broker retry. */
        job_requeue(job, ev->error);
    }
}

static void on_checking(struct job *job, const struct job_event *ev)
{
    char why[256];
    if (ev->kind == JOB_EVENT_DB_ERROR) {
        snprintf(why, sizeof(why), "cannot check its status: %s", ev->error);
        job_requeue(job, why);
    } else if (ev->kind == JOB_EVENT_NO_ROW) {
        snprintf(why, sizeof(why), "execution %s does not exist", job->id_text);
        job_reject(job, why);
    } else if (ev->kind == JOB_EVENT_ROW) {
        const struct execution_owner *owner = ev->owner;
        bool ours = owner->worker_id == job->ctx.worker_id;
        /* A repeated request for what another job of ours runs: that job
         * reports it, whether the row is running or already canceling. */
        bool held = ours && PORT(job, held_here, job->msg.execution_id);
        if (strcmp(owner->status, "running") == 0 && ours && !held) {
            job_enter(job, JOB_RESUMING);
            PORT(job, resume, job, job->msg.execution_id, job->ctx.worker_id,
                 job->ctx.cfg->secrets_keystore);
            return;
        }
        if (!held &&
            (strcmp(owner->status, "canceling") == 0 || strcmp(owner->status, "cancelled") == 0)) {
            job_cancelled_before_start(job, owner);
            return;
        }
        log_info("execution %s is already %s; acknowledged, not run again", job->id_text,
                 owner->status);
        job_ack(job);
        job_over(job);
    }
}

static void on_resuming(struct job *job, const struct job_event *ev)
{
    if (ev->kind == JOB_EVENT_ROW)
        job_claimed(job, ev->execution);
    else if (ev->kind == JOB_EVENT_NO_ROW)
        job_requeue(job, "it changed while being resumed");
    else if (ev->kind == JOB_EVENT_DB_ERROR)
        job_requeue(job, ev->error);
}

/* Load: the action (the claim's row or the snapshot), the parameters it
 * validates, then the keys, unless secrets.keystore is off. */

static void job_keys_loaded(struct job *job, const char *error, const struct key_row *rows,
                            size_t n);

/* claim: the claim's row, whose keys are taken when they are those of this
 * pack and action. */
static void job_prepare(struct job *job, int64_t pack_id, int64_t action_id,
                        const struct execution_row *claim)
{
    char err[1024];
    if (job->stop != JOB_STOP_NONE)
        job_stopped_before_start(job);
    else if (job_inputs_parameters(&job->ex, job->action, &job->params, err, sizeof(err)) < 0) {
        job_fail(job, err);
    } else if (job->ctx.cfg->secrets_keystore && claim->keys_read &&
               claim->action->pack_id == pack_id && claim->action->id == action_id) {
        job_keys_loaded(job, claim->keys_error, claim->keys, claim->n_keys);
    } else if (job->ctx.cfg->secrets_keystore) {
        job_enter(job, JOB_LOADING_KEYS);
        PORT(job, load_keys, job, pack_id, action_id);
    } else {
        job_run(job);
    }
}

/* The action of an execution that is not pinned: the claim's action row,
 * NULL when no action has the execution's ref. */
static void job_action_from_claim(struct job *job, const struct execution_row *claim)
{
    const struct action_row *action = claim->action;
    char err[1024];
    if (!action) {
        snprintf(err, sizeof(err), "action '%s' is not registered", job->ex.action_ref);
        job_fail(job, err);
        return;
    }
    if (job->ex.action_id == 0)
        job->ex.action_id = action->id;
    if (job_action_from_row(action, job->ctx.cfg->packs_base_dir, &job->action, err, sizeof(err)) <
        0)
        job_fail(job, err);
    else
        job_prepare(job, action->pack_id, action->id, claim);
}

/* Run: the executor has the process; its end comes back as JOB_EVENT_EXITED. */

static void job_run(struct job *job)
{
    if (job->stop != JOB_STOP_NONE) {
        job_stopped_before_start(job);
        return;
    }
    log_debug("execution %s: action and parameters ready; starting", job->id_text);
    char err[1024], *token = NULL;
    json_t *context = json_object_get(job->ex.config, "context");
    json_t *hidden = job_inputs_hidden(&job->ex, job->secrets);
    job->secret_results = secret_results_new(job->action->out_schema, job->msg.execution_id,
                                             job->ex.secret_paths, job->ctx.cfg->encryption_key);
    struct execution_request req = {
        .exec_id = job->id_text,
        .artifacts_dir = job->dir,
        .artifacts_root = job->ctx.cfg->artifacts_dir,
        .artifacts_worker = job->ctx.cfg->worker_name,
        .action = job->action,
        .params = job->params,
        .secrets = job->secrets,
        .env_vars = job->ex.env_vars,
        .hidden_params = hidden,
        .timeout_seconds = action_timeout_seconds(job->action, job->ex.timeout_seconds,
                                                  job->ctx.cfg->task_timeout),
        .context = json_is_object(context) ? context : NULL,
        .pack_release_digest = job->ex.pack_release_digest,
        .trace_tag = job->ex.trace_tag,
        .rule_ref = job->ex.rule_ref,
        .trigger_ref = job->ex.trigger_ref,
        .result_filter = secret_results_filter,
        .result_filter_userdata = job->secret_results,
    };
    job_enter(job, JOB_RUNNING);
    int rc = job_inputs_api_token(&job->ex, job->msg.execution_id, req.timeout_seconds,
                                  job->ctx.cfg->jwt_secret, &token, err, sizeof(err));
    req.api_token = token;
    if (rc == 0)
        rc = PORT(job, start, job, &req, &job->run, err, sizeof(err));
    json_decref(hidden);
    jwt_free(token);
    if (rc < 0)
        job_fail(job, err);
}

/* The keys' values join the parameter document by name and stay what
 * get_secret returns. */
static int job_take_keys(struct job *job, const struct key_row *rows, size_t n, char *err,
                         size_t errlen)
{
    json_t *values = NULL;
    int rc = secrets_resolve_values(rows, n, job->ctx.cfg->encryption_key, &values, err, errlen);
    if (rc == 0)
        rc = secrets_texts(values, &job->secrets, err, errlen);
    if (rc == 0)
        job_inputs_merge_keys(job->params, values);
    secrets_json_wipe_free(values);
    return rc;
}

/* error: the keys could not be read. */
static void job_keys_loaded(struct job *job, const char *error, const struct key_row *rows,
                            size_t n)
{
    char err[512];
    if (error) {
        snprintf(err, sizeof(err), "cannot read secrets: %s", error);
        job_fail(job, err);
    } else if (job_take_keys(job, rows, n, err, sizeof(err)) < 0) {
        job_fail(job, err);
    } else {
        job_run(job);
    }
}

static void on_loading_keys(struct job *job, const struct job_event *ev)
{
    if (ev->kind == JOB_EVENT_DB_ERROR)
        job_keys_loaded(job, ev->error, NULL, 0);
    else if (ev->kind == JOB_EVENT_ROW || ev->kind == JOB_EVENT_NO_ROW)
        job_keys_loaded(job, NULL, ev->keys, ev->kind == JOB_EVENT_ROW ? ev->n_keys : 0);
}

static void on_running(struct job *job, const struct job_event *ev)
{
    if (ev->kind == JOB_EVENT_EXITED && ev->never_started && job->stop != JOB_STOP_NONE) {
        job_stopped_before_start(job); /* nothing of the action ran */
    } else if (ev->kind == JOB_EVENT_EXITED) {
        log_debug("execution %s: process finished", job->id_text);
        job_record(job, JOB_RECORDING, ev->exit_status, json_incref(ev->result));
    } else if (ev->kind == JOB_EVENT_SHUTDOWN || ev->kind == JOB_EVENT_CANCEL) {
        const struct config *cfg = job->ctx.cfg;
        int grace =
            ev->kind == JOB_EVENT_CANCEL ? cfg->cancel_grace_seconds : cfg->kill_grace_seconds;
        log_info("execution %s: %s; stopping its processes", job->id_text,
                 ev->kind == JOB_EVENT_CANCEL ? "cancel requested" : "worker stopping");
        PORT(job, stop, job->run, (uint64_t)grace * 1000u);
    }
}

/* Every event, in every state: the handler of each waiting state. */
typedef void (*job_handler)(struct job *job, const struct job_event *ev);

static const job_handler job_handlers[JOB_STATE_COUNT] = {
    [JOB_CLAIMING] = on_claiming,
    [JOB_CHECKING] = on_checking,
    [JOB_RESUMING] = on_resuming,
    [JOB_LOADING_KEYS] = on_loading_keys,
    [JOB_RUNNING] = on_running,
    [JOB_RECORDING] = on_recording,
    [JOB_RECORDING_REFUSAL] = on_recording_refusal,
    [JOB_VERIFYING] = on_verifying,
    /* REPORTING is left within job_report; DONE waits for nothing. */
};

void job_step(struct job *job, const struct job_event *ev)
{
    assert((unsigned)job->state < JOB_STATE_COUNT && (unsigned)ev->kind < JOB_EVENT_COUNT);
    if (ev->kind == JOB_EVENT_SHUTDOWN && job->stop == JOB_STOP_NONE)
        job->stop = JOB_STOP_SHUTDOWN;
    else if (ev->kind == JOB_EVENT_CANCEL && job_cancellable(job))
        job->stop = JOB_STOP_CANCEL;
    if (job_handlers[job->state])
        job_handlers[job->state](job, ev);
}

enum job_state job_state(const struct job *job)
{
    return job->state;
}

bool job_holds_execution(const struct job *job)
{
    return job->state >= JOB_LOADING_KEYS && job->state <= JOB_VERIFYING;
}

bool job_cancellable(const struct job *job)
{
    return job->state <= JOB_RUNNING;
}

int64_t job_execution_id(const struct job *job)
{
    return job->msg.execution_id;
}

bool job_settled(const struct job *job)
{
    return job->settled;
}

void job_free(struct job *job)
{
    if (!job)
        return;
    if (job->run)
        job->ctx.ports->release(job->ctx.io, job->run);
    envelope_request_free(&job->msg);
    action_free(job->action);
    secrets_json_wipe_free(job->params);
    secrets_json_wipe_free(job->secrets);
    secret_results_free(job->secret_results);
    job_execution_clear(&job->ex);
    json_decref(job->result);
    free(job->dir);
    free(job);
}
