/* The execution table (see executions.h). */
#include "db/executions.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "db/log_artifacts.h"
#include "db/query.h"

/* The caller's callback and its argument, carried through one query. */
struct execution_call {
    union {
        db_execution_fn row;
        db_owner_fn owner;
        db_changed_fn changed;
        db_abandoned_fn abandoned;
    } done;
    void *userdata;
};

static struct execution_call *call_new(void *userdata)
{
    struct execution_call *c = xcalloc(1, sizeof(*c));
    c->userdata = userdata;
    return c;
}

/* An execution row's columns, in this order: id, the status before the
 * claim, then the execution's own (EXECUTION_COLUMNS), its enforcement's
 * rule_ref and trigger_ref, its secret values, what its API token needs
 * (EXECUTION_TOKEN_COLUMNS), then its action a (DB_ACTION_COLUMNS, all NULL
 * when there is none) and, in the statements that read them, the keys it may
 * see and whether they were read. */
#define EXECUTION_COLUMNS                                                                          \
    "e.action_ref, e.config, e.timeout_seconds, e.env_vars, e.action, e.pack_release, "            \
    "e.pack_release_digest, e.executable_snapshot, e.trace_tag"
/* As Attune's worker, only a workflow task (workflow_task set) gets its
 * parent's action in the token's standard access. */
#define EXECUTION_TOKEN_COLUMNS                                                                    \
    "e.executor, to_jsonb(e.permission_set_refs), (SELECT p.action_ref FROM attune.execution p "   \
    "WHERE p.id = e.parent AND e.workflow_task IS NOT NULL)"
#define EXECUTION_KEYS DB_ACTION_KEYS("a.pack", "a.id")
#define EXECUTION_ACTION_COLUMNS                                                                   \
    DB_ACTION_COLUMNS ", CASE WHEN a.id IS NOT NULL THEN " EXECUTION_KEYS " END, a.id IS NOT NULL"
/* Without the keys, the statement does not name the key table at all: a
 * worker whose database role may not read it still runs with
 * secrets.keystore off. */
#define EXECUTION_ACTION_COLUMNS_NO_KEYS DB_ACTION_COLUMNS ", NULL, false"
/* The action of the execution's action_ref (x) and its runtime. */
#define EXECUTION_ACTION_JOIN(x)                                                                   \
    " LEFT JOIN attune.action a ON a.ref = " x ".action_ref LEFT JOIN attune.runtime r "           \
    "ON r.id = a.runtime"
#define ACTION_COLUMN 17
#define KEYS_COLUMN (ACTION_COLUMN + DB_ACTION_COLUMN_COUNT)

/* The action and keys columns into row; action and keys hold what the row
 * points to until the callback is over. */
static void read_action_and_keys(const PGresult *res, struct execution_row *row,
                                 struct action_row *action, struct key_set *keys, char *err,
                                 size_t errlen)
{
    memset(keys, 0, sizeof(*keys));
    if (PQgetisnull(res, 0, ACTION_COLUMN))
        return;
    db_action_read(res, 0, ACTION_COLUMN, action);
    row->action = action;
    row->keys_read = db_bool(res, 0, KEYS_COLUMN + 1);
    if (row->keys_read && db_keys_parse(db_text(res, 0, KEYS_COLUMN), keys, err, errlen) < 0)
        row->keys_error = err;
    row->keys = keys->rows;
    row->n_keys = keys->count;
}

