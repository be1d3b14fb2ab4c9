/* `attunectl run ACTION_REF ...`: checks the parameters against the action's
 * schema, records the execution pinned to its pack's active release (as Attune's
 * API does), hands it to the least busy live worker through its queue (as
 * Attune's scheduler does), and with --wait follows it to its end. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl/ctl.h"
#include "exec/params.h"
#include "mq/envelope.h"
#include "mq/mq.h"
#include "worker/oneshot.h"

#define POLL_MIN_MS 20
#define POLL_MAX_MS 100
/* How long --wait keeps trying when the database goes away. */
#define DB_LOST_LIMIT_MS 60000

struct run_state {
    char *action_id;
    char *action_timeout; /* NULL: the action has none */
    json_t *schema;
    json_t *params;
    struct ctl_pin pin;
    char *updated;   /* the new row's `updated`, RFC 3339 UTC */
    char *worker_id; /* NULL: no live worker */
    char *worker_name;
    char *execution_id;
};

static void run_state_free(struct run_state *s)
{
    free(s->action_id);
    free(s->action_timeout);
    ctl_pin_free(&s->pin);
    free(s->updated);
    json_decref(s->schema);
    json_decref(s->params);
    free(s->worker_id);
    free(s->worker_name);
    free(s->execution_id);
}

static int load_action(PGconn *db, const char *ref, struct run_state *s)
{
    const char *values[] = {ref};
    PGresult *res =
        ctl_query(db, "cannot read the action",
                  "SELECT id, param_schema, enabled, timeout_seconds FROM attune.action WHERE "
                  "ref = $1",
                  1, values);
    if (!res)
        return CTL_EXIT_FAILED;
    int status = CTL_EXIT_OK;
    if (PQntuples(res) == 0) {
        status = ctl_usage_error("action '%s' is not registered (attunectl pack load DIR "
                                 "registers a pack's actions)",
                                 ref);
    } else if (strcmp(PQgetvalue(res, 0, 2), "t") != 0) {
        status = ctl_usage_error("action '%s' is disabled (enabled: false)", ref);
    } else {
        s->action_id = xstrdup(PQgetvalue(res, 0, 0));
        if (!PQgetisnull(res, 0, 3))
            s->action_timeout = xstrdup(PQgetvalue(res, 0, 3));
        if (!PQgetisnull(res, 0, 1))
            s->schema = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
        if (!json_is_object(s->schema)) {
            json_decref(s->schema);
            s->schema = json_pack("{s:s, s:{}, s:[]}", "type", "object", "properties", "required");
        }
    }
    PQclear(res);
    return status;
}

static int build_params(const struct ctl_options *opts, struct run_state *s)
{
    char err[1024];
    if (opts->params_json) {
        if (params_load_json_arg(opts->params_json, &s->params, err, sizeof(err)) < 0)
            return ctl_usage_error("%s", err);
    } else {
        s->params = json_object();
    }
    for (size_t i = 0; i < opts->assignments.len; i++)
        if (params_assign(s->params, s->schema, opts->assignments.items[i], err, sizeof(err)) < 0)
            return ctl_usage_error("%s", err);
    if (params_validate(s->params, s->schema, err, sizeof(err)) < 0)
        return ctl_usage_error("%s", err);
    /* The worker checks the dotenv keys too, knowing the action's format. */
    if (params_check_names(s->params, s->schema, PARAM_FORMAT_JSON, err, sizeof(err)) < 0)
        return ctl_usage_error("%s", err);
    return CTL_EXIT_OK;
}

/* Live: active (or busy: its queue keeps the message) with a heartbeat
 * younger than three intervals; an action worker that is not cordoned, as
 * Attune's scheduler requires. The least loaded wins; ties at random. */
static int pick_worker(PGconn *db, const struct config *cfg, struct run_state *s)
{
    static const char sql[] =
        "SELECT w.id, w.name FROM attune.worker w WHERE w.status IN ('active', 'busy') AND "
        "w.worker_role = 'action' AND NOT w.cordoned AND "
        "w.last_heartbeat > NOW() - make_interval(secs => $1::double precision) ORDER BY "
        "w.status = 'busy', (SELECT count(*) FROM attune.execution e WHERE e.worker = w.id AND "
        "e.status = 'running'), random() LIMIT 1";
    char max_age[32];
    snprintf(max_age, sizeof(max_age), "%d", 3 * cfg->heartbeat_interval);
    const char *values[] = {max_age};
    PGresult *res = ctl_query(db, "cannot look for a live worker", sql, 1, values);
    if (!res)
        return CTL_EXIT_FAILED;
    if (PQntuples(res) == 1) {
        s->worker_id = xstrdup(PQgetvalue(res, 0, 0));
        s->worker_name = xstrdup(PQgetvalue(res, 0, 1));
    }
    PQclear(res);
    return CTL_EXIT_OK;
}

