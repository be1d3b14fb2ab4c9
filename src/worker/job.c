/* One execution request in service mode (see job.h). */
#include "worker/job.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/util.h"
#include "exec/action.h"
#include "exec/params.h"
#include "mq/envelope.h"
#include "worker/report.h"
#include "worker/artifacts.h"
#include "worker/secrets.h"

struct job {
    struct job *next;
    sd_event_source *done_src;
    struct job_context ctx;
    uint64_t connection, delivery_tag; /* the broker message, until acknowledged */
    bool acked;
    bool claimed;  /* the execution is ours from here... */
    bool recorded; /* ...until its final state is in the database */
    bool retried_final;
    bool cancel_requested;
    char *config_error; /* the execution's config did not parse */
    struct execution_request_msg msg;
    char id_text[32];
    char worker_text[32];
    char *previous_status;
    char *action_ref;
    char *action_id; /* text, NULL if unknown */
    json_t *exec_config;
    json_t *env_vars;
    int timeout_seconds;
    struct action *action;
    json_t *params;
    json_t *secrets;
    char *dir;
    struct execution *execution;
    enum execution_status final_status;
    json_t *result;
};

static void job_finish(struct job *job, enum execution_status status, json_t *result);
static void job_load_action(struct job *job);

static int on_job_done(sd_event_source *s, void *userdata)
{
    struct job *job = userdata;
    sd_event_source_set_enabled(s, SD_EVENT_OFF);
    job->ctx.finished(job, job->ctx.userdata);
    return 0;
}

/* The service hears of the end from the loop, never from inside job_start. */
static void job_done(struct job *job)
{
    if (sd_event_add_defer(job->ctx.loop, &job->done_src, on_job_done, job) < 0) {
        log_error("cannot schedule the end of execution %s", job->id_text);
        job->ctx.finished(job, job->ctx.userdata);
    }
}

/* Outbound messages */

static struct report_subject job_subject(const struct job *job)
{
    int64_t action_id = 0;
    if (job->action_id)
        parse_int64(job->action_id, &action_id);
    return (struct report_subject){
        .execution_id = job->msg.execution_id,
        .action_id = action_id,
        .action_ref = job->action_ref,
        .correlation_id = job->msg.correlation_id,
        .trace_id = job->msg.trace_id,
    };
}

static void job_publish_status(struct job *job, const char *from, const char *to)
{
    struct report_subject subject = job_subject(job);
    report_status_changed(job->ctx.mq, &subject, from, to);
}

static void job_publish_completed(struct job *job)
{
    struct report_subject subject = job_subject(job);
    report_completed(job->ctx.mq, &subject, execution_status_name(job->final_status), job->result);
}

/* Final record */

static void on_final_recorded(struct db *db, const PGresult *res, const char *error, void *userdata)
{
    struct job *job = userdata;
    (void)db;
    job->recorded = true;
    if (error && !job->retried_final) {
        /* The result itself was refused: record the failure instead, so the
         * execution does not stay running and its messages still go out. */
        log_error("execution %s: cannot record the result: %s", job->id_text, error);
        char *why = xasprintf("the result could not be stored: %s", error);
        json_t *fallback = execution_failure_result(why);
        free(why);
        json_decref(job->result);
        job->result = NULL;
        job->retried_final = true;
        job->recorded = false;
        job_finish(job, EXECUTION_FAILED, fallback);
        return;
    } else if (error) {
        log_error("execution %s: cannot record the result: %s", job->id_text, error);
    } else if (atoi(PQcmdTuples((PGresult *)res)) == 0 && !job->retried_final) {
        /* Either someone else finished it, or our own update went through and
         * its answer was lost with the connection: look before reporting. */
        static const char sql[] =
            "SELECT status::text = $2 AND result = $3::jsonb FROM attune.execution WHERE id = $1";
        char *text = json_dumps(job->result, JSON_COMPACT);
        const char *values[] = {job->id_text, execution_status_name(job->final_status), text};
        job->retried_final = true;
        job->recorded = false;
        db_query(job->ctx.db, sql, 3, values, on_final_recorded, job);
        free(text);
        return;
    } else if (job->retried_final &&
               (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "t") != 0)) {
        log_warn("execution %s was no longer running when its result came; not overwritten",
                 job->id_text);
    } else {
        const char *status = execution_status_name(job->final_status);
        log_info("execution %s (%s) %s", job->id_text, job->action_ref, status);
        job_publish_status(job, "running", status);
        job_publish_completed(job);
    }
    job_done(job);
}