static void on_execution_row(struct db *db, const PGresult *res, const char *error, void *userdata)
{
    struct execution_call *c = userdata;
    (void)db;
    if (error || PQntuples(res) != 1) {
        c->done.row(NULL, error, c->userdata);
        free(c);
        return;
    }
    char config_error[200] = "", snapshot_error[200] = "", secrets_error[200] = "";
    struct secret_values secrets;
    int secrets_rc =
        db_secret_values_parse(db_text(res, 0, 13), &secrets, secrets_error, sizeof(secrets_error));
    struct execution_row row = {
        .id = db_int64(res, 0, 0),
        .previous_status = db_text(res, 0, 1),
        .action_ref = db_text(res, 0, 2),
        .config = db_json(res, 0, 3, config_error, sizeof(config_error)),
        .timeout_seconds = (int)db_int64(res, 0, 4),
        .env_vars = db_json(res, 0, 5, NULL, 0),
        .action_id = db_int64(res, 0, 6),
        .pack_release = db_int64(res, 0, 7),
        .pack_release_digest = db_text(res, 0, 8),
        .executable_snapshot = db_json(res, 0, 9, snapshot_error, sizeof(snapshot_error)),
        .trace_tag = db_text(res, 0, 10),
        .rule_ref = db_text(res, 0, 11),
        .trigger_ref = db_text(res, 0, 12),
        .secret_values = secrets.rows,
        .n_secret_values = secrets.count,
        .secret_values_error = secrets_rc < 0 ? secrets_error : NULL,
        .executor = db_int64(res, 0, 14),
        .permission_set_refs = db_json(res, 0, 15, NULL, 0),
        .workflow_parent_action_ref = db_text(res, 0, 16),
    };
    if (!row.config && db_text(res, 0, 3))
        row.config_error = config_error;
    if (!row.executable_snapshot && db_text(res, 0, 9))
        row.executable_snapshot_error = snapshot_error;
    struct action_row action = {0};
    struct key_set keys;
    char keys_error[200] = "";
    read_action_and_keys(res, &row, &action, &keys, keys_error, sizeof(keys_error));
    c->done.row(&row, NULL, c->userdata);
    db_action_row_clear(&action);
    db_keys_free(&keys);
    json_decref(row.config);
    json_decref(row.env_vars);
    json_decref(row.executable_snapshot);
    json_decref(row.permission_set_refs);
    db_secret_values_free(&secrets);
    free(c);
}

/* Runs a statement over (id, worker) whose answer is one execution row. */
static void execution_row_query(struct db *db, const char *sql, int64_t id, int64_t worker_id,
                                db_execution_fn done, void *userdata)
{
    struct db_id_text exec = db_id(id), worker = db_id(worker_id);
    const char *values[] = {exec.text, worker.text};
    struct execution_call *c = call_new(userdata);
    c->done.row = done;
    db_query(db, sql, 2, values, on_execution_row, c);
}

/* The claim, its columns ending with action_columns. */
#define CLAIM_SQL(action_columns)                                                                  \
    "WITH prev AS (SELECT x.id, x.status, x.action_ref, en.rule_ref, en.trigger_ref "              \
    "FROM attune.execution x LEFT JOIN attune.enforcement en ON en.id = x.enforcement "            \
    "WHERE x.id = $1 FOR UPDATE OF x) "                                                            \
    "UPDATE attune.execution e SET status = 'running', worker = $2, started_at = NOW() "           \
    "FROM prev" EXECUTION_ACTION_JOIN(                                                             \
        "prev") " WHERE e.id = prev.id AND prev.status IN "                                        \
                "('requested', 'scheduling', 'scheduled') RETURNING e.id, "                        \
                "prev.status::text, " EXECUTION_COLUMNS                                            \
                ", prev.rule_ref, prev.trigger_ref, " DB_EXECUTION_SECRET_VALUES(                  \
                    "e.id") ", " EXECUTION_TOKEN_COLUMNS ", " action_columns

void db_execution_claim(struct db *db, int64_t id, int64_t worker_id, bool with_keys,
                        db_execution_fn done, void *userdata)
{
    /* The action and its keys come in the claim's round trip: one answer
     * where the job used to wait for three. */
    static const char sql[] = CLAIM_SQL(EXECUTION_ACTION_COLUMNS);
    static const char sql_no_keys[] = CLAIM_SQL(EXECUTION_ACTION_COLUMNS_NO_KEYS);
    execution_row_query(db, with_keys ? sql : sql_no_keys, id, worker_id, done, userdata);
}

