/* Attune's rows for an execution's stdout and stderr (ATTUNE-TODAY 5.8): per
 * stream an artifact "{action_ref}.{stream}.log" (found by ref, else
 * created), a pending artifact_version pointing at the log file, and a
 * shared_file log_stream; sealed with the file's size and SHA-256 by the
 * final UPDATE of the execution (DB_LOG_SEAL_CTES in db_execution_finish). */
#ifndef ATTUNE_DB_LOG_ARTIFACTS_H
#define ATTUNE_DB_LOG_ARTIFACTS_H

#include <stdint.h>

#include "db/db.h"

struct log_artifacts_request {
    int64_t execution_id;
    const char *stdout_path; /* artifact_version.file_path: relative to artifacts_dir */
    const char *stderr_path;
    /* The retention of an action that sets none (neither its row nor, for a
     * pinned execution, its snapshot). */
    const char *retention_policy; /* versions, days, hours or minutes */
    int retention_limit;
    /* The two artifacts when an earlier answer named them (0: find or make
     * them): only the versions and streams are written then, by a statement
     * far cheaper to plan. */
    int64_t stdout_artifact, stderr_artifact;
};

struct log_artifacts_answer {
    /* How many of the two streams have their rows once the statement is
     * over: fewer than 2 after a version number taken by a concurrent
     * writer (send it again). */
    int streams;
    int64_t stdout_artifact, stderr_artifact; /* 0 when none */
};

/* error NULL: answer holds what the statement did (borrowed). */
typedef void (*db_log_artifacts_fn)(const struct log_artifacts_answer *answer, const char *error,
                                    void *userdata);

/* Creates what is missing of the execution's rows, in one statement that is
 * safe to repeat. With the artifacts named, an artifact that is gone makes
 * it fail (a foreign key): send it again without them. */
void db_log_artifacts_create(struct db *db, const struct log_artifacts_request *req,
                             db_log_artifacts_fn done, void *userdata);

/* error NULL: the database has every table, column and enum value the rows
 * need. */
typedef void (*db_log_artifacts_probe_fn)(const char *error, void *userdata);
void db_log_artifacts_probe(struct db *db, db_log_artifacts_probe_fn done, void *userdata);

/* Seals the execution's logs as its final UPDATE does (seal: the JSON text
 * described below), for rows made after that UPDATE. */
void db_log_artifacts_seal(struct db *db, int64_t execution_id, const char *seal,
                           db_log_artifacts_probe_fn done, void *userdata);

/* Common table expressions for the execution's final UPDATE: with $1 the
 * execution id and $5 a JSON object (or NULL: none) {"stdout"|"stderr": {"path", "size",
 * "sha256", "truncated"}}, they seal each pending log of the execution at
 * that path as Attune's API seals a shared-file log: log_stream total_bytes,
 * sealed, truncated, sealed_at; artifact_version ready with size_bytes and
 * sha256; artifact size_bytes. What is already sealed is left alone. */
#define DB_LOG_SEAL_CTES                                                                           \
    "seal AS (SELECT av.id, av.artifact, (s.value ->> 'size')::bigint AS size, "                   \
    "s.value ->> 'sha256' AS sha256, (s.value ->> 'truncated')::boolean AS truncated "             \
    "FROM jsonb_each($5::jsonb) s JOIN attune.artifact_version av ON av.execution = $1 "           \
    "AND av.file_path = s.value ->> 'path' WHERE av.body_state = 'pending' AND EXISTS "            \
    "(SELECT 1 FROM attune.log_stream ls WHERE ls.artifact_version = av.id AND NOT ls.sealed)), "  \
    "sealed_logs AS (UPDATE attune.log_stream ls SET total_bytes = seal.size, sealed = true, "     \
    "truncated = ls.truncated OR seal.truncated, sealed_at = COALESCE(ls.sealed_at, NOW()) "       \
    "FROM seal WHERE ls.artifact_version = seal.id), "                                             \
    "ready_logs AS (UPDATE attune.artifact_version av SET body_state = 'ready', "                  \
    "size_bytes = seal.size, sha256 = seal.sha256 FROM seal WHERE av.id = seal.id), "              \
    "sized_logs AS (UPDATE attune.artifact a SET size_bytes = seal.size, updated = NOW() "         \
    "FROM seal WHERE a.id = seal.artifact)"

#endif
