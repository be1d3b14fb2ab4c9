/* The real ports of a job (see job_io.h). */
#include "worker/job_io.h"

#include <assert.h>

#include "db/executions.h"
#include "db/keys.h"
#include "worker/report.h"

/* Database answers. Each state waits for one answer, and each callback
 * asserts that its job is in a state that asked for it: an owner row, say,
 * must never reach a job that would read it as an execution row. */

static enum job_event_kind answer_kind(bool found, const char *error)
{
    return error ? JOB_EVENT_DB_ERROR : found ? JOB_EVENT_ROW : JOB_EVENT_NO_ROW;
}

static void on_execution_row(const struct execution_row *row, const char *error, void *job)
{
    assert(job_state(job) == JOB_CLAIMING || job_state(job) == JOB_RESUMING);
    job_step(job, &(struct job_event){
                      .kind = answer_kind(row, error), .error = error, .execution = row});
}

static void on_owner(const struct execution_owner *owner, const char *error, void *job)
{
    assert(job_state(job) == JOB_CHECKING);
    job_step(job, &(struct job_event){
                      .kind = answer_kind(owner, error), .error = error, .owner = owner});
}

static void on_keys(const struct key_row *rows, size_t count, const char *error, void *job)
{
    assert(job_state(job) == JOB_LOADING_KEYS);
    job_step(job,
             &(struct job_event){
                 .kind = answer_kind(true, error), .error = error, .keys = rows, .n_keys = count});
}

static void on_changed(long changed, const char *error, void *job)
{
    assert(job_state(job) == JOB_RECORDING || job_state(job) == JOB_RECORDING_REFUSAL ||
           job_state(job) == JOB_VERIFYING);
    job_step(job, &(struct job_event){.kind = answer_kind(changed > 0, error), .error = error});
}

static void io_claim(void *io, struct job *job, int64_t execution_id, int64_t worker_id,
                     bool with_keys)
{
    db_execution_claim(((struct job_io *)io)->db, execution_id, worker_id, with_keys,
                       on_execution_row, job);
}

static void io_find_owner(void *io, struct job *job, int64_t execution_id)
{
    db_execution_owner(((struct job_io *)io)->db, execution_id, on_owner, job);
}

static void io_resume(void *io, struct job *job, int64_t execution_id, int64_t worker_id,
                      bool with_keys)
{
    db_execution_resume(((struct job_io *)io)->db, execution_id, worker_id, with_keys,
                        on_execution_row, job);
}

static void io_load_keys(void *io, struct job *job, int64_t pack_id, int64_t action_id)
{
    db_keys_for_action(((struct job_io *)io)->db, pack_id, action_id, on_keys, job);
}

static void io_finish(void *io, struct job *job, int64_t execution_id, const char *status,
                      const json_t *result, const json_t *secrets)
{
    struct job_io *j = io;
    json_t *logs = log_rows_seal(j->log_rows, job);
    db_execution_finish(j->db, execution_id, status, result, secrets, logs, on_changed, job);
    json_decref(logs);
}

static void io_check_finished(void *io, struct job *job, int64_t execution_id, const char *status,
                              const json_t *result)
{
    db_execution_check_finished(((struct job_io *)io)->db, execution_id, status, result, on_changed,
                                job);
}

/* Broker */

static void io_ack(void *io, uint64_t connection, uint64_t delivery_tag)
{
    mq_ack_tag(((struct job_io *)io)->mq, connection, delivery_tag);
}

static void io_reject(void *io, uint64_t connection, uint64_t delivery_tag, bool requeue)
{
    mq_reject_tag(((struct job_io *)io)->mq, connection, delivery_tag, requeue);
}

static void io_publish_status(void *io, const struct report_subject *subject, const char *from,
                              const char *to)
{
    report_status_changed(((struct job_io *)io)->mq, subject, from, to);
}

static void io_publish_completed(void *io, const struct report_subject *subject, const char *status,
                                 const json_t *result)
{
    report_completed(((struct job_io *)io)->mq, subject, status, result);
}

/* The action */

static void on_execution_done(struct execution *ex, void *job)
{
    assert(job_state(job) == JOB_RUNNING);
    job_step(job, &(struct job_event){.kind = JOB_EVENT_EXITED,
                                      .never_started = !execution_started(ex),
                                      .exit_status = execution_get_status(ex),
                                      .result = execution_get_result(ex)});
}

static int io_start(void *io, struct job *job, const struct execution_request *req, void **run,
                    char *err, size_t errlen)
{
    struct job_io *j = io;
    struct execution *ex = NULL;
    int rc = execution_start(j->loop, j->settings, req, on_execution_done, job, &ex, err, errlen);
    *run = ex;
    if (rc == 0)
        log_rows_started(j->log_rows, job, job_execution_id(job), req->action->ref, req->exec_id,
                         ex);
    return rc;
}

static void io_stop(void *io, void *run, uint64_t grace_ms)
{
    (void)io;
    execution_cancel(run, grace_ms);
}

static void io_release(void *io, void *run)
{
    log_rows_forget(((struct job_io *)io)->log_rows, run);
    execution_free(run);
}

/* The owner */

static bool io_held_here(void *io, int64_t execution_id)
{
    struct job_io *j = io;
    return j->held_here(execution_id, j->owner);
}

static void io_done(void *io, struct job *job)
{
    struct job_io *j = io;
    j->done(job, j->owner);
}

const struct job_ports job_io_ports = {
    .claim = io_claim,
    .find_owner = io_find_owner,
    .resume = io_resume,
    .load_keys = io_load_keys,
    .finish = io_finish,
    .check_finished = io_check_finished,
    .ack = io_ack,
    .reject = io_reject,
    .publish_status = io_publish_status,
    .publish_completed = io_publish_completed,
    .start = io_start,
    .stop = io_stop,
    .release = io_release,
    .held_here = io_held_here,
    .done = io_done,
};