static void job_finish(struct job *job, enum execution_status status, json_t *result)
{
    static const char sql[] =
        "UPDATE attune.execution SET status = $2::attune.execution_status_enum, "
        "result = $3::jsonb WHERE id = $1 AND status IN ('running', 'canceling')";
    job->final_status = status;
    job->result = result;
    char *text = json_dumps(result, JSON_COMPACT);
    const char *values[] = {job->id_text, execution_status_name(status), text};
    db_query(job->ctx.db, sql, 3, values, on_final_recorded, job);
    free(text);
}

static void job_fail(struct job *job, const char *error)
{
    log_warn("execution %s (%s) failed before it started: %s", job->id_text, job->action_ref,
             error);
    json_t *result = execution_failure_result(error);
    if (job->dir)
        json_object_set_new(result, "artifacts_dir", json_string(job->dir));
    job_finish(job, EXECUTION_FAILED, result);
}

/* Running */

static void on_execution_done(struct execution *ex, void *userdata)
{
    struct job *job = userdata;
    log_debug("execution %s: process finished", job->id_text);
    json_t *result = json_incref(execution_get_result(ex));
    enum execution_status status = execution_get_status(ex);
    job_finish(job, status, result);
}

static int job_timeout(const struct job *job)
{
    if (job->timeout_seconds > 0)
        return job->timeout_seconds;
    if (job->action->timeout_seconds > 0)
        return job->action->timeout_seconds;
    return job->ctx.cfg->task_timeout;
}

static void job_run(struct job *job)
{
    if (job->cancel_requested) {
        json_t *result = execution_failure_result("cancelled before it started (worker stopping)");
        job_finish(job, EXECUTION_CANCELLED, result);
        return;
    }
    log_debug("execution %s: action and secrets loaded; starting", job->id_text);
    char err[1024];
    struct execution_request req = {
        .exec_id = job->id_text,
        .artifacts_dir = job->dir,
        .action = job->action,
        .params = job->params,
        .secrets = job->secrets,
        .env_vars = job->env_vars,
        .timeout_seconds = job_timeout(job),
    };
    if (execution_start(job->ctx.loop, job->ctx.settings, &req, on_execution_done, job,
                        &job->execution, err, sizeof(err)) < 0)
        job_fail(job, err);
}

/* Parameters: config.parameters, or the whole config minus context and env. */
static json_t *job_parameters(const json_t *config)
{
    if (!json_is_object(config))
        return json_object();
    json_t *p = json_object_get(config, "parameters");
    if (p)
        return json_is_object(p) ? json_deep_copy(p) : NULL;
    json_t *copy = json_deep_copy(config);
    json_object_del(copy, "context");
    json_object_del(copy, "env");
    return copy;
}

static void on_secrets_loaded(struct db *db, const PGresult *res, const char *error, void *userdata)
{
    struct job *job = userdata;
    char err[512];
    (void)db;
    if (error) {
        snprintf(err, sizeof(err), "cannot read secrets: %s", error);
        job_fail(job, err);
        return;
    }
    int n = PQntuples(res);
    struct secret_row *rows = xcalloc((size_t)n + 1, sizeof(*rows));
    for (int i = 0; i < n; i++) {
        rows[i].name = PQgetvalue(res, i, 0);
        rows[i].owner_type = PQgetvalue(res, i, 1);
        rows[i].encrypted = strcmp(PQgetvalue(res, i, 2), "t") == 0;
        rows[i].encryption_key_hash = PQgetisnull(res, i, 3) ? NULL : PQgetvalue(res, i, 3);
        rows[i].value = PQgetvalue(res, i, 4);
    }
    int rc = secrets_resolve(rows, (size_t)n, job->ctx.cfg->encryption_key, &job->secrets, err,
                             sizeof(err));
    free(rows);
    if (rc < 0)
        job_fail(job, err);
    else
        job_run(job);
}

