/* The end of a job (see job_private.h): the final UPDATE, its verification
 * when its reply says nothing changed, and the two last messages. */
#include <stdio.h>
#include <stdlib.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/util.h"
#include "worker/job_private.h"
#include "worker/secret_results.h"

/* Record: the final UPDATE only applies while the row is running (or
 * canceling); an answer of "nothing changed" is checked before reporting,
 * because our own update may have gone through with its reply lost. The
 * result's secret values go with it (none with a refused result's stand-in). */

void job_record(struct job *job, enum job_state state, enum execution_status status, json_t *result)
{
    job_enter(job, state);
    job->final_status = status;
    json_decref(job->result);
    job->result = result;
    PORT(job, finish, job, job->msg.execution_id, execution_status_name(status), result,
         state == JOB_RECORDING ? secret_results_rows(job->secret_results) : NULL);
}

/* Cancelled (by a user, or by the worker stopping) before the action ran:
 * the process is never started. Attune's worker writes the same error for
 * a user's cancel at any moment. */
void job_stopped_before_start(struct job *job)
{
    bool by_user = job->stop == JOB_STOP_CANCEL;
    log_info("execution %s cancelled before it started (%s)", job->id_text,
             by_user ? "cancel requested" : "worker stopping");
    /* Nothing ran: no exit code, duration or output to tell, as in Attune. */
    json_t *result =
        by_user ? json_pack("{s:b, s:b, s:s}", "succeeded", 0, "cancelled", 1, "error",
                            "Execution cancelled by user")
                : execution_failure_result("cancelled before it started (worker stopping)");
    job_record(job, JOB_RECORDING, EXECUTION_CANCELLED, result);
}

/* A failure to get the action going; with a cancel pending, the execution
 * is recorded cancelled instead, which is what its user asked for. */
void job_fail(struct job *job, const char *error)
{
    if (job->stop != JOB_STOP_NONE && job->state != JOB_RUNNING) {
        job_stopped_before_start(job);
        return;
    }
    log_warn("execution %s (%s) failed before it started: %s", job->id_text, job->ex.action_ref,
             error);
    json_t *result = execution_failure_result(error);
    if (job->dir)
        json_object_set_new(result, "artifacts_dir", json_string(job->dir));
    job_record(job, JOB_RECORDING, EXECUTION_FAILED, result);
}

static void job_count_end(const struct job *job, const char *status)
{
    uint64_t ms = job->claimed_ms ? time_monotonic_ms() - job->claimed_ms : 0;
    metrics_execution_finished(job->action ? job->action->runner_type : NULL, status,
                               (double)ms / 1000.0);
    metrics_output_truncated(
        json_integer_value(json_object_get(job->result, "stdout_bytes_truncated")) +
        json_integer_value(json_object_get(job->result, "stderr_bytes_truncated")));
}

/* Report: the two last messages, once the database holds the end. */
static void job_report(struct job *job)
{
    job_enter(job, JOB_REPORTING);
    const char *status = execution_status_name(job->final_status);
    log_info("execution %s (%s) %s", job->id_text, job->ex.action_ref, status);
    job_count_end(job, status);
    struct report_subject subject = job_subject(job);
    PORT(job, publish_status, &subject, "running", status);
    PORT(job, publish_completed, &subject, status, job->result);
    job_over(job);
}

static void job_verify(struct job *job)
{
    job_enter(job, JOB_VERIFYING);
    PORT(job, check_finished, job, job->msg.execution_id, execution_status_name(job->final_status),
         job->result);
}

void on_recording(struct job *job, const struct job_event *ev)
{
    if (ev->kind == JOB_EVENT_ROW) {
        job_report(job);
    } else if (ev->kind == JOB_EVENT_NO_ROW) {
        job_verify(job);
    } else if (ev->kind == JOB_EVENT_DB_ERROR) {
        /* The result itself was refused: record the failure instead, so the
         * execution does not stay running and its messages still go out. */
        log_error("execution %s: cannot record the result: %s", job->id_text, ev->error);
        char *why = xasprintf("the result could not be stored: %s", ev->error);
        job_record(job, JOB_RECORDING_REFUSAL, EXECUTION_FAILED, execution_failure_result(why));
        free(why);
    }
}

void on_recording_refusal(struct job *job, const struct job_event *ev)
{
    if (ev->kind == JOB_EVENT_ROW) {
        job_report(job);
    } else if (ev->kind == JOB_EVENT_NO_ROW) {
        job_verify(job);
    } else if (ev->kind == JOB_EVENT_DB_ERROR) {
        /* The row stays running; the next start of this worker abandons it. */
        log_error("execution %s: cannot record the result: %s", job->id_text, ev->error);
        job_over(job);
    }
}

void on_verifying(struct job *job, const struct job_event *ev)
{
    if (ev->kind == JOB_EVENT_ROW) {
        job_report(job);
    } else if (ev->kind == JOB_EVENT_NO_ROW) {
        log_warn("execution %s was no longer running when its result came; not overwritten",
                 job->id_text);
        job_over(job);
    } else if (ev->kind == JOB_EVENT_DB_ERROR) {
        log_error("execution %s: cannot record the result: %s", job->id_text, ev->error);
        job_over(job);
    }
}
