/* The outbound execution messages (see report.h). */
#include "worker/report.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/util.h"
#include "mq/envelope.h"

static void report_publish(struct mq *mq, const struct report_subject *s, const char *routing_key,
                           const char *type, json_t *payload)
{
    char message_id[37];
    json_t *env = envelope_build(type, s->correlation_id, s->trace_id, payload, message_id);
    char *body = json_dumps(env, JSON_COMPACT);
    const char *corr = json_string_value(json_object_get(env, "correlation_id"));
    mq_publish(mq, routing_key, body, message_id, corr);
    free(body);
    json_decref(env);
}

void report_status_changed(struct mq *mq, const struct report_subject *s, const char *from,
                           const char *to)
{
    char now[48];
    time_rfc3339_now(now, sizeof(now));
    json_t *payload = json_pack("{s:I, s:s, s:s, s:s, s:s}", "execution_id",
                                (json_int_t)s->execution_id, "action_ref", s->action_ref,
                                "previous_status", from, "new_status", to, "changed_at", now);
    report_publish(mq, s, "execution.status.changed", "ExecutionStatusChanged", payload);
}

void report_completed(struct mq *mq, const struct report_subject *s, const char *status,
                      const json_t *result)
{
    char now[48];
    time_rfc3339_now(now, sizeof(now));
    /* Attune names the status as its enum prints (`Completed`, `Failed`,
     * ...): the database label with a capital first letter. */
    char variant[32];
    snprintf(variant, sizeof(variant), "%s", status);
    variant[0] = (char)toupper((unsigned char)variant[0]);
    json_t *payload =
        json_pack("{s:I, s:I, s:s, s:s, s:O, s:s}", "execution_id", (json_int_t)s->execution_id,
                  "action_id", (json_int_t)s->action_id, "action_ref", s->action_ref, "status",
                  variant, "result", result, "completed_at", now);
    report_publish(mq, s, "execution.completed", "ExecutionCompleted", payload);
}

void report_abandoned(struct mq *mq, const struct abandoned_row *rows, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        char correlation_id[37];
        uuid_v4(correlation_id);
        struct report_subject subject = {
            .execution_id = rows[i].id,
            .action_id = rows[i].action_id,
            .action_ref = rows[i].action_ref,
            .correlation_id = correlation_id,
        };
        report_status_changed(mq, &subject, "running", "abandoned");
        report_completed(mq, &subject, "abandoned", rows[i].result);
    }
}
