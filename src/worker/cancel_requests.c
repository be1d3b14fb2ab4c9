/* Cancel requests routed to jobs or kept waiting (see cancel_requests.h). */
#include "worker/cancel_requests.h"

#include "core/log.h"
#include "core/util.h"
#include "mq/envelope.h"

static const struct job_event cancel_event = {.kind = JOB_EVENT_CANCEL};

void cancel_requests_take(struct cancels *pending, struct job *const *jobs, size_t n_jobs,
                          struct mq *mq, const struct mq_delivery *d)
{
    int64_t id = 0;
    char why[256];
    int rc = envelope_parse_cancel(d->body, d->len, &id, why, sizeof(why));
    mq_ack_tag(mq, d->connection, d->delivery_tag);
    if (rc < 0) {
        log_warn("cancel request ignored: %s", why);
        return;
    }
    bool held = false;
    for (size_t i = 0; i < n_jobs; i++) {
        if (job_execution_id(jobs[i]) != id || !job_cancellable(jobs[i]))
            continue;
        held = true;
        log_info("execution %lld: cancel requested", (long long)id);
        job_step(jobs[i], &cancel_event);
    }
    if (!held) {
        log_info("execution %lld: cancel requested for an execution this worker does not run "
                 "now; kept for its dispatch",
                 (long long)id);
        cancels_add(pending, id, time_monotonic_ms());
    }
}

void cancel_requests_apply_pending(struct cancels *pending, struct job *job)
{
    int64_t id = job_execution_id(job);
    if (id > 0 && job_cancellable(job) && cancels_take(pending, id, time_monotonic_ms())) {
        log_info("execution %lld: a cancel request came before its dispatch", (long long)id);
        job_step(job, &cancel_event);
    }
}
