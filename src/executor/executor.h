/* One execution from validated parameters to result object: chooses the
 * runtime, lays out the execution's artifact directory, delivers parameters
 * and secrets, supervises the process and builds the result (result.h; also
 * written to result.json). Shared by run-action and the service. */
#ifndef ATTUNE_EXECUTOR_EXECUTOR_H
#define ATTUNE_EXECUTOR_EXECUTOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "core/util.h"
#include "exec/action.h"
#include "runtime/registry.h"

enum execution_status {
    EXECUTION_COMPLETED,
    EXECUTION_FAILED,
    EXECUTION_TIMEOUT,
    EXECUTION_CANCELLED,
};

const char *execution_status_name(enum execution_status status);

struct executor_settings {
    const struct registry *registry;
    struct strv base_env;   /* PATH, HOME, LANG and worker.env */
    char *runtime_envs_dir; /* where packs' runtime environments live */
    int64_t max_stdout_bytes;
    int64_t max_stderr_bytes;
    uint64_t kill_grace_ms;
    char *api_url;                 /* ATTUNE_API_URL: where actions reach Attune's API */
    bool log_digests;              /* keep each log's SHA-256 (execution_log_digest) */
    struct sandbox *sandbox;       /* NULL: actions run as the worker (sandbox.mode none) */
    struct sandbox_limits *limits; /* NULL: no limit set */
    /* NULL: python actions start cold (executor/fork_route.h) */
    struct fork_server *fork_server;
    /* Told when an action's process group starts and when it is gone. */
    void (*on_spawn)(pid_t pgid, void *userdata);
    void (*on_reap)(pid_t pgid, void *userdata);
    void *hook_userdata;
    /* Spare processes executions may start in (executor/spares.h); NULL:
     * every execution starts its interpreter cold. */
    struct spare_pool *spares;
};

struct execution_request {
    const char *exec_id; /* ATTUNE_EXEC_ID */
    /* This execution's directory, {artifacts_root}/{artifacts_worker}/{exec_id},
     * created here below a descriptor of the root, never through a symlink;
     * it must not exist yet. */
    const char *artifacts_dir;
    const char *artifacts_root;   /* checked at start: artifacts_root_check */
    const char *artifacts_worker; /* the worker's directory under the root */
    const struct action *action;  /* borrowed until done */
    const json_t *params;         /* validated */
    const json_t *secrets;        /* name -> string; may be NULL */
    const json_t *env_vars;       /* execution.env_vars: NULL or an object of strings */
    /* Names (a JSON array) of parameters whose values are secret: keys, restored
     * secret values, parameters the schema marks secret. Never put in the
     * environment. May be NULL. */
    const json_t *hidden_params;
    int timeout_seconds; /* > 0 */
    /* What Attune tells an action about its execution (ATTUNE_* variables);
     * each may be NULL. */
    const json_t *context;           /* config.context: ATTUNE_CONTEXT_<KEY> */
    const char *pack_release_digest; /* ATTUNE_PACK_RELEASE_DIGEST */
    const char *trace_tag;           /* ATTUNE_TRACE_TAG */
    const char *rule_ref;            /* ATTUNE_RULE (from the enforcement) */
    const char *trigger_ref;         /* ATTUNE_TRIGGER */
    const char *api_token;           /* ATTUNE_API_TOKEN: a credential, never logged */
    /* Called once with the result and the status before the result is
     * written to result.json and done is called; may change both in place
     * (the service masks secret values here). NULL: none. */
    void (*result_filter)(json_t *result, enum execution_status *status, void *userdata);
    void *result_filter_userdata;
};

struct execution;
typedef void (*execution_done_fn)(struct execution *ex, void *userdata);

/* Starts the execution on the loop; done is called once with the result
 * ready. On failure before the process started (execution.env_vars that is
 * not an object of strings, say), returns a negative errno with the reason in
 * err and calls nothing. */
int execution_start(sd_event *loop, const struct executor_settings *settings,
                    const struct execution_request *req, execution_done_fn done, void *userdata,
                    struct execution **out, char *err, size_t errlen);

enum execution_status execution_get_status(const struct execution *ex);
/* The result object (borrowed; valid until execution_free). */
json_t *execution_get_result(const struct execution *ex);
pid_t execution_pid(const struct execution *ex);
/* Whether the action's process was started: a python action's is forked by
 * the fork server after execution_start returns, and a cancel (or shutdown)
 * that comes first ends the execution with nothing of it started. */
bool execution_started(const struct execution *ex);

/* What a finished execution's log file holds (stdout, or stderr when
 * is_stderr): its size, SHA-256 (lowercase hex) and whether output was cut.
 * False unless settings.log_digests was set and every write succeeded. */
struct execution_log_digest {
    int64_t size;
    char sha256[65];
    bool truncated;
};
bool execution_log_digest(const struct execution *ex, bool is_stderr,
                          struct execution_log_digest *out);
/* Cancels the action: its process group gets SIGTERM, then SIGKILL grace_ms
 * later (0: the settings' kill grace); it ends cancelled. */
void execution_cancel(struct execution *ex, uint64_t grace_ms);
void execution_free(struct execution *ex);

/* Builds a result object for an execution that never started (bad
 * parameters, a missing entry point...): succeeded false and the error. */
json_t *execution_failure_result(const char *error);

/* Parses captured stdout by output format, as Attune does (json: the whole
 * text, else its last line; yaml: the document; jsonl: an array of the lines
 * that parse). Returns a new reference, or NULL when the output is blank or
 * does not parse (jsonl: no line parses). */
json_t *execution_parse_output(const char *text, size_t len, enum output_format format);

#endif
