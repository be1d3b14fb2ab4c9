/* What the two halves of the job's state machine share: job.c (start,
 * claim, load, run) and job_end.c (record, verify, report). Private to
 * them; everything else sees struct job through job.h. */
#ifndef ATTUNE_WORKER_JOB_PRIVATE_H
#define ATTUNE_WORKER_JOB_PRIVATE_H

#include "worker/job.h"
#include "worker/job_inputs.h"
#include "core/log.h"
#include "core/util.h"

/* Why a job must stop before its end, whatever state it is in: a request
 * that arrives during a round trip takes effect when the round trip is over.
 * A user's cancel outranks a shutdown. */
enum job_stop { JOB_STOP_NONE, JOB_STOP_SHUTDOWN, JOB_STOP_CANCEL };

struct job {
    enum job_state state;
    enum job_stop stop;
    bool settled; /* the broker message is acknowledged or rejected */
    struct job_context ctx;
    uint64_t connection, delivery_tag;
    struct execution_request_msg msg;
    char id_text[24];
    uint64_t received_us;    /* monotonic, for the debug trace of each state */
    uint64_t claimed_ms;     /* monotonic, for the duration metric */
    struct job_execution ex; /* from the claim */
    char *dir;
    /* From the loads */
    struct action *action;
    json_t *params;                        /* the parameter document; holds secret values */
    json_t *secrets;                       /* name -> text, for get_secret */
    void *run;                             /* what ports->start returned */
    struct secret_results *secret_results; /* the result's, sealed as it ends */
    /* The end */
    enum execution_status final_status;
    json_t *result;
};

#define PORT(job, fn, ...) (job)->ctx.ports->fn((job)->ctx.io, __VA_ARGS__)

static inline void job_enter(struct job *job, enum job_state state)
{
    /* The time since the request came is what bench/e2e --trace reads. */
    log_debug("execution %s: %s -> %s (+%llu us)", job->id_text, job_state_name(job->state),
              job_state_name(state), (unsigned long long)(time_monotonic_us() - job->received_us));
    job->state = state;
}

/* Enters JOB_DONE and tells the owner. */
static inline void job_over(struct job *job)
{
    job_enter(job, JOB_DONE);
    PORT(job, done, job);
}

static inline struct report_subject job_subject(const struct job *job)
{
    return (struct report_subject){
        .execution_id = job->msg.execution_id,
        .action_id = job->ex.action_id,
        .action_ref = job->ex.action_ref,
        .correlation_id = job->msg.correlation_id,
        .trace_id = job->msg.trace_id,
    };
}

/* job_end.c: the end, from the final UPDATE to the last message. */
void job_record(struct job *job, enum job_state state, enum execution_status status,
                json_t *result);
/* Records a failure to get the action going (cancelled, with a stop pending). */
void job_fail(struct job *job, const char *error);
/* Records the execution cancelled without its action having run. */
void job_stopped_before_start(struct job *job);
void on_recording(struct job *job, const struct job_event *ev);
void on_recording_refusal(struct job *job, const struct job_event *ev);
void on_verifying(struct job *job, const struct job_event *ev);

#endif
