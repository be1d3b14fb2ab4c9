/* The worker table (see workers.h). */
#include "db/workers.h"

#include <stdlib.h>

#include "core/util.h"
#include "db/query.h"

struct worker_call {
    db_worker_fn done;
    void *userdata;
};

static void on_worker(struct db *db, const PGresult *res, const char *error, void *userdata)
{
    struct worker_call *c = userdata;
    (void)db;
    int64_t id = 0;
    if (!error && PQresultStatus(res) == PGRES_TUPLES_OK) {
        id = PQntuples(res) == 1 ? db_int64(res, 0, 0) : 0;
        if (id <= 0)
            error = "registration returned no worker id";
    }
    if (c->done)
        c->done(error ? 0 : id, error, c->userdata);
    free(c);
}

static void worker_query(struct db *db, const char *sql, int n, const char *const *values,
                         db_worker_fn done, void *userdata)
{
    struct worker_call *c = xcalloc(1, sizeof(*c));
    c->done = done;
    c->userdata = userdata;
    db_query(db, sql, n, values, on_worker, c);
}

void db_worker_register(struct db *db, const struct worker_row *row, db_worker_fn done,
                        void *userdata)
{
    static const char sql[] =
        "INSERT INTO attune.worker (name, worker_type, worker_role, host, status, capabilities, "
        "meta, last_heartbeat) VALUES ($1, $2::attune.worker_type_enum, 'action', $3, 'active', "
        "$4::jsonb, '{}'::jsonb, NOW()) ON CONFLICT (name) DO UPDATE SET "
        "worker_type = EXCLUDED.worker_type, host = EXCLUDED.host, status = 'active', capabilities "
        "= EXCLUDED.capabilities, "
        "last_heartbeat = NOW() RETURNING id";
    char *caps = json_dumps(row->capabilities, JSON_COMPACT);
    const char *values[] = {row->name, row->worker_type, row->host, caps};
    worker_query(db, sql, 4, values, done, userdata);
    free(caps);
}

void db_worker_heartbeat(struct db *db, int64_t worker_id, const char *status, db_worker_fn done,
                         void *userdata)
{
    static const char sql[] = "UPDATE attune.worker SET last_heartbeat = NOW(), "
                              "status = $2::attune.worker_status_enum WHERE id = $1";
    struct db_id_text id = db_id(worker_id);
    const char *values[] = {id.text, status};
    worker_query(db, sql, 2, values, done, userdata);
}

void db_worker_deactivate(struct db *db, int64_t worker_id, db_worker_fn done, void *userdata)
{
    static const char sql[] =
        "UPDATE attune.worker SET status = 'inactive', last_heartbeat = NOW() WHERE id = $1";
    struct db_id_text id = db_id(worker_id);
    const char *values[] = {id.text};
    worker_query(db, sql, 1, values, done, userdata);
}
