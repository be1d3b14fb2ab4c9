/* What a job knows of its execution from the claim, and what it makes of it
 * before the action can start: the release check against the dispatch
 * message, the secret parameters restored into the config, the parameter
 * document (validated, then merged with the key store), the API token. No
 * I/O. */
#ifndef ATTUNE_WORKER_JOB_INPUTS_H
#define ATTUNE_WORKER_JOB_INPUTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/executions.h"
#include "exec/action.h"
#include "mq/envelope.h"

/* The execution as claimed; owned copies. */
struct job_execution {
    char *action_ref;
    json_t *config; /* NULL when the column is NULL; restored secrets included */
    char *config_error;
    json_t *env_vars;
    int timeout_seconds;
    int64_t action_id; /* the action column, else the action loaded; 0 when unknown */
    int64_t pack_release;
    char *pack_release_digest;
    json_t *snapshot;
    char *snapshot_error;
    char *trace_tag, *rule_ref, *trigger_ref;
    json_t *secret_names; /* parameters whose values were restored secrets */
    /* For its API token (worker/api_token.h) */
    int64_t executor; /* 0 when NULL */
    json_t *permission_set_refs;
    char *workflow_parent_action_ref;
    json_t *secret_paths; /* json_path of each secret parameter, sorted */
};

/* Copies the row into ex (what ex held before is released). */
void job_execution_take(struct job_execution *ex, const struct execution_row *row);
/* Releases everything; the config's strings are overwritten first. */
void job_execution_clear(struct job_execution *ex);

/* An execution pinned to a pack release: any of the three columns set. */
bool job_execution_pinned(const struct job_execution *ex);

/* Whether the dispatch message names the release the row is pinned to, as
 * Attune compares them (Option equality: none and none are equal). */
bool job_release_matches(const struct execution_request_msg *msg, int64_t pack_release,
                         const char *pack_release_digest);
/* The same, as an error naming both sides when they differ. */
int job_inputs_check_release(const struct job_execution *ex,
                             const struct execution_request_msg *msg, char *err, size_t errlen);

/* The execution's API token for ATTUNE_API_TOKEN, issued now with the
 * effective timeout: *token NULL when it gets none (free it with jwt_free);
 * fails as Attune does when it has permission sets but no executor. */
int job_inputs_api_token(const struct job_execution *ex, int64_t execution_id, int timeout_seconds,
                         const char *jwt_secret, char **token, char *err, size_t errlen);

/* Restores the row's secret values into ex->config (when it has one). */
int job_inputs_restore(struct job_execution *ex, const struct execution_row *row,
                       const char *key_string, char *err, size_t errlen);

/* The parameter document of an execution whose config is readable and whose
 * action is enabled: every top-level key of the config (none when it is not
 * an object), validated against the action's schema (defaults filled, types
 * checked, undeclared keys kept; a restored value is never quoted). */
int job_inputs_parameters(const struct job_execution *ex, const struct action *action,
                          json_t **params, char *err, size_t errlen);

/* Writes a copy of each key value into params by name, overriding a
 * parameter of the same name. */
void job_inputs_merge_keys(json_t *params, const json_t *values);

/* The names (a new JSON array) of the parameters whose values are secret and
 * so never go to the environment: restored secret values and the keys
 * (secrets: name -> text, may be NULL). The schema's secret parameters are
 * left out of the environment anyway. */
json_t *job_inputs_hidden(const struct job_execution *ex, const json_t *secrets);

#endif