/* As Attune's API writes it: config is the parameter map itself (NULL when
 * empty), the timeout is --timeout else the action's, and the row is pinned. */
static int insert_execution(PGconn *db, const char *ref, const struct ctl_options *opts,
                            struct run_state *s)
{
    static const char sql[] =
        "INSERT INTO attune.execution (action, action_ref, config, status, timeout_seconds, "
        "pack_release, pack_release_digest, executable_snapshot) VALUES ($1::bigint, $2, "
        "$3::jsonb, $4::attune.execution_status_enum, $5::integer, $6::bigint, $7, $8::jsonb) "
        "RETURNING id, to_char(updated AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')";
    char *config_text = json_object_size(s->params) ? json_dumps(s->params, JSON_COMPACT) : NULL;
    char timeout[16];
    snprintf(timeout, sizeof(timeout), "%d", opts->timeout_seconds);
    const char *values[] = {s->action_id,
                            ref,
                            config_text,
                            s->worker_id ? "scheduled" : "requested",
                            opts->timeout_seconds > 0 ? timeout : s->action_timeout,
                            s->pin.release_id,
                            s->pin.digest,
                            s->pin.snapshot};
    PGresult *res = ctl_query(db, "cannot create the execution", sql, 8, values);
    if (res) {
        s->execution_id = xstrdup(PQgetvalue(res, 0, 0));
        s->updated = xstrdup(PQgetvalue(res, 0, 1));
    }
    PQclear(res);
    free(config_text);
    return res ? CTL_EXIT_OK : CTL_EXIT_FAILED;
}

static char *build_envelope(const char *ref, const struct run_state *s, char message_id[37],
                            char correlation_id[64])
{
    /* The scheduler's payload (crates/executor/src/scheduler.rs@03eeaa5b). */
    json_t *payload = json_pack("{s:I, s:I, s:s, s:O, s:s, s:I, s:s}", "execution_id",
                                (json_int_t)strtoll(s->execution_id, NULL, 10), "worker_id",
                                (json_int_t)strtoll(s->worker_id, NULL, 10), "action_ref", ref,
                                "config", json_object_size(s->params) ? s->params : json_null(),
                                "scheduled_attempt_updated_at", s->updated, "release_id",
                                (json_int_t)strtoll(s->pin.release_id, NULL, 10), "release_digest",
                                s->pin.digest);
    json_t *env = envelope_build("ExecutionRequested", NULL, NULL, payload, message_id);
    json_t *headers = json_object_get(env, "headers");
    if (json_is_object(headers))
        json_object_set_new(headers, "source_service", json_string("attunectl"));
    snprintf(correlation_id, 64, "%s", json_string_value(json_object_get(env, "correlation_id")));
    char *body = json_dumps(env, JSON_COMPACT);
    json_decref(env);
    return body;
}

static int dispatch(PGconn *db, const struct config *cfg, const char *ref, struct run_state *s)
{
    char message_id[37], correlation_id[64], err[512];
    char *body = build_envelope(ref, s, message_id, correlation_id);
    char *routing_key = xasprintf("execution.dispatch.worker.%s", s->worker_id);
    struct ctl_message m = {.exchange = MQ_EXCHANGE,
                            .routing_key = routing_key,
                            .type = "ExecutionRequested",
                            .message_id = message_id,
                            .correlation_id = correlation_id,
                            .body = body};
    int rc = ctl_publish(cfg, &m, err, sizeof(err));
    free(routing_key);
    free(body);
    if (rc == 0)
        return CTL_EXIT_OK;
    /* Nothing is queued: say so in the row too, unless a worker took it after all. */
    const char *values[] = {s->execution_id};
    PQclear(ctl_query_quiet(db,
                            "UPDATE attune.execution SET status = 'requested' WHERE id = "
                            "$1::bigint AND status = 'scheduled'",
                            1, values));
    return ctl_error("execution %s: cannot hand it to worker %s (%s): %s; left as requested",
                     s->execution_id, s->worker_id, s->worker_name, err);
}