static void job_load_secrets(struct job *job)
{
    static const char sql[] =
        "SELECT name, owner_type::text, encrypted, encryption_key_hash, value FROM attune.key "
        "WHERE owner_type = 'system' OR (owner_type = 'pack' AND owner_pack_ref = $1) "
        "OR (owner_type = 'action' AND owner_action_ref = $2)";
    const char *values[] = {job->action->pack_ref, job->action->ref};
    db_query(job->ctx.db, sql, 2, values, on_secrets_loaded, job);
}

/* A runtime row's name as a runner type: Attune deployments also spell them
 * "Python", "python3", "nodejs", "bash"; no runtime means "local". */
static const char *job_runner_name(const char *name)
{
    static const char *const aliases[][2] = {
        {"python3", "python"}, {"nodejs", "node"}, {"bash", "shell"}, {"sh", "shell"}};
    static const char *const known[] = {"shell", "python", "node", "local"};
    if (!name || !*name)
        return "local";
    for (size_t i = 0; i < ARRAY_SIZE(aliases); i++)
        if (strcasecmp(name, aliases[i][0]) == 0)
            return aliases[i][1];
    for (size_t i = 0; i < ARRAY_SIZE(known); i++)
        if (strcasecmp(name, known[i]) == 0)
            return known[i];
    return name;
}

/* The action row becomes a definition like an action file's, so the same
 * checks apply (entry point present and inside actions/, known formats). */
static json_t *job_action_definition(const PGresult *res)
{
    json_t *def = json_object();
    static const char *const text_columns[] = {
        "name",         "entry_point",        "label",
        "description",  "parameter_delivery", "parameter_format",
        "output_format"};
    for (size_t i = 0; i < ARRAY_SIZE(text_columns); i++) {
        int col = PQfnumber(res, text_columns[i]);
        if (col >= 0 && !PQgetisnull(res, 0, col))
            json_object_set_new(def, text_columns[i], json_string(PQgetvalue(res, 0, col)));
    }
    int runtime = PQfnumber(res, "runner_type");
    const char *runtime_name = PQgetisnull(res, 0, runtime) ? NULL : PQgetvalue(res, 0, runtime);
    json_object_set_new(def, "runner_type", json_string(job_runner_name(runtime_name)));
    int enabled = PQfnumber(res, "enabled");
    json_object_set_new(def, "enabled",
                        json_boolean(strcmp(PQgetvalue(res, 0, enabled), "t") == 0));
    int timeout = PQfnumber(res, "timeout_seconds");
    if (!PQgetisnull(res, 0, timeout))
        json_object_set_new(def, "timeout", json_integer(atoi(PQgetvalue(res, 0, timeout))));
    json_t *schema = json_loads(PQgetvalue(res, 0, PQfnumber(res, "param_schema")), 0, NULL);
    if (schema)
        json_object_set_new(def, "parameters", schema);
    return def;
}

static void on_action_loaded(struct db *db, const PGresult *res, const char *error, void *userdata)
{
    struct job *job = userdata;
    char err[1024];
    (void)db;
    if (error || PQntuples(res) == 0) {
        snprintf(err, sizeof(err), "%s%s", error ? "cannot load the action: " : "",
                 error ? error : "");
        if (!error)
            snprintf(err, sizeof(err), "action '%s' is not registered", job->action_ref);
        job_fail(job, err);
        return;
    }
    const char *pack_ref = PQgetvalue(res, 0, PQfnumber(res, "pack_ref"));
    job->action_id = xstrdup(PQgetvalue(res, 0, PQfnumber(res, "id")));
    char *pack_dir = xasprintf("%s/%s", job->ctx.cfg->packs_base_dir, pack_ref);
    json_t *def = job_action_definition(res);
    int rc = action_from_definition(def, pack_ref, pack_dir, &job->action, err, sizeof(err));
    json_decref(def);
    free(pack_dir);
    if (rc == 0 && job->config_error)
        rc = set_error(err, sizeof(err), EINVAL, "%s", job->config_error);
    if (rc == 0 && !job->action->enabled)
        rc = set_error(err, sizeof(err), EPERM, "action '%s' is disabled (enabled: false)",
                       job->action_ref);
    if (rc == 0) {
        job->params = job_parameters(job->exec_config);
        if (!job->params)
            rc = set_error(err, sizeof(err), EINVAL, "config.parameters must be an object");
    }
    if (rc == 0)
        rc = params_validate(job->params, job->action->param_schema, err, sizeof(err));
    if (rc < 0)
        job_fail(job, err);
    else
        job_load_secrets(job);
}

