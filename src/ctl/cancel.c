/* `attunectl cancel ID`: cancels an execution as Attune's API does
 * (cancel_execution in crates/api/src/routes/executions.rs): one not yet on a
 * worker becomes cancelled at once, a running one becomes canceling and its
 * worker is asked to stop it through its cancel queue. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"
#include "mq/envelope.h"
#include "mq/mq.h"

/* Each guarded update that matches nothing means the row moved on (a worker
 * claimed or finished it); statuses only move forward, so a few rounds settle. */
#define CANCEL_ROUNDS 8

enum cancel_step { CANCEL_DONE, CANCEL_AGAIN };

struct cancel_row {
    char status[32];
    char *worker; /* NULL: no worker */
};

static bool is_pending(const char *status)
{
    return strcmp(status, "requested") == 0 || strcmp(status, "scheduling") == 0 ||
           strcmp(status, "scheduled") == 0;
}

/* Returns 1 when found, 0 when there is no such execution, -1 on error. */
static int read_row(PGconn *db, const char *id, struct cancel_row *row)
{
    const char *values[] = {id};
    PGresult *res = ctl_query(
        db, "cannot read the execution",
        "SELECT status::text, worker FROM attune.execution WHERE id = $1::bigint", 1, values);
    if (!res)
        return -1;
    int found = PQntuples(res) == 1;
    if (found) {
        snprintf(row->status, sizeof(row->status), "%s", PQgetvalue(res, 0, 0));
        free(row->worker);
        row->worker = PQgetisnull(res, 0, 1) ? NULL : xstrdup(PQgetvalue(res, 0, 1));
    }
    PQclear(res);
    return found;
}

/* Runs a guarded UPDATE ... RETURNING; returns the number of rows it changed
 * (0 when the guard no longer matched), or -1 on error. With worker_out, the
 * first column returned is the row's worker. */
static int guarded_update(PGconn *db, const char *sql, const char *id, char **worker_out)
{
    const char *values[] = {id};
    PGresult *res = ctl_query(db, "cannot update the execution", sql, 1, values);
    if (!res)
        return -1;
    int n = PQntuples(res);
    if (n == 1 && worker_out && !PQgetisnull(res, 0, 0))
        *worker_out = xstrdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return n;
}

static int cancel_pending(PGconn *db, const char *id, const struct cancel_row *row,
                          enum cancel_step *step)
{
    static const char sql[] =
        "UPDATE attune.execution SET status = 'cancelled', result = jsonb_build_object('error', "
        "'Cancelled by user before execution started') WHERE id = $1::bigint AND status IN "
        "('requested', 'scheduling', 'scheduled') RETURNING id";
    int n = guarded_update(db, sql, id, NULL);
    if (n < 0)
        return CTL_EXIT_FAILED;
    *step = n == 0 ? CANCEL_AGAIN : CANCEL_DONE;
    if (n == 1)
        printf("execution %s cancelled (it was %s and had not started)\n", id, row->status);
    return CTL_EXIT_OK;
}

/* The ExecutionCancelRequested envelope to the worker's cancel queue. */
static int send_cancel(const struct config *cfg, const char *id, const char *worker)
{
    char message_id[37], err[512];
    json_t *payload = json_pack("{s:I, s:I}", "execution_id", (json_int_t)strtoll(id, NULL, 10),
                                "worker_id", (json_int_t)strtoll(worker, NULL, 10));
    json_t *env = envelope_build("ExecutionCancelRequested", NULL, NULL, payload, message_id);
    json_t *headers = json_object_get(env, "headers");
    if (json_is_object(headers))
        json_object_set_new(headers, "source_service", json_string("attunectl"));
    char *body = json_dumps(env, JSON_COMPACT);
    char *routing_key = xasprintf("execution.cancel.worker.%s", worker);
    struct ctl_message m = {.exchange = MQ_EXCHANGE,
                            .routing_key = routing_key,
                            .type = "ExecutionCancelRequested",
                            .message_id = message_id,
                            .correlation_id =
                                json_string_value(json_object_get(env, "correlation_id")),
                            .body = body};
    int rc = ctl_publish(cfg, &m, err, sizeof(err));
    free(routing_key);
    free(body);
    json_decref(env);
    if (rc == 0)
        return CTL_EXIT_OK;
    return ctl_error("execution %s is canceling, but the cancel request to worker %s was not "
                     "sent: %s",
                     id, worker, err);
}

static int cancel_running(PGconn *db, const struct config *cfg, const char *id,
                          enum cancel_step *step)
{
    static const char sql[] = "UPDATE attune.execution SET status = 'canceling' WHERE id = "
                              "$1::bigint AND status = 'running' RETURNING worker";
    char *worker = NULL;
    int n = guarded_update(db, sql, id, &worker);
    if (n < 0)
        return CTL_EXIT_FAILED;
    *step = n == 0 ? CANCEL_AGAIN : CANCEL_DONE;
    int status = CTL_EXIT_OK;
    if (n == 1 && !worker) {
        ctl_warn("execution %s has no worker; marked canceling but no cancel request was sent", id);
        printf("execution %s canceling (no worker to ask)\n", id);
    } else if (n == 1 && (status = send_cancel(cfg, id, worker)) == CTL_EXIT_OK) {
        printf("execution %s canceling; cancel request sent to worker %s\n", id, worker);
    }
    free(worker);
    return status;
}

/* Acts on the row as it is now; *step says whether to read it again. */
static int cancel_step(PGconn *db, const struct config *cfg, const char *id,
                       const struct cancel_row *row, enum cancel_step *step)
{
    *step = CANCEL_DONE;
    if (strcmp(row->status, "canceling") == 0) {
        printf("execution %s is already canceling (worker %s); nothing changed\n", id,
               row->worker ? row->worker : "none");
        return CTL_EXIT_OK;
    }
    if (is_pending(row->status))
        return cancel_pending(db, id, row, step);
    if (strcmp(row->status, "running") == 0)
        return cancel_running(db, cfg, id, step);
    return ctl_error("Execution %s is in status '%s' and cannot be cancelled", id, row->status);
}

static int cancel(PGconn *db, const struct config *cfg, const char *id)
{
    struct cancel_row row = {0};
    int status = CTL_EXIT_FAILED;
    enum cancel_step step = CANCEL_AGAIN;
    for (int round = 0; round < CANCEL_ROUNDS && step == CANCEL_AGAIN; round++) {
        int found = read_row(db, id, &row);
        if (found <= 0) {
            step = CANCEL_DONE;
            status = found == 0 ? ctl_error("execution %s does not exist", id) : CTL_EXIT_FAILED;
            break;
        }
        status = cancel_step(db, cfg, id, &row, &step);
    }
    if (step == CANCEL_AGAIN)
        status = ctl_error("execution %s kept changing status (now %s); try again", id, row.status);
    free(row.worker);
    return status;
}

int ctl_cancel(const struct config *cfg, const struct ctl_options *opts)
{
    long long id;
    if (!ctl_parse_id(opts->args[0], &id))
        return ctl_usage_error("execution id must be a positive whole number, got '%s'",
                               opts->args[0]);
    PGconn *db = ctl_db_connect(cfg);
    if (!db)
        return CTL_EXIT_FAILED;
    char text[32];
    snprintf(text, sizeof(text), "%lld", id);
    int status = cancel(db, cfg, text);
    PQfinish(db);
    return status;
}