#define RESUME_SQL(action_columns)                                                                 \
    "SELECT e.id, 'scheduled', " EXECUTION_COLUMNS                                                 \
    ", en.rule_ref, en.trigger_ref, " DB_EXECUTION_SECRET_VALUES(                                  \
        "e.id") ", " EXECUTION_TOKEN_COLUMNS ", " action_columns                                   \
                " FROM attune.execution e LEFT JOIN attune.enforcement en ON en.id = "             \
                "e.enforcement" EXECUTION_ACTION_JOIN(                                             \
                    "e") " WHERE e.id = $1 AND e.status = 'running' AND e.worker = $2"

void db_execution_resume(struct db *db, int64_t id, int64_t worker_id, bool with_keys,
                         db_execution_fn done, void *userdata)
{
    static const char sql[] = RESUME_SQL(EXECUTION_ACTION_COLUMNS);
    static const char sql_no_keys[] = RESUME_SQL(EXECUTION_ACTION_COLUMNS_NO_KEYS);
    execution_row_query(db, with_keys ? sql : sql_no_keys, id, worker_id, done, userdata);
}

static void on_owner(struct db *db, const PGresult *res, const char *error, void *userdata)
{
    struct execution_call *c = userdata;
    (void)db;
    if (error || PQntuples(res) != 1) {
        c->done.owner(NULL, error, c->userdata);
    } else {
        struct execution_owner owner = {
            .status = db_text(res, 0, 0),
            .worker_id = db_int64(res, 0, 1),
            .action_ref = db_text(res, 0, 2),
            .action_id = db_int64(res, 0, 3),
            .result = db_json(res, 0, 4, NULL, 0),
            .pack_release = db_int64(res, 0, 5),
            .pack_release_digest = db_text(res, 0, 6),
        };
        c->done.owner(&owner, NULL, c->userdata);
        json_decref(owner.result);
    }
    free(c);
}

void db_execution_owner(struct db *db, int64_t id, db_owner_fn done, void *userdata)
{
    static const char sql[] = "SELECT status::text, worker, action_ref, action, result, "
                              "pack_release, pack_release_digest FROM attune.execution "
                              "WHERE id = $1";
    struct db_id_text exec = db_id(id);
    const char *values[] = {exec.text};
    struct execution_call *c = call_new(userdata);
    c->done.owner = done;
    db_query(db, sql, 1, values, on_owner, c);
}

static void on_changed(struct db *db, const PGresult *res, const char *error, void *userdata)
{
    struct execution_call *c = userdata;
    (void)db;
    long changed = 0;
    if (!error && PQresultStatus(res) == PGRES_TUPLES_OK)
        changed = PQntuples(res) == 1 && db_bool(res, 0, 0);
    else if (!error)
        changed = db_changed(res);
    c->done.changed(changed, error, c->userdata);
    free(c);
}

/* Runs a statement over (id, status, result[, secrets, logs]) whose answer
 * is a count, or whether it holds. */
static void execution_status_query(struct db *db, const char *sql, int nparams, int64_t id,
                                   const char *status, const json_t *result, const json_t *secrets,
                                   const json_t *logs, db_changed_fn done, void *userdata)
{
    struct db_id_text exec = db_id(id);
    char *text = json_dumps(result, JSON_COMPACT);
    char *secrets_text = secrets ? json_dumps(secrets, JSON_COMPACT) : NULL;
    char *logs_text = logs ? json_dumps(logs, JSON_COMPACT) : NULL;
    const char *values[] = {exec.text, status, text, secrets_text, logs_text};
    struct execution_call *c = call_new(userdata);
    c->done.changed = done;
    db_query(db, sql, nparams, values, on_changed, c);
    free(text);
    free(secrets_text);
    free(logs_text);
}

#define FINISH_UPDATE                                                                              \
    "UPDATE attune.execution SET status = $2::attune.execution_status_enum, "                      \
    "result = $3::jsonb WHERE id = $1 AND status IN ('running', 'canceling')"

/* The final update, and the result's secret values inserted by the same
 * statement from $4 (NULL: none). */