static void job_load_action(struct job *job)
{
    static const char sql[] =
        "SELECT a.id, a.ref, a.pack_ref, substr(a.ref, length(a.pack_ref) + 2) AS name, "
        "a.entrypoint AS entry_point, a.label, a.description, a.param_schema, "
        "a.parameter_delivery, a.parameter_format, a.output_format, a.timeout_seconds, "
        "r.name AS runner_type, a.enabled FROM attune.action a LEFT JOIN attune.runtime r ON r.id "
        "= "
        "a.runtime WHERE a.ref = $1";
    const char *values[] = {job->action_ref};
    db_query(job->ctx.db, sql, 1, values, on_action_loaded, job);
}

/* Claiming */

static void job_ack(struct job *job)
{
    mq_ack_tag(job->ctx.mq, job->connection, job->delivery_tag);
    job->acked = true;
}

static void job_reject(struct job *job, const char *why)
{
    log_warn("message rejected to the dead-letter queue: %s", why);
    mq_reject_tag(job->ctx.mq, job->connection, job->delivery_tag, false);
    job->acked = true;
    job_done(job);
}

static void job_claimed(struct job *job, const PGresult *res)
{
    job->claimed = true;
    job->previous_status = xstrdup(PQgetvalue(res, 0, 0));
    free(job->action_ref);
    job->action_ref = xstrdup(PQgetvalue(res, 0, 1));
    job->exec_config = NULL;
    if (!PQgetisnull(res, 0, 2)) {
        json_error_t jerr;
        job->exec_config = json_loads(PQgetvalue(res, 0, 2), 0, &jerr);
        if (!job->exec_config)
            job->config_error = xasprintf("execution config cannot be read: %s", jerr.text);
    }
    job->timeout_seconds = PQgetisnull(res, 0, 3) ? 0 : atoi(PQgetvalue(res, 0, 3));
    job->env_vars = PQgetisnull(res, 0, 4) ? NULL : json_loads(PQgetvalue(res, 0, 4), 0, NULL);
    job->dir = artifacts_execution_dir(job->ctx.cfg->artifacts_dir, job->ctx.cfg->worker_name,
                                       job->id_text);
    job_ack(job);
    log_info("execution %s (%s) running", job->id_text, job->action_ref);
    job_publish_status(job, job->previous_status, "running");
    job_load_action(job);
}

static void job_requeue(struct job *job, const char *why)
{
    log_warn("execution %s: %s; returned to the queue", job->id_text, why);
    mq_reject_tag(job->ctx.mq, job->connection, job->delivery_tag, true);
    job->acked = true;
    job_done(job);
}

static void job_resume(struct job *job);

static void on_status_checked(struct db *db, const PGresult *res, const char *error, void *userdata)
{
    struct job *job = userdata;
    char why[256];
    (void)db;
    if (error) {
        /* The database is the truth and cannot answer: let the broker retry. */
        snprintf(why, sizeof(why), "cannot check its status: %s", error);
        job_requeue(job, why);
        return;
    }
    if (PQntuples(res) == 0) {
        snprintf(why, sizeof(why), "execution %s does not exist", job->id_text);
        job_reject(job, why);
        return;
    }
    const char *status = PQgetvalue(res, 0, 0);
    const char *worker = PQgetvalue(res, 0, 1);
    if (strcmp(status, "running") == 0 && strcmp(worker, job->worker_text) == 0 &&
        !job->ctx.is_running(job->msg.execution_id, job->ctx.userdata)) {
        /* Ours, yet not running here: the reply to our own claim was lost
         * with a database connection. Pick it up. */
        job_resume(job);
        return;
    }
    log_info("execution %s is already %s; acknowledged, not run again", job->id_text, status);
    job_ack(job);
    job_done(job);
}

