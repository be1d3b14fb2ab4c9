/* One execution request in service mode, from the broker message to the
 * final database row and the outbound messages: parse the envelope, claim the
 * execution with one guarded UPDATE, acknowledge, load the action and its
 * secrets, run it with the executor, record the result, report. */
#ifndef ATTUNE_WORKER_JOB_H
#define ATTUNE_WORKER_JOB_H

#include <stdint.h>
#include <systemd/sd-event.h>

#include "core/config.h"
#include "db/db.h"
#include "executor/executor.h"
#include "mq/mq.h"

struct job;

struct job_context {
    sd_event *loop;
    const struct config *cfg;
    struct db *db;
    struct mq *mq;
    const struct executor_settings *settings;
    int64_t worker_id;
    /* Called once when the job is over (recorded, or handed back); the
     * callee frees the job. */
    void (*finished)(struct job *job, void *userdata);
    /* Whether this process is running the execution now. */
    bool (*is_running)(int64_t execution_id, void *userdata);
    void *userdata;
};

/* Starts handling one delivery (copied). Never fails: bad input ends in the
 * dead-letter queue or in a failed execution, and finished is called. */
struct job *job_start(const struct job_context *ctx, const struct mq_delivery *delivery);

/* True from the claim until the final state is in the database. */
bool job_holds_execution(const struct job *job);
/* The execution id, 0 before the message parsed. */
int64_t job_execution_id(const struct job *job);
/* Stops the action (shutdown): it is recorded as cancelled. */
void job_cancel(struct job *job);
void job_free(struct job *job);

/* Intrusive list link for the service. */
struct job *job_next(const struct job *job);
void job_set_next(struct job *job, struct job *next);

#endif
