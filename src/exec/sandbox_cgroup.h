/* The cgroup v2 side of the per-execution limits (sandbox_limits.h): finding
 * a delegated subtree (the worker's own cgroup, writable, with the wanted
 * controllers), moving the worker into a leaf of it, and one child cgroup per
 * execution with its limits, killed and removed when the execution ends. The
 * text parsers are separate so that they can be tested on given text. */
#ifndef ATTUNE_EXEC_SANDBOX_CGROUP_H
#define ATTUNE_EXEC_SANDBOX_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

/* The leaf the worker moves itself into: a cgroup with processes of its own
 * cannot hand controllers to its children (the no-internal-processes rule). */
#define CGROUP_WORKER_LEAF "worker"
/* Prefix of the executions' cgroups; leftovers of an earlier run are killed. */
#define CGROUP_EXEC_PREFIX "exec-"

/* The cgroup v2 path of a process from its /proc/PID/cgroup text (the
 * "0::/PATH" line); NULL when there is none. */
char *cgroup_parse_self(const char *text);

/* Whether every controller of want (space-separated names) is listed in
 * controllers (the text of a cgroup.controllers file). */
bool cgroup_has_controllers(const char *controllers, const char *want);

/* The number after key in a flat-keyed file such as memory.events ("oom_kill
 * 3"); 0 when key is absent. */
int64_t cgroup_event_count(const char *text, const char *key);

/* The controllers that limits need ("memory pids cpu" or fewer). */
void cgroup_wanted_controllers(const struct config_limits *limits, char *out, size_t outlen);

struct cgroup_tree {
    char *dir;  /* the worker's delegated cgroup */
    int dir_fd; /* held open: every execution's cgroup is made below it */
    unsigned next;
};

/* Finds the worker's cgroup v2, checks that it is delegated (not the root,
 * writable, the controllers of want available), moves the worker into its
 * leaf, enables the controllers for the children and removes the executions'
 * cgroups an earlier run left. On failure returns a negative errno and says
 * why in err (the caller falls back on rlimits). */
int cgroup_tree_open(const char *want, struct cgroup_tree *t, char *err, size_t errlen);
void cgroup_tree_close(struct cgroup_tree *t);

/* Creates the cgroup of one execution with limits written into it; *name
 * (to free) and *dir_fd say where it is. */
int cgroup_exec_create(struct cgroup_tree *t, const struct config_limits *limits, char **name,
                       int *dir_fd, char *err, size_t errlen);

/* Why the processes of an execution's cgroup ended, read before it goes. */
struct cgroup_outcome {
    bool oom_killed;   /* memory.events: the OOM killer killed one of them */
    bool tasks_denied; /* pids.events: a fork was refused at pids.max */
};

/* Reads the outcome, kills whatever is left (cgroup.kill) and removes the
 * execution's cgroup; closes dir_fd. */
void cgroup_exec_remove(struct cgroup_tree *t, const char *name, int dir_fd,
                        struct cgroup_outcome *out);

#endif
