/* What an action is told about its execution through ATTUNE_* variables, and
 * the execution's own variables (execution.env_vars), as Attune sets them
 * today (ATTUNE-TODAY.md 5.3). */
#ifndef ATTUNE_EXECUTOR_ENV_H
#define ATTUNE_EXECUTOR_ENV_H

#include <jansson.h>
#include <stddef.h>

#include "core/util.h"
#include "executor/executor.h"

/* The prefix Attune keeps for itself: such names in execution.env_vars are
 * ignored. */
#define EXECUTION_ENV_RESERVED "ATTUNE_"

/* execution.env_vars must be absent (NULL) or an object of strings; anything
 * else fails the execution: returns -EINVAL with Attune's message in err. */
int execution_env_vars_check(const json_t *env_vars, char *err, size_t errlen);

/* A new reference to env_vars without the names core/env_policy.h denies
 * (BASH_ENV, LD_PRELOAD...), each appended to dropped as "NAME, NAME". A
 * value that is not a string is kept, so that execution_env_vars_check still
 * fails the execution for it. */
json_t *execution_env_vars_allowed(const json_t *env_vars, struct strbuf *dropped);

/* Sets each variable of a checked env_vars in env, except reserved names,
 * denied names and names no environment can hold (empty, or with '='). */
void execution_env_set_vars(struct strv *env, const json_t *env_vars);

/* ATTUNE_CONTEXT_ and the key in upper case (ASCII letters; '=' becomes '_'). */
char *execution_env_context_name(const char *key);
/* A context value as text: a string as it is, a number or boolean as its JSON
 * text, anything else as compact JSON with sorted keys. */
char *execution_env_context_value(const json_t *v);

/* The ATTUNE_* variables that describe the execution (id, action, pack,
 * API URL, runtime environments, release, trace tag, rule, trigger, API
 * token and context); the parameter and artifact variables are the
 * executor's. */
void execution_env_set_attune(struct strv *env, const struct executor_settings *s,
                              const struct execution_request *req);

#endif
