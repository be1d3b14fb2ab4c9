/* The execution table as the worker uses it: the guarded claim, the look-up
 * and resumption after a lost reply, the guarded final update and its
 * verification, and the crash-recovery pass over rows a dead run left
 * `running`. Rows are borrowed: valid during the callback only. */
#ifndef ATTUNE_DB_EXECUTIONS_H
#define ATTUNE_DB_EXECUTIONS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "db/actions.h"
#include "db/db.h"
#include "db/keys.h"
#include "db/secret_values.h"

/* An execution this worker has just claimed (or resumed), with what the
 * action needs to know of its enforcement, its secret parameters, its
 * workflow parent, its action row and the keys that action may see, all
 * read in the same round trip. */
struct execution_row {
    int64_t id;
    const char *previous_status; /* before the claim: requested, scheduling or scheduled */
    const char *action_ref;
    json_t *config;           /* NULL when the column is NULL or does not parse */
    const char *config_error; /* why config did not parse, NULL when it did */
    int timeout_seconds;      /* 0 when NULL */
    json_t *env_vars;         /* NULL when NULL */
    int64_t action_id;        /* the action column, 0 when NULL */
    /* The pinned release: all NULL (0) for an execution that is not pinned. */
    int64_t pack_release;
    const char *pack_release_digest;
    json_t *executable_snapshot;           /* NULL when NULL or it does not parse */
    const char *executable_snapshot_error; /* why it did not parse */
    const char *trace_tag;                 /* NULL when NULL */
    /* The enforcement's rule_ref and trigger_ref; NULL without one. */
    const char *rule_ref;
    const char *trigger_ref;
    /* The rows of execution_secret_value for its config (entity_type
     * execution_config), in id order. */
    const struct secret_value_row *secret_values;
    size_t n_secret_values;
    const char *secret_values_error; /* they could not be read */
    /* What its API token is made of (ATTUNE-TODAY 7): the triggering
     * identity, the permission sets, and for a workflow task (workflow_task
     * set) its parent's action_ref. */
    int64_t executor;                       /* 0 when NULL */
    json_t *permission_set_refs;            /* an array of strings */
    const char *workflow_parent_action_ref; /* NULL when none */
    /* The action row whose ref is action_ref: NULL when no action has that
     * ref. */
    const struct action_row *action;
    /* When keys_read (asked for, and the action exists): the keys of
     * db_keys_for_action(action->pack_id, action->id); keys_error when they
     * could not be read. */
    bool keys_read;
    const struct key_row *keys;
    size_t n_keys;
    const char *keys_error;
};

/* Who holds an execution now, and what a report about it needs. */
struct execution_owner {
    const char *status;
    int64_t worker_id; /* 0 when none */
    const char *action_ref;
    int64_t action_id;    /* 0 when NULL */
    json_t *result;       /* NULL when NULL */
    int64_t pack_release; /* 0 when NULL */
    const char *pack_release_digest;
};

/* An execution a dead run left running, now recorded abandoned. */
struct abandoned_row {
    int64_t id;
    const char *action_ref;
    int64_t action_id; /* 0 when none */
    json_t *result;
};

/* row NULL and error NULL: nothing matched. */
typedef void (*db_execution_fn)(const struct execution_row *row, const char *error, void *userdata);
typedef void (*db_owner_fn)(const struct execution_owner *owner, const char *error, void *userdata);
/* changed: rows the statement changed (or, for a check, 1 when it holds). */
typedef void (*db_changed_fn)(long changed, const char *error, void *userdata);
typedef void (*db_abandoned_fn)(const struct abandoned_row *rows, size_t count, const char *error,
                                void *userdata);

/* Moves the execution to running under worker_id, only from requested,
 * scheduling or scheduled, in one guarded statement, which also reads its
 * action and, with_keys, that action's keys. */
void db_execution_claim(struct db *db, int64_t id, int64_t worker_id, bool with_keys,
                        db_execution_fn done, void *userdata);
/* The execution's status, worker, action and result, for a claim that
 * matched nothing. */
void db_execution_owner(struct db *db, int64_t id, db_owner_fn done, void *userdata);
/* The execution again, if it is running under worker_id (the reply to our own
 * claim was lost); previous_status reads "scheduled". The same row as the
 * claim's, action and keys included. */
void db_execution_resume(struct db *db, int64_t id, int64_t worker_id, bool with_keys,
                         db_execution_fn done, void *userdata);
/* Writes the final status and result, only while running or canceling, and
 * in the same statement (so only when that update applies) the result's
 * secret values: secrets is NULL or an array of objects holding json_path,
 * source_kind, source_ref, encrypted_value and encryption_key_hash, each
 * upserted into execution_secret_value as entity_type execution_result of
 * this execution. With logs (NULL: none), the same statement seals the
 * execution's log rows (DB_LOG_SEAL_CTES in log_artifacts.h says what logs
 * holds). */
void db_execution_finish(struct db *db, int64_t id, const char *status, const json_t *result,
                         const json_t *secrets, const json_t *logs, db_changed_fn done,
                         void *userdata);
/* 1 when the row holds exactly this status and result (a finish whose reply
 * was lost went through), else 0. */
void db_execution_check_finished(struct db *db, int64_t id, const char *status,
                                 const json_t *result, db_changed_fn done, void *userdata);
/* Records abandoned every execution still running under worker_id. */
void db_execution_abandon_stale(struct db *db, int64_t worker_id, const char *error_text,
                                db_abandoned_fn done, void *userdata);

#endif