#define FINISH_WITH_SECRETS                                                                        \
    "fin AS (" FINISH_UPDATE " RETURNING id), "                                                    \
    "sec AS (INSERT INTO attune.execution_secret_value (entity_type, entity_id, json_path, "       \
    "source_kind, source_ref, encrypted_value, encryption_key_hash) "                              \
    "SELECT 'execution_result', fin.id, s.json_path, s.source_kind, s.source_ref, "                \
    "s.encrypted_value, s.encryption_key_hash FROM fin, jsonb_to_recordset("                       \
    "COALESCE($4::jsonb, '[]')) AS s(json_path text, source_kind text, source_ref text, "          \
    "encrypted_value jsonb, encryption_key_hash text) "                                            \
    "ON CONFLICT (entity_type, entity_id, json_path) DO UPDATE SET "                               \
    "source_kind = EXCLUDED.source_kind, source_ref = EXCLUDED.source_ref, "                       \
    "encrypted_value = EXCLUDED.encrypted_value, "                                                 \
    "encryption_key_hash = EXCLUDED.encryption_key_hash)"

void db_execution_finish(struct db *db, int64_t id, const char *status, const json_t *result,
                         const json_t *secrets, const json_t *logs, db_changed_fn done,
                         void *userdata)
{
    /* One statement, so that the secret values are written exactly when the
     * result that masks them is, and a repeat after a lost reply (the row is
     * no longer running) writes neither; the log rows are sealed by it too
     * (log_artifacts.h). */
    static const char sql[] = "WITH " FINISH_WITH_SECRETS " SELECT EXISTS (SELECT 1 FROM fin)";
    /* The seal names the log tables, which a database may not have. */
    static const char sql_logs[] =
        "WITH " FINISH_WITH_SECRETS ", " DB_LOG_SEAL_CTES " SELECT EXISTS (SELECT 1 FROM fin)";
    execution_status_query(db, logs ? sql_logs : sql, logs ? 5 : 4, id, status, result, secrets,
                           logs, done, userdata);
}

void db_execution_check_finished(struct db *db, int64_t id, const char *status,
                                 const json_t *result, db_changed_fn done, void *userdata)
{
    /* The secret values need no check: the finish wrote them in the same
     * statement as this result. */
    static const char sql[] =
        "SELECT status::text = $2 AND result = $3::jsonb FROM attune.execution WHERE id = $1";
    execution_status_query(db, sql, 3, id, status, result, NULL, NULL, done, userdata);
}

static void on_abandoned(struct db *db, const PGresult *res, const char *error, void *userdata)
{
    struct execution_call *c = userdata;
    (void)db;
    size_t n = error ? 0 : (size_t)PQntuples(res);
    struct abandoned_row *rows = xcalloc(n + 1, sizeof(*rows));
    for (size_t i = 0; i < n; i++) {
        rows[i] = (struct abandoned_row){
            .id = db_int64(res, (int)i, 0),
            .action_ref = db_text(res, (int)i, 1),
            .action_id = db_int64(res, (int)i, 2),
            .result = db_json(res, (int)i, 3, NULL, 0),
        };
    }
    c->done.abandoned(rows, n, error, c->userdata);
    for (size_t i = 0; i < n; i++)
        json_decref(rows[i].result);
    free(rows);
    free(c);
}

void db_execution_abandon_stale(struct db *db, int64_t worker_id, const char *error_text,
                                db_abandoned_fn done, void *userdata)
{
    static const char sql[] =
        "UPDATE attune.execution SET status = 'abandoned', result = jsonb_build_object("
        "'succeeded', false, 'exit_code', NULL, 'error', $2::text) "
        "WHERE worker = $1 AND status = 'running' "
        "RETURNING id, action_ref, action, result";
    struct db_id_text worker = db_id(worker_id);
    const char *values[] = {worker.text, error_text};
    struct execution_call *c = call_new(userdata);
    c->done.abandoned = done;
    db_query(db, sql, 2, values, on_abandoned, c);
}
