/* What a job makes of its execution before the action starts (see job_inputs.h). */
#include "worker/job_inputs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"
#include "executor/env.h"
#include "exec/params.h"
#include "worker/api_token.h"
#include "worker/secret_params.h"
#include "worker/secret_results.h"
#include "worker/secrets.h"

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

/* execution.env_vars without the variables no action may be given; the
 * worker's log names what was dropped. */
static json_t *job_inputs_env_vars(const struct execution_row *row)
{
    struct strbuf dropped;
    strbuf_init(&dropped);
    json_t *allowed = execution_env_vars_allowed(row->env_vars, &dropped);
    if (dropped.len)
        log_warn("execution %lld: dropped environment variables of execution.env_vars that no "
                 "action may be given: %s (see docs/actions.md)",
                 (long long)row->id, dropped.data);
    strbuf_free(&dropped);
    return allowed;
}

void job_execution_take(struct job_execution *ex, const struct execution_row *row)
{
    job_execution_clear(ex);
    ex->action_ref = xstrdup(row->action_ref);
    ex->config = row->config ? json_deep_copy(row->config) : NULL;
    if (row->config_error)
        ex->config_error = xasprintf("execution config cannot be read: %s", row->config_error);
    else if (row->secret_values_error)
        ex->config_error = xstrdup(row->secret_values_error);
    ex->env_vars = job_inputs_env_vars(row);
    ex->timeout_seconds = row->timeout_seconds;
    ex->action_id = row->action_id;
    ex->pack_release = row->pack_release;
    ex->pack_release_digest = dup_or_null(row->pack_release_digest);
    ex->snapshot = json_incref(row->executable_snapshot);
    if (row->executable_snapshot_error)
        ex->snapshot_error =
            xasprintf("executable_snapshot cannot be read: %s", row->executable_snapshot_error);
    ex->trace_tag = dup_or_null(row->trace_tag);
    ex->rule_ref = dup_or_null(row->rule_ref);
    ex->trigger_ref = dup_or_null(row->trigger_ref);
    ex->secret_names = json_array();
    ex->executor = row->executor;
    ex->permission_set_refs = json_incref(row->permission_set_refs);
    ex->workflow_parent_action_ref = dup_or_null(row->workflow_parent_action_ref);
    ex->secret_paths = secret_results_config_paths(row->secret_values, row->n_secret_values);
}

void job_execution_clear(struct job_execution *ex)
{
    free(ex->action_ref);
    secrets_json_wipe_free(ex->config);
    free(ex->config_error);
    json_decref(ex->env_vars);
    free(ex->pack_release_digest);
    json_decref(ex->snapshot);
    free(ex->snapshot_error);
    free(ex->trace_tag);
    free(ex->rule_ref);
    free(ex->trigger_ref);
    json_decref(ex->secret_names);
    json_decref(ex->permission_set_refs);
    free(ex->workflow_parent_action_ref);
    json_decref(ex->secret_paths);
    memset(ex, 0, sizeof(*ex));
}

bool job_execution_pinned(const struct job_execution *ex)
{
    return ex->pack_release || ex->pack_release_digest || ex->snapshot || ex->snapshot_error;
}

bool job_release_matches(const struct execution_request_msg *msg, int64_t pack_release,
                         const char *pack_release_digest)
{
    /* pack_release 0 is SQL NULL: ids of a BIGSERIAL start at 1. */
    bool ids = msg->has_release_id ? pack_release != 0 && msg->release_id == pack_release
                                   : pack_release == 0;
    bool digests = msg->release_digest && pack_release_digest
                       ? strcmp(msg->release_digest, pack_release_digest) == 0
                       : !msg->release_digest && !pack_release_digest;
    return ids && digests;
}

int job_inputs_check_release(const struct job_execution *ex,
                             const struct execution_request_msg *msg, char *err, size_t errlen)
{
    if (job_release_matches(msg, ex->pack_release, ex->pack_release_digest))
        return 0;
    char msg_id[24] = "none", row_id[24] = "none";
    if (msg->has_release_id)
        snprintf(msg_id, sizeof(msg_id), "%lld", (long long)msg->release_id);
    if (ex->pack_release)
        snprintf(row_id, sizeof(row_id), "%lld", (long long)ex->pack_release);
    return set_error(err, errlen, EINVAL,
                     "the dispatch message names pack release %s (digest %.64s) but the execution "
                     "is pinned to pack release %s (digest %.64s); nothing was run",
                     msg_id, msg->release_digest ? msg->release_digest : "none", row_id,
                     ex->pack_release_digest ? ex->pack_release_digest : "none");
}

int job_inputs_api_token(const struct job_execution *ex, int64_t execution_id, int timeout_seconds,
                         const char *jwt_secret, char **token, char *err, size_t errlen)
{
    struct api_token_request req = {
        .execution_id = execution_id,
        .action_ref = ex->action_ref,
        .identity = ex->executor,
        .permission_set_refs = ex->permission_set_refs,
        .parent_action_ref = ex->workflow_parent_action_ref,
        .timeout_seconds = timeout_seconds,
        .now = (int64_t)time(NULL),
        .secret = jwt_secret,
    };
    return api_token_issue(&req, token, err, errlen);
}

int job_inputs_restore(struct job_execution *ex, const struct execution_row *row,
                       const char *key_string, char *err, size_t errlen)
{
    /* As Attune: an execution without a config has nothing to restore into. */
    if (!ex->config || row->n_secret_values == 0)
        return 0;
    return secret_params_restore(&ex->config, row->secret_values, row->n_secret_values, key_string,
                                 ex->secret_names, err, errlen);
}

/* The schema to validate with: the action's, with every restored parameter
 * marked secret, so that no message quotes its value. */
static json_t *schema_hiding(const json_t *schema, const json_t *names)
{
    json_t *copy = json_deep_copy(schema);
    json_t *props = json_object_get(copy, "properties");
    size_t i;
    const json_t *name;
    json_array_foreach(names, i, name)
    {
        json_t *prop = json_object_get(props, json_string_value(name));
        if (json_is_object(prop))
            json_object_set_new(prop, "secret", json_true());
    }
    return copy;
}

int job_inputs_parameters(const struct job_execution *ex, const struct action *action,
                          json_t **params, char *err, size_t errlen)
{
    *params = NULL;
    if (ex->config_error)
        return set_error(err, errlen, EINVAL, "%s", ex->config_error);
    if (!action->enabled)
        return set_error(err, errlen, EPERM, "action '%s' is disabled (enabled: false)",
                         action->ref);
    /* The config is the parameter map itself; Attune ignores one that is
     * not an object. */
    *params = json_is_object(ex->config) ? json_deep_copy(ex->config) : json_object();
    json_t *schema = schema_hiding(action->param_schema, ex->secret_names);
    int rc = params_validate(*params, schema, err, errlen);
    if (rc == 0)
        rc = params_check_names(*params, schema, action->parameter_format, err, errlen);
    json_decref(schema);
    return rc;
}

void job_inputs_merge_keys(json_t *params, const json_t *values)
{
    const char *name;
    const json_t *value;
    json_object_foreach((json_t *)values, name, value)
    {
        json_object_set_new(params, name, json_deep_copy(value));
    }
}

json_t *job_inputs_hidden(const struct job_execution *ex, const json_t *secrets)
{
    json_t *names = json_deep_copy(ex->secret_names);
    if (!names)
        names = json_array();
    const char *name;
    const json_t *v;
    json_object_foreach((json_t *)secrets, name, v)
    {
        json_array_append_new(names, json_string(name));
    }
    return names;
}
