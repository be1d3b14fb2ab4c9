/* The python fork server as the executor uses it: started for the service
 * (never for run-action) when runtimes.python.fork_server is on, and chosen
 * for a launch only when the zygote can serve it exactly as a cold start. */
#ifndef ATTUNE_EXECUTOR_FORK_ROUTE_H
#define ATTUNE_EXECUTOR_FORK_ROUTE_H

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "core/config.h"
#include "executor/executor.h"
#include "runtime/runtime.h"

/* Starts the zygote into s->fork_server when the configuration asks for it,
 * python is usable and the sandbox is uid or none (userns runs cold: the
 * child would need namespaces of its own); makes the worker a child
 * subreaper when the sandbox has not (for the zygote's double fork, where it
 * cannot fork with CLONE_PARENT). A zygote that cannot start is logged
 * and python actions run cold. */
void executor_fork_server_start(struct executor_settings *s, const struct config *cfg,
                                sd_event *loop);

/* False when the action's pack says `python: {fork_server: false}` in its
 * pack.yaml: its python actions start cold, neither forked nor in a spare. */
bool executor_pack_allows_warm_python(const struct action *action);

/* The fork server for this launch, or NULL to start it cold: the runtime's
 * plain wrapper form on the zygote's interpreter, outside namespaces, an
 * environment whose locale is the zygote's and that sets no PYTHON*
 * variable (read at an interpreter's start), and a pack that does not say
 * `python: {fork_server: false}` in its pack.yaml. */
struct fork_server *executor_fork_route(const struct executor_settings *s, const struct launch *l,
                                        const struct action *action, const struct strv *env,
                                        bool in_namespaces);

#endif
