/* Attune's rows for an execution's logs (see log_artifacts.h). */
#include "db/log_artifacts.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/util.h"
#include "db/query.h"

/* The caller's callback and its argument, carried through one query. */
struct log_artifacts_call {
    union {
        db_log_artifacts_fn create;
        db_log_artifacts_probe_fn probe;
    } done;
    void *userdata;
};

/* The retention Attune's worker applies (executor.rs effective_action_log_
 * retention): the action's own, from the snapshot when the execution is
 * pinned, else from its row; a policy or limit it does not set is the
 * worker's ($4, $5). */
#define LOG_SOURCE                                                                                 \
    "src AS (SELECT e.id, e.action_ref, CASE WHEN e.executable_snapshot IS NOT NULL "              \
    "THEN e.executable_snapshot #>> '{executable,action,log_retention_policy}' "                   \
    "ELSE a.log_retention_policy::text END AS policy, "                                            \
    "CASE WHEN e.executable_snapshot IS NOT NULL "                                                 \
    "THEN e.executable_snapshot #> '{executable,action,log_retention_limit}' "                     \
    "ELSE to_jsonb(a.log_retention_limit) END AS lim FROM attune.execution e "                     \
    "LEFT JOIN attune.action a ON a.id = e.action OR (e.action IS NULL AND a.ref = e.action_ref) " \
    "WHERE e.id = $1), "                                                                           \
    "streams AS (SELECT s.stream, s.path, src.id AS execution, src.action_ref, "                   \
    "src.action_ref || '.' || s.stream || '.log' AS ref, (CASE WHEN src.policy IN "                \
    "('versions', 'days', 'hours', 'minutes') THEN src.policy ELSE $4 END)"                        \
    "::attune.artifact_retention_enum AS policy, CASE WHEN jsonb_typeof(src.lim) = 'number' "      \
    "AND src.lim::numeric BETWEEN 1 AND 2147483647 THEN src.lim::int ELSE $5::int END AS lim "     \
    "FROM src, (VALUES ('stdout', $2::text), ('stderr', $3::text)) AS s (stream, path)), "

/* The artifact of each stream: the oldest with its ref, else a new one as
 * Attune's worker creates it; an existing one gets the visibility,
 * classification and retention the worker would give it. */
#define LOG_ARTIFACTS                                                                              \
    "found AS (SELECT DISTINCT ON (s.stream) s.stream, a.id FROM streams s "                       \
    "JOIN attune.artifact a ON a.ref = s.ref ORDER BY s.stream, a.id), "                           \
    "made AS (INSERT INTO attune.artifact (ref, scope, owner, type, visibility, classification, "  \
    "retention_policy, retention_limit, name, description, content_type) "                         \
    "SELECT s.ref, 'action', s.action_ref, 'file_text', 'private', 'runtime_log', s.policy, "      \
    "s.lim, s.action_ref || ' ' || s.stream, format('Captured %s for action ''%s'' "               \
    "(retention: %s %s)', s.stream, s.action_ref, initcap(s.policy::text), s.lim), "               \
    "'text/plain' FROM streams s WHERE NOT EXISTS (SELECT 1 FROM found f "                         \
    "WHERE f.stream = s.stream) RETURNING id, ref), "                                              \
    "fixed AS (UPDATE attune.artifact a SET visibility = 'private', "                              \
    "classification = 'runtime_log', retention_policy = s.policy, retention_limit = s.lim, "       \
    "updated = NOW() FROM found f JOIN streams s ON s.stream = f.stream WHERE a.id = f.id "        \
    "AND (a.visibility <> 'private' OR a.classification <> 'runtime_log' "                         \
    "OR a.retention_policy <> s.policy OR a.retention_limit <> s.lim)), "                          \
    "arts AS (SELECT f.stream, f.id FROM found f UNION ALL "                                       \
    "SELECT s.stream, m.id FROM made m JOIN streams s ON s.ref = m.ref), "

/* One pending version per stream and execution, numbered after the
 * artifact's last, and its shared_file stream with Attune's default flush
 * limits (artifacts.log_segment_max_bytes, flush_interval_ms). A number a
 * concurrent writer took first inserts nothing: the count says so. */
#define LOG_VERSIONS                                                                               \
    "versions AS (INSERT INTO attune.artifact_version (artifact, version, execution, "             \
    "content_type, file_path, body_state, meta, created_by) SELECT arts.id, "                      \
    "COALESCE((SELECT max(v.version) FROM attune.artifact_version v "                              \
    "WHERE v.artifact = arts.id), 0) + 1, s.execution, 'text/plain', s.path, 'pending', "          \
    "jsonb_build_object('stream', s.stream, 'execution_id', s.execution), 'worker' "               \
    "FROM arts JOIN streams s ON s.stream = arts.stream WHERE NOT EXISTS (SELECT 1 "               \
    "FROM attune.artifact_version v WHERE v.artifact = arts.id AND v.execution = s.execution) "    \
    "ON CONFLICT (artifact, version) DO NOTHING RETURNING id), "                                   \
    "log_streams AS (INSERT INTO attune.log_stream (artifact_version, backend, "                   \
    "max_unflushed_bytes, max_unflushed_milliseconds) SELECT id, 'shared_file', 1048576, 500 "     \
    "FROM versions ON CONFLICT (artifact_version) DO NOTHING) "

