/* The worker's row in the database (see registration.h). */
#include "worker/registration.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"

struct registration_call {
    registration_done_fn done;
    void (*rows_done)(const PGresult *rows, void *userdata);
    void (*plain_done)(void *userdata);
    void *userdata;
};

static struct registration_call *call_new(void *userdata)
{
    struct registration_call *c = xcalloc(1, sizeof(*c));
    c->userdata = userdata;
    return c;
}

static void on_registered(struct db *db, const PGresult *res, const char *error, void *userdata)
{
    struct registration_call *c = userdata;
    (void)db;
    int64_t id = 0;
    if (!error && (PQntuples(res) != 1 || !parse_int64(PQgetvalue(res, 0, 0), &id)))
        error = "registration returned no worker id";
    c->done(error ? -1 : id, error, c->userdata);
    free(c);
}

void registration_register(struct db *db, const struct config *cfg, const json_t *capabilities,
                           registration_done_fn done, void *userdata)
{
    static const char sql[] =
        "INSERT INTO attune.worker (name, worker_type, host, status, capabilities, meta, "
        "last_heartbeat) VALUES ($1, $2::attune.worker_type_enum, $3, 'active', $4::jsonb, "
        "'{}'::jsonb, NOW()) ON CONFLICT (name) DO UPDATE SET worker_type = EXCLUDED.worker_type, "
        "host = EXCLUDED.host, status = 'active', capabilities = EXCLUDED.capabilities, "
        "last_heartbeat = NOW() RETURNING id";
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    char *caps = json_dumps(capabilities, JSON_COMPACT);
    const char *values[] = {cfg->worker_name, cfg->worker_type, host, caps};
    struct registration_call *c = call_new(userdata);
    c->done = done;
    db_query(db, sql, 4, values, on_registered, c);
    free(caps);
}

static void on_abandoned(struct db *db, const PGresult *res, const char *error, void *userdata)
{
    struct registration_call *c = userdata;
    (void)db;
    if (error)
        log_error("cannot finish executions left running: %s", error);
    c->rows_done(error ? NULL : res, c->userdata);
    free(c);
}

void registration_abandon_stale(struct db *db, int64_t worker_id,
                                void (*done)(const PGresult *rows, void *userdata), void *userdata)
{
    static const char sql[] =
        "UPDATE attune.execution SET status = 'abandoned', result = jsonb_build_object("
        "'succeeded', false, 'exit_code', NULL, 'error', "
        "'the worker stopped while the action was running (worker restarted)') "
        "WHERE worker = $1 AND status = 'running' "
        "RETURNING id, action_ref, COALESCE(action, 0), result";
    char id[32];
    snprintf(id, sizeof(id), "%lld", (long long)worker_id);
    const char *values[] = {id};
    struct registration_call *c = call_new(userdata);
    c->rows_done = done;
    db_query(db, sql, 1, values, on_abandoned, c);
}

static void on_heartbeat(struct db *db, const PGresult *res, const char *error, void *userdata)
{
    (void)db;
    (void)res;
    (void)userdata;
    if (error)
        log_warn("heartbeat not recorded: %s", error);
}

void registration_heartbeat(struct db *db, int64_t worker_id, const char *status)
{
    static const char sql[] = "UPDATE attune.worker SET last_heartbeat = NOW(), "
                              "status = $2::attune.worker_status_enum WHERE id = $1";
    char id[32];
    snprintf(id, sizeof(id), "%lld", (long long)worker_id);
    const char *values[] = {id, status};
    db_query(db, sql, 2, values, on_heartbeat, NULL);
}

static void on_deregistered(struct db *db, const PGresult *res, const char *error, void *userdata)
{
    struct registration_call *c = userdata;
    (void)db;
    (void)res;
    if (error)
        log_warn("cannot mark the worker inactive: %s", error);
    c->plain_done(c->userdata);
    free(c);
}

void registration_deregister(struct db *db, int64_t worker_id, void (*done)(void *userdata),
                             void *userdata)
{
    static const char sql[] =
        "UPDATE attune.worker SET status = 'inactive', last_heartbeat = NOW() WHERE id = $1";
    char id[32];
    snprintf(id, sizeof(id), "%lld", (long long)worker_id);
    const char *values[] = {id};
    struct registration_call *c = call_new(userdata);
    c->plain_done = done;
    db_query(db, sql, 1, values, on_deregistered, c);
}
