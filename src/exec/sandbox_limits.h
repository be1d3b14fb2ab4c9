/* Per-execution resource limits (sandbox.memory_max, sandbox.tasks_max,
 * sandbox.cpu_max; docs/configuration.md, "Resource limits"): through a child
 * cgroup v2 of each execution where the worker was delegated a subtree, else
 * through the rlimits that apply, set by the spawned child on itself. */
#ifndef ATTUNE_EXEC_SANDBOX_LIMITS_H
#define ATTUNE_EXEC_SANDBOX_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>

#include "core/config.h"

enum limits_backend {
    LIMITS_NONE,   /* no limit set */
    LIMITS_RLIMIT, /* RLIMIT_DATA per process, RLIMIT_NPROC per uid; no cpu */
    LIMITS_CGROUP, /* memory.max, pids.max, cpu.max of the execution's cgroup */
};

#define SPAWN_RLIMITS_MAX 2

/* What the spawned child applies to itself before anything else of it runs
 * (exec/spawn.c), with raw system calls only. */
struct spawn_limits {
    int cgroup_procs_fd; /* >= 0: the child writes "0" to it, joining that cgroup */
    int n_rlimits;
    struct {
        int resource;
        struct rlimit lim;
    } rlimits[SPAWN_RLIMITS_MAX];
};

/* Async-signal-safe, for the CLONE_VM child: returns 0, or -1 with errno. */
int spawn_limits_apply(const struct spawn_limits *l);

struct sandbox_limits;

/* Decides how the configured limits are enforced and logs it once (with a
 * warning for each limit this host cannot enforce per execution). Sets *out
 * to NULL when no limit is set. Returns 0 or a negative errno with err set. */
int sandbox_limits_new(const struct config *cfg, struct sandbox_limits **out, char *err,
                       size_t errlen);
void sandbox_limits_free(struct sandbox_limits *l);

enum limits_backend sandbox_limits_backend(const struct sandbox_limits *l);

/* What one execution holds. */
struct limits_slot {
    char *cgroup_name; /* NULL without a cgroup */
    int cgroup_fd;
    struct spawn_limits spawn; /* for proc_spec.limits */
};

/* What an execution that ended ran into, where that can be known. */
struct limits_outcome {
    bool memory_exceeded; /* the cgroup's OOM killer killed one of its tasks */
    bool tasks_exceeded;  /* a fork was refused at pids.max */
};

/* Prepares an execution's limits (its cgroup, its rlimits). A NULL l leaves
 * slot empty. */
int sandbox_limits_enter(struct sandbox_limits *l, struct limits_slot *slot, char *err,
                         size_t errlen);

/* Once the execution's process is gone: what it ran into (out may be NULL),
 * then its cgroup killed and removed. Safe on an empty slot. */
void sandbox_limits_leave(struct sandbox_limits *l, struct limits_slot *slot,
                          struct limits_outcome *out);

/* The limits in force, in words, for a result's error ("sandbox.memory_max
 * 256 MiB per process, sandbox.tasks_max 20"); NULL when none. */
char *sandbox_limits_describe(const struct sandbox_limits *l);

/* The memory limit as a result's error names it ("sandbox.memory_max (256
 * MiB)"); NULL when memory is unlimited. */
char *sandbox_limits_memory_text(const struct sandbox_limits *l);
/* The same for tasks ("sandbox.tasks_max (20)"). */
char *sandbox_limits_tasks_text(const struct sandbox_limits *l);

#endif
