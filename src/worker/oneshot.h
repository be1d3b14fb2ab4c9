/* `attune-worker run-action`: one action run here and now, with no database
 * or broker, its result object printed as JSON. */
#ifndef ATTUNE_WORKER_ONESHOT_H
#define ATTUNE_WORKER_ONESHOT_H

#include "core/config.h"
#include "core/util.h"

/* Exit statuses of run-action (and of `attunectl run --wait`). */
#define ONESHOT_EXIT_COMPLETED 0
#define ONESHOT_EXIT_FAILED 1
#define ONESHOT_EXIT_USAGE 2
#define ONESHOT_EXIT_TIMEOUT 124

struct oneshot_options {
    const char *packs_dir; /* NULL: the configured packs_base_dir */
    const char *action_ref;
    const char *params_json;   /* NULL or a JSON object */
    char **assignments;        /* NAME=VALUE, NULL-terminated */
    const char *secrets_file;  /* NULL or a JSON/YAML mapping */
    int timeout_seconds;       /* 0: the action's, else worker.task_timeout */
    const char *artifacts_dir; /* NULL: worker.artifacts_dir */
};

/* Runs the action and prints the result; returns the exit status. */
int oneshot_run(const struct config *cfg, const struct oneshot_options *opts);

#endif
