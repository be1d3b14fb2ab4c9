/* ExecutionCancelRequested messages as the service takes them (Attune's
 * worker does the same, ATTUNE-TODAY section 6): each is acknowledged,
 * whatever it holds; a job of this worker that holds the execution is
 * cancelled at once; otherwise the request waits (worker/cancels.h) for a
 * dispatch of that execution, which is then cancelled as it starts. */
#ifndef ATTUNE_WORKER_CANCEL_REQUESTS_H
#define ATTUNE_WORKER_CANCEL_REQUESTS_H

#include <stddef.h>

#include "mq/mq.h"
#include "worker/cancels.h"
#include "worker/job.h"

/* Takes one message from the cancel queue. */
void cancel_requests_take(struct cancels *pending, struct job *const *jobs, size_t n_jobs,
                          struct mq *mq, const struct mq_delivery *d);

/* Cancels a job just started if a request for its execution is waiting. */
void cancel_requests_apply_pending(struct cancels *pending, struct job *job);

#endif
