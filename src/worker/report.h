/* The outbound messages, as Attune's services read them today:
 * ExecutionStatusChanged (key execution.status.changed, lowercase statuses)
 * for each transition and ExecutionCompleted (key execution.completed, the
 * status in PascalCase) once at the end, published with confirms on
 * attune.executions. */
#ifndef ATTUNE_WORKER_REPORT_H
#define ATTUNE_WORKER_REPORT_H

#include <jansson.h>
#include <stdint.h>

#include "db/executions.h"
#include "mq/mq.h"

/* What every message about one execution carries. correlation_id may be
 * NULL or "" (a fresh one is made), trace_id NULL or "" (none). */
struct report_subject {
    int64_t execution_id;
    int64_t action_id; /* 0 when unknown (Attune's consumers need an integer) */
    const char *action_ref;
    const char *correlation_id;
    const char *trace_id;
};

void report_status_changed(struct mq *mq, const struct report_subject *s, const char *from,
                           const char *to);
/* status is the database label (lowercase); result is borrowed. */
void report_completed(struct mq *mq, const struct report_subject *s, const char *status,
                      const json_t *result);

/* The two messages for each execution an earlier run of this worker left
 * running, now recorded abandoned (each its own conversation). */
void report_abandoned(struct mq *mq, const struct abandoned_row *rows, size_t count);

#endif
