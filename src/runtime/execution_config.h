/* The launch a runtime row's execution_config describes (ATTUNE-TODAY 3.9,
 * 5.5): the interpreter (the pack environment's interpreter_path when that
 * environment exists, else interpreter.binary looked up on the actions'
 * PATH), interpreter.args, the templates {pack_dir}, {env_dir},
 * {interpreter}, {manifest_path} and {action_file}, and env_vars with their
 * set/prepend/append operations. */
#ifndef ATTUNE_RUNTIME_EXECUTION_CONFIG_H
#define ATTUNE_RUNTIME_EXECUTION_CONFIG_H

#include <jansson.h>

#include "core/util.h"
#include "runtime/runtime.h"

/* The values of the templates; a NULL one is left as written, as Attune
 * leaves a variable it has no value for. */
struct execution_config_vars {
    const char *pack_dir;
    const char *env_dir;       /* NULL: the definition has no environment */
    const char *interpreter;   /* the interpreter's path */
    const char *manifest_path; /* NULL: the definition has no dependencies */
    const char *action_file;   /* NULL: ad-hoc code */
};

/* template with each {name} that has a value replaced, in one pass (a
 * value's own braces stay as they are). Returns a new string. */
char *execution_config_expand(const char *tmpl, const struct execution_config_vars *vars);

/* Adds NAME=VALUE to out for each entry of env_vars (an object; anything
 * else adds nothing). A string value is set; an object
 * {"value", "operation": "set|prepend|append", "separator" (":")} is joined
 * with the variable's value in current (when both are non-empty). Names
 * starting with ATTUNE_ are reserved and skipped, as are entries of another
 * shape or operation. */
void execution_config_env(const json_t *env_vars, const struct execution_config_vars *vars,
                          const struct strv *current, struct strv *out);

/* Starts out with the interpreter in->action->runtime_config names (as path
 * and argv[0]) and its expanded interpreter.args, and fills out->config_env.
 * Without interpreter.binary, rt's built-in interpreter is used. A binary
 * that cannot be found gives -ENOENT and "runtime NAME: interpreter BINARY
 * not found". */
int execution_config_launch(const struct runtime *rt, const struct launch_input *in,
                            struct launch *out, char *err, size_t errlen);

/* Starts a launch with its interpreter: the one the action's runtime
 * definition names, with that definition's arguments and env_vars
 *, or else rt's built-in interpreter. */
int runtime_launch_interpreter(const struct runtime *rt, const struct launch_input *in,
                               struct launch *out, char *err, size_t errlen);

#endif