static int print_result(const char *status, const char *result_text)
{
    json_t *result = result_text ? json_loads(result_text, 0, NULL) : NULL;
    if (!json_is_object(result)) {
        json_decref(result);
        result = json_object();
    }
    json_object_set_new(result, "status", json_string(status));
    json_dumpf(result, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    fflush(stdout);
    json_decref(result);
    if (strcmp(status, "completed") == 0)
        return ONESHOT_EXIT_COMPLETED;
    return strcmp(status, "timeout") == 0 ? ONESHOT_EXIT_TIMEOUT : ONESHOT_EXIT_FAILED;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* One look at the execution and its worker. Returns 1 when final (status
 * printed in *exit_status), 0 to go on, -1 when the database is unreachable. */
static int poll_once(PGconn *db, const struct config *cfg, const struct run_state *s,
                     int *exit_status)
{
    static const char sql[] =
        "SELECT e.status::text, e.result::text, COALESCE(w.last_heartbeat > NOW() - "
        "make_interval(secs => $3::double precision), false) FROM attune.execution e LEFT JOIN "
        "attune.worker w ON w.id = $2::bigint WHERE e.id = $1::bigint";
    char max_age[32];
    snprintf(max_age, sizeof(max_age), "%d", 3 * cfg->heartbeat_interval);
    const char *values[] = {s->execution_id, s->worker_id, max_age};
    PGresult *res = ctl_query_quiet(db, sql, 3, values);
    int rc = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        const char *status = PQgetvalue(res, 0, 0);
        rc = 0;
        if (ctl_status_is_final(status)) {
            *exit_status =
                print_result(status, PQgetisnull(res, 0, 1) ? NULL : PQgetvalue(res, 0, 1));
            rc = 1;
        } else if (strcmp(PQgetvalue(res, 0, 2), "t") != 0) {
            *exit_status = ctl_error("worker %s (%s) stopped sending heartbeats; execution %s is "
                                     "still %s",
                                     s->worker_id, s->worker_name, s->execution_id, status);
            rc = 1;
        }
    } else if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        *exit_status = ctl_error("execution %s was deleted", s->execution_id);
        rc = 1;
    }
    PQclear(res);
    return rc;
}

static int wait_final(PGconn *db, const struct config *cfg, const struct run_state *s)
{
    unsigned delay = POLL_MIN_MS;
    uint64_t lost_since = 0;
    char msg[512];
    for (;;) {
        int exit_status = CTL_EXIT_FAILED;
        int rc = poll_once(db, cfg, s, &exit_status);
        if (rc == 1)
            return exit_status;
        if (rc < 0) {
            uint64_t now = time_monotonic_ms();
            if (!lost_since)
                lost_since = now;
            if (now - lost_since > DB_LOST_LIMIT_MS)
                return ctl_error("lost the database while waiting for execution %s: %s",
                                 s->execution_id, ctl_db_message(db, NULL, msg, sizeof(msg)));
            if (PQstatus(db) == CONNECTION_BAD)
                PQreset(db);
        } else {
            lost_since = 0;
        }
        sleep_ms(delay);
        delay = delay * 3 / 2 > POLL_MAX_MS ? POLL_MAX_MS : delay * 3 / 2;
    }
}

static int run(PGconn *db, const struct config *cfg, const struct ctl_options *opts,
               struct run_state *s)
{
    const char *ref = opts->args[0];
    int status = load_action(db, ref, s);
    if (status == CTL_EXIT_OK)
        status = build_params(opts, s);
    if (status == CTL_EXIT_OK)
        status = ctl_pin_action(db, s->action_id, ref, &s->pin);
    if (status == CTL_EXIT_OK)
        status = pick_worker(db, cfg, s);
    if (status == CTL_EXIT_OK)
        status = insert_execution(db, ref, opts, s);
    if (status != CTL_EXIT_OK)
        return status;
    if (!s->worker_id)
        return ctl_error("no live worker (start attune-worker first); execution %s left as "
                         "requested",
                         s->execution_id);
    if ((status = dispatch(db, cfg, ref, s)) != CTL_EXIT_OK)
        return status;
    fprintf(opts->wait ? stderr : stdout, "execution %s scheduled on worker %s (%s)\n",
            s->execution_id, s->worker_id, s->worker_name);
    fflush(stdout);
    return opts->wait ? wait_final(db, cfg, s) : CTL_EXIT_OK;
}

int ctl_run(const struct config *cfg, const struct ctl_options *opts)
{
    struct run_state s = {0};
    PGconn *db = ctl_db_connect(cfg);
    if (!db)
        return CTL_EXIT_FAILED;
    int status = run(db, cfg, opts, &s);
    PQfinish(db);
    run_state_free(&s);
    return status;
}