/* With the two artifacts known ($4, $5): the versions and streams only. */
#define LOG_KNOWN_VERSIONS                                                                         \
    "WITH versions AS (INSERT INTO attune.artifact_version (artifact, version, execution, "        \
    "content_type, file_path, body_state, meta, created_by) SELECT x.artifact, "                   \
    "COALESCE((SELECT max(v.version) FROM attune.artifact_version v "                              \
    "WHERE v.artifact = x.artifact), 0) + 1, $1, 'text/plain', x.path, 'pending', "                \
    "jsonb_build_object('stream', x.stream, 'execution_id', $1::bigint), 'worker' "                \
    "FROM (VALUES ($4::bigint, 'stdout', $2::text), ($5::bigint, 'stderr', $3::text)) "            \
    "AS x (artifact, stream, path) WHERE NOT EXISTS (SELECT 1 FROM attune.artifact_version v "     \
    "WHERE v.artifact = x.artifact AND v.execution = $1) "                                         \
    "ON CONFLICT (artifact, version) DO NOTHING RETURNING id), "                                   \
    "log_streams AS (INSERT INTO attune.log_stream (artifact_version, backend, "                   \
    "max_unflushed_bytes, max_unflushed_milliseconds) SELECT id, 'shared_file', 1048576, 500 "     \
    "FROM versions ON CONFLICT (artifact_version) DO NOTHING) "

static void on_created(struct db *db, const PGresult *res, const char *error, void *userdata)
{
    struct log_artifacts_call *c = userdata;
    (void)db;
    struct log_artifacts_answer answer = {0};
    if (!error && PQntuples(res) == 1) {
        answer.streams = (int)db_int64(res, 0, 0);
        answer.stdout_artifact = db_int64(res, 0, 1);
        answer.stderr_artifact = db_int64(res, 0, 2);
    }
    c->done.create(error ? NULL : &answer, error, c->userdata);
    free(c);
}

void db_log_artifacts_create(struct db *db, const struct log_artifacts_request *req,
                             db_log_artifacts_fn done, void *userdata)
{
    static const char sql[] =
        "WITH " LOG_SOURCE LOG_ARTIFACTS LOG_VERSIONS
        "SELECT (SELECT count(*) FROM versions) + (SELECT count(*) FROM attune.artifact_version v "
        "JOIN arts ON v.artifact = arts.id WHERE v.execution = $1), "
        "(SELECT id FROM arts WHERE stream = 'stdout'), (SELECT id FROM arts WHERE stream = "
        "'stderr')";
    static const char known_sql[] =
        LOG_KNOWN_VERSIONS "SELECT (SELECT count(*) FROM versions) + (SELECT count(*) "
                           "FROM attune.artifact_version v WHERE v.artifact IN ($4, $5) "
                           "AND v.execution = $1), $4, $5";
    bool known = req->stdout_artifact > 0 && req->stderr_artifact > 0;
    struct db_id_text exec = db_id(req->execution_id), limit = db_id(req->retention_limit),
                      out = db_id(req->stdout_artifact), err = db_id(req->stderr_artifact);
    const char *values[] = {exec.text, req->stdout_path, req->stderr_path,
                            known ? out.text : req->retention_policy,
                            known ? err.text : limit.text};
    struct log_artifacts_call *c = xcalloc(1, sizeof(*c));
    c->done.create = done;
    c->userdata = userdata;
    db_query(db, known ? known_sql : sql, 5, values, on_created, c);
}

/* The probe and the seal: what matters of their answer is whether it is an
 * error. */
static void on_answered(struct db *db, const PGresult *res, const char *error, void *userdata)
{
    struct log_artifacts_call *c = userdata;
    (void)db;
    (void)res;
    c->done.probe(error, c->userdata);
    free(c);
}

void db_log_artifacts_probe(struct db *db, db_log_artifacts_probe_fn done, void *userdata)
{
    /* Names every column and enum value the two statements use; returns no
     * row. */
    static const char sql[] =
        "SELECT a.ref, a.scope, a.owner, a.type, a.visibility, a.classification, "
        "a.retention_policy, a.retention_limit, a.name, a.description, a.content_type, "
        "a.size_bytes, a.updated, av.artifact, av.version, av.execution, av.content_type, "
        "av.file_path, av.body_state, av.meta, av.created_by, av.size_bytes, av.sha256, "
        "ls.artifact_version, ls.backend, ls.max_unflushed_bytes, ls.max_unflushed_milliseconds, "
        "ls.total_bytes, ls.sealed, ls.truncated, ls.sealed_at, ac.log_retention_policy, "
        "ac.log_retention_limit, 'file_text'::attune.artifact_type_enum, "
        "'private'::attune.artifact_visibility_enum, "
        "'runtime_log'::attune.artifact_classification_enum, "
        "'ready'::attune.artifact_body_state_enum, 'shared_file'::attune.log_stream_backend_enum "
        "FROM attune.artifact a, attune.artifact_version av, attune.log_stream ls, "
        "attune.action ac LIMIT 0";
    struct log_artifacts_call *c = xcalloc(1, sizeof(*c));
    c->done.probe = done;
    c->userdata = userdata;
    db_query(db, sql, 0, NULL, on_answered, c);
}

void db_log_artifacts_seal(struct db *db, int64_t execution_id, const char *seal,
                           db_log_artifacts_probe_fn done, void *userdata)
{
    /* The final UPDATE's seal on its own: DB_LOG_SEAL_CTES reads $1 and $5,
     * so $2 to $4 (NULL) are typed where nothing uses them. */
    static const char sql[] =
        "WITH unused AS (SELECT $2::text, $3::text, $4::text), " DB_LOG_SEAL_CTES
        " SELECT count(*) FROM seal";
    struct db_id_text exec = db_id(execution_id);
    const char *values[] = {exec.text, NULL, NULL, NULL, seal};
    struct log_artifacts_call *c = xcalloc(1, sizeof(*c));
    c->done.probe = done;
    c->userdata = userdata;
    db_query(db, sql, 5, values, on_answered, c);
}
