/* The result of an execution that ran: its status, and the object stored in
 * execution.result, built from what the process did, with the keys and texts
 * of Attune today (ATTUNE-TODAY.md 5.6, 5.7) next to this worker's own. */
#ifndef ATTUNE_EXECUTOR_RESULT_H
#define ATTUNE_EXECUTOR_RESULT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "exec/action.h"
#include "exec/process.h"
#include "executor/executor.h"
#include "runtime/runtime.h"

/* A python/node wrapper's answer larger than this is cut (and fails). */
#define EXECUTION_REPLY_MAX (16u << 20)

struct result_input {
    const char *dir; /* the execution's directory: artifacts_dir, stderr_log */
    enum output_format output_format;
    int timeout_seconds;
    const struct proc_result *proc;
    const json_t *reply;     /* the wrapper's answer; NULL if none */
    const char *stdout_text; /* the logs as kept, valid UTF-8 */
    const char *stderr_text;
    /* stdout with the masked secrets put back, for parsing into data; NULL:
     * stdout_text. The data is masked again after the result filter. */
    const char *stdout_parse_text;
    bool stdout_truncated, stderr_truncated;
    int64_t stdout_dropped, stderr_dropped;
    bool logs_incomplete; /* some output was lost rather than capped */
};

/* The wrapper's answer ({"data": ...} or {"error": "..."}); NULL if there is
 * none. An answer that does not decode becomes an error of its own. */
json_t *execution_reply_parse(launch_decode_fn decode, const struct proc_result *pr);

enum execution_status execution_result_status(const struct proc_result *pr, const json_t *reply);

/* The result object for an execution that ended with status. */
json_t *execution_result_new(const struct result_input *in, enum execution_status status);

/* `error` after a non-zero exit, as Attune words it: stderr when it has at
 * most 5 lines, else its last line; "Command exited with code N" when it is
 * empty. */
char *execution_exit_error(const char *stderr_text, int exit_code);

#endif
