/* The settings every execution of a worker shares, built from the
 * configuration in one place for the service and for run-action. */
#ifndef ATTUNE_EXECUTOR_SETTINGS_H
#define ATTUNE_EXECUTOR_SETTINGS_H

#include <stddef.h>

#include "core/config.h"
#include "executor/executor.h"
#include "runtime/registry.h"

/* Fills s from cfg: the base environment (PATH, HOME, LANG, then worker.env),
 * runtime_envs_dir, the API URL (executor_api_url), the output caps, the kill
 * grace, and reg with the runtimes named in wanted_runtimes (NULL-terminated;
 * NULL for every one that validates) looked up on the base environment's PATH.
 * The spawn hooks are left as they are. On failure returns a negative errno
 * with the reason in err. Either way s is released with executor_settings_free
 * and reg with registry_free. */
int executor_settings_init(struct executor_settings *s, struct registry *reg,
                           const struct config *cfg, char *const *wanted_runtimes, char *err,
                           size_t errlen);
void executor_settings_free(struct executor_settings *s);

/* Says which sandbox runs the executions, and in uid mode kills whatever
 * still runs on a uid of sandbox.uid_range that no live worker holds (left by
 * a worker killed earlier), logging how much. The service calls it once at
 * start. */
void executor_settings_sweep_leftovers(const struct executor_settings *s);

/* What the service does once at start, before any execution: the sweep
 * above, then the python fork server (executor/fork_route.h) and the spare
 * processes (worker.spare_processes, executor/spares.h), which start once
 * loop runs, with the spawn and uid hooks set by then. */
void executor_settings_service_start(struct executor_settings *s, const struct config *cfg,
                                     sd_event *loop);

/* The URL actions reach Attune's API by: url with a listening address
 * (0.0.0.0, [::]) made 127.0.0.1, as Attune does. */
char *executor_api_url(const char *url);

#endif
