/* Starting a child in-process without fork's copy of the parent: a clone
 * sharing memory (CLONE_VM | CLONE_VFORK) that sets up its descriptors,
 * session, credentials and signals with async-signal-safe calls only, then
 * executes the program. What posix_spawn does, plus the uid change it cannot
 * make. */
#ifndef ATTUNE_EXEC_SPAWN_H
#define ATTUNE_EXEC_SPAWN_H

#include <sys/types.h>

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

#endif
