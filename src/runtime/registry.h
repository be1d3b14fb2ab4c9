/* The runtime registry: the one list of runtime names, the checks of names
 * given in actions and in the configuration, finding each runtime's
 * interpreter on the actions' PATH at start-up (and its version, for the
 * worker's capabilities), and picking the runtime for an action (local
 * actions by the entry point's extension). native is always available and
 * is not one of the runtimes worker.runtimes chooses. */
#ifndef ATTUNE_RUNTIME_REGISTRY_H
#define ATTUNE_RUNTIME_REGISTRY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"
#include "exec/action.h"
#include "runtime/runtime.h"

/* The PATH actions get unless worker.env sets one. */
#define RUNTIME_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct registry {
    struct runtime *runtimes[4];
    size_t count;
};

/* Validates the runtimes named in wanted (NULL-terminated; NULL for all),
 * looking interpreters up on search_path. A runtime named in wanted that does
 * not validate is an error; with wanted NULL it is just left out. */
int registry_init(struct registry *reg, char *const *wanted, const char *search_path, char *err,
                  size_t errlen);
void registry_free(struct registry *reg);

/* The runtime name for the name of a runtime row in the database, which
 * Attune deployments also spell "Python", "python3", "nodejs", "Node.js",
 * "bash", "sh", "builtin" or "standalone": known names and these aliases
 * match whatever their case; NULL or "" is "local"; any other name comes
 * back unchanged. */
const char *registry_runner_name(const char *runtime_row_name);

/* Whether an ad-hoc action (Attune's is_adhoc) of this runner type holds its
 * code in its entry point, as Attune's worker runs it: the shell runtime's. */
bool registry_adhoc_is_inline(const char *runner_type);

/* Checks that the action's runner type names a runtime, after the definition
 * itself was loaded: -EINVAL and "unknown runner_type 'X' (expected shell,
 * python, node, local or native)", preceded by "FILE: " when the action was
 * read from a file. */
int registry_check_runner(const struct action *action, char *err, size_t errlen);

/* Checks that each of names (NULL-terminated; NULL for all) is a runtime:
 * -EINVAL and 'worker.runtimes: unknown runtime "X" (known: ...)'. */
int registry_check_names(char *const *names, char *err, size_t errlen);

/* The check the programs make once the configuration is loaded: on unknown
 * runtime names prints "PROGRAM: configuration error: ..." to stderr and
 * returns CONFIG_EXIT_STATUS; else 0. */
int registry_check_config(const struct config *cfg, const char *program);

/* The runtime name registry_select would look for: the runner type, or for
 * local the one the entry point's extension names ("local" for others).
 * Lets a one-shot run validate only the runtime it needs. */
const char *registry_runtime_name(const struct action *action);

/* The usable runtimes' names, comma-separated, e.g. "shell,python,node,local". */
void registry_describe(const struct registry *reg, struct strbuf *out);

/* The runtime for this action: runner_type, and for local the entry point's
 * extension (.sh, .py, .js) or an executable file. Ad-hoc code
 * (action->inline_code) needs the shell runtime: -EINVAL otherwise. */
int registry_select(const struct registry *reg, const struct action *action,
                    const struct runtime **out, char *err, size_t errlen);

/* Starts asking each usable interpreter that has a version to advertise
 * (python3, node) for it: `--version`, all at once, while start-up goes on. */
void registry_start_version_probes(struct registry *reg);
/* Collects those answers (starting any probe not started), at most
 * timeout_ms each; one that fails is left without. Once, for registration at
 * start, before any action runs. */
void registry_detect_versions(struct registry *reg, int timeout_ms);

/* capabilities.runtimes: the usable runtimes by the names Attune's scheduler
 * matches ("shell", "python", "node" and "node.js"), and "native" always. */
json_t *registry_capability_runtimes(const struct registry *reg);

/* capabilities.runtime_versions: {"python": ["3.11.2"], "node": [...]} for
 * the versions registry_detect_versions found. */
json_t *registry_capability_versions(const struct registry *reg);

/* The execution_config of the runtime version Attune's worker would run an
 * action with (runtime_version.h), among versions (the runtime_version rows
 * of the action's runtime as a JSON array) for constraint (the action's
 * runtime_version_constraint, NULL for none), keeping only what this worker
 * advertises for runtime_name (a registry name: "python", "node"...).
 * Returns a borrowed object of versions, or NULL: the runtime row's own
 * execution_config applies. */
const json_t *registry_version_config(const struct registry *reg, const char *runtime_name,
                                      const json_t *versions, const char *constraint);

#endif
