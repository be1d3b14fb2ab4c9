/* The result's error of an execution that ran into a per-execution limit
 * (sandbox.memory_max, sandbox.tasks_max): which limit, where that is known
 * (the cgroup's own counters, or the runtime's words for a refused
 * allocation or fork under rlimits), else the limits in force when the
 * action died of a signal such limits cause. */
#ifndef ATTUNE_EXECUTOR_RESULT_LIMITS_H
#define ATTUNE_EXECUTOR_RESULT_LIMITS_H

#include <jansson.h>

#include "exec/sandbox_limits.h"
#include "executor/executor.h"

/* Rewrites r's "error" in place; does nothing for a completed or cancelled
 * execution, or without limits (l NULL). */
void execution_result_note_limits(json_t *r, enum execution_status status,
                                  const struct sandbox_limits *l,
                                  const struct limits_outcome *outcome);

#endif
