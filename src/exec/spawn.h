/* Starting a child in-process without fork's copy of the parent: a clone
 * sharing memory (CLONE_VM | CLONE_VFORK) that sets up its descriptors,
 * session, credentials and signals with async-signal-safe calls only, then
 * executes the program. What posix_spawn does, plus the uid change and the
 * new namespaces (with their mounts) it cannot make. */
#ifndef ATTUNE_EXEC_SPAWN_H
#define ATTUNE_EXEC_SPAWN_H

#include <sched.h>
#include <stdbool.h>
#include <sys/types.h>

struct spawn_limits; /* exec/sandbox_limits.h */
/* One step of a new mount namespace's set-up, made by the child before it
 * executes anything. A folder that a later mount covers (/tmp, say) is
 * taken first as a detached copy (open_tree) and attached where it was
 * afterwards: a descriptor opened before the clone would belong to the
 * worker's mount namespace, which the child may not bind from. */
enum spawn_mount_op {
    SPAWN_MOUNT,       /* mount(source, target, fstype, flags, data) */
    SPAWN_TREE_OPEN,   /* detached copy of the tree at source, as tree number `tree` */
    SPAWN_TREE_ATTACH, /* tree number `tree` at target; read-only (all of it) if readonly */
    SPAWN_READONLY,    /* every mount from target down made read-only */
};

#define SPAWN_TREES_MAX 8

struct spawn_mount {
    enum spawn_mount_op op;
    const char *source;
    const char *target;
    const char *fstype;
    unsigned long flags;
    const char *data;
    int tree;
    bool readonly;
    bool mkdir;    /* mkdir -p target first */
    bool optional; /* a missing source or target is skipped */
};

#define SPAWN_NS_FLAGS (CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC)

struct spawn_ns {
    int clone_flags;
    const char *uid_map, *gid_map; /* "INSIDE OUTSIDE 1" */
    const struct spawn_mount *mounts;
    int n_mounts;
    const char *exec_check;
    /* Non-NULL: the namespace's first process starts the program as its
     * child (PID 2, leading a process group of its own, without status_fd),
     * then executes init_path with the arguments STATUS_FD ACTION_PID and
     * only status_fd open; the init's exec runs beside the program's start
     * rather than before it. */
    const char *init_path;
    int status_fd;
};

/* One descriptor the child gets: src becomes dst (close when src < 0). */
struct spawn_fd {
    int src, dst;
};

struct spawn_req {
    const char *path;
    char *const *argv;
    char *const *envp;
    const char *cwd; /* NULL: the parent's */
    const struct spawn_fd *fds;
    int n_fds;
    int close_from; /* every descriptor from here up is closed */
    /* Non-zero: the child drops to this uid and gid, with no other group. */
    uid_t uid;
    gid_t gid;
    /* NULL: none. Applied first (cgroup, rlimits), while still privileged. */
    const struct spawn_limits *limits;
    const struct spawn_ns *ns; /* NULL: the worker's namespaces */
};

/* Starts the child in a new session (it leads its own process group), with
 * default signal dispositions, an empty signal mask, no_new_privs, and
 * SIGKILL as its parent-death signal. Returns 0 with *pid set, or a negative
 * errno saying why the child could not be set up or executed (it is reaped
 * then). */
int spawn_process(const struct spawn_req *req, pid_t *pid);

/* Sends SIGKILL to every process of uid (not the caller's): a short-lived
 * helper takes that uid and signals all it may signal, twice. Whether any
 * survived (forked meanwhile) is for the caller to check. Returns 0 or a
 * negative errno. */
int spawn_kill_uid(uid_t uid);

/* The same, only when uid holds more than known processes (zombies count),
 * which the helper learns from the kernel's per-uid count without reading
 * /proc. Returns 0 when it held no more (nothing was signalled), 1 when it
 * did and got SIGKILL, or a negative errno. */
int spawn_kill_uid_extra(uid_t uid, int known);

/* Whether this process can start a child in new user, PID, mount and IPC
 * namespaces that maps its uid and mounts a /proc: 0, or the negative errno
 * of the first step refused. */
int spawn_probe_namespaces(void);

#endif