static void on_claim(struct db *db, const PGresult *res, const char *error, void *userdata)
{
    static const char sql[] =
        "SELECT status::text, COALESCE(worker::text, '') FROM attune.execution WHERE id = $1";
    struct job *job = userdata;
    if (error) {
        job_requeue(job, error);
        return;
    }
    if (PQntuples(res) == 1) {
        job_claimed(job, res);
        return;
    }
    const char *values[] = {job->id_text};
    db_query(db, sql, 1, values, on_status_checked, job);
}

static void on_resumed(struct db *db, const PGresult *res, const char *error, void *userdata)
{
    struct job *job = userdata;
    (void)db;
    if (error || PQntuples(res) != 1) {
        job_requeue(job, error ? error : "it changed while being resumed");
        return;
    }
    job_claimed(job, res);
}

static void job_resume(struct job *job)
{
    static const char sql[] =
        "SELECT 'scheduled', action_ref, config, timeout_seconds, env_vars FROM "
        "attune.execution WHERE id = $1 AND status = 'running' AND worker = $2";
    const char *values[] = {job->id_text, job->worker_text};
    db_query(job->ctx.db, sql, 2, values, on_resumed, job);
}

static void job_claim(struct job *job)
{
    static const char sql[] =
        "WITH prev AS (SELECT id, status FROM attune.execution WHERE id = $1 FOR UPDATE) "
        "UPDATE attune.execution e SET status = 'running', worker = $2, started_at = NOW() "
        "FROM prev WHERE e.id = prev.id AND prev.status IN ('requested', 'scheduling', "
        "'scheduled') RETURNING prev.status::text, e.action_ref, e.config, e.timeout_seconds, "
        "e.env_vars";
    const char *values[] = {job->id_text, job->worker_text};
    db_query(job->ctx.db, sql, 2, values, on_claim, job);
}

struct job *job_start(const struct job_context *ctx, const struct mq_delivery *d)
{
    struct job *job = xcalloc(1, sizeof(*job));
    char why[512];
    job->ctx = *ctx;
    job->connection = d->connection;
    job->delivery_tag = d->delivery_tag;
    snprintf(job->worker_text, sizeof(job->worker_text), "%" PRId64, ctx->worker_id);
    if (envelope_parse_request(d->body, d->len, &job->msg, why, sizeof(why)) < 0) {
        job_reject(job, why);
        return job;
    }
    snprintf(job->id_text, sizeof(job->id_text), "%" PRId64, job->msg.execution_id);
    log_debug("execution %s: request received", job->id_text);
    job->action_ref = xstrdup(job->msg.action_ref);
    job_claim(job);
    return job;
}

bool job_holds_execution(const struct job *job)
{
    return job->claimed && !job->recorded;
}

int64_t job_execution_id(const struct job *job)
{
    return job->msg.execution_id;
}

void job_cancel(struct job *job)
{
    job->cancel_requested = true;
    if (job->execution)
        execution_cancel(job->execution);
}

void job_free(struct job *job)
{
    if (!job)
        return;
    sd_event_source_disable_unref(job->done_src);
    execution_free(job->execution);
    envelope_request_free(&job->msg);
    action_free(job->action);
    json_decref(job->params);
    json_decref(job->secrets);
    json_decref(job->exec_config);
    json_decref(job->env_vars);
    json_decref(job->result);
    free(job->config_error);
    free(job->previous_status);
    free(job->action_ref);
    free(job->action_id);
    free(job->dir);
    free(job);
}

struct job *job_next(const struct job *job)
{
    return job->next;
}

void job_set_next(struct job *job, struct job *next)
{
    job->next = next;
}
