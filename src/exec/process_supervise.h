/* The supervised process's state and its life on the loop, as process_supervise.c
 * offers them to process.c (spawning, the public calls); not for other modules. */
#ifndef ATTUNE_EXEC_PROCESS_SUPERVISE_H
#define ATTUNE_EXEC_PROCESS_SUPERVISE_H

#include <unistd.h>

#include "exec/fork_server.h"
#include "exec/process.h"

struct proc_fork_wait;

/* A buffer written to a non-blocking fd as the fd accepts it. */
struct feed {
    int fd;
    char *data;
    size_t len;
    size_t off;
    sd_event_source *src;
};

struct proc {
    sd_event *loop;
    pid_t pid;
    int pidfd;
    bool reaped;
    uint64_t started_ms;
    uint64_t kill_grace_ms;
    enum { KILL_NONE, KILL_TERM_SENT, KILL_KILL_SENT } kill_stage;

    struct feed stdin_feed;
    struct feed control_feed;
    enum proc_control control;
    int control_fd; /* parent end, -1 when closed */
    sd_event_source *control_src;
    size_t reply_max;

    int out_fd, err_fd;
    sd_event_source *out_src, *err_src;
    struct output_sink *out_sink, *err_sink;

    sd_event_source *child_src;
    sd_event_source *timeout_src;
    sd_event_source *kill_src;

    /* Under the sandbox's init: the pipe it writes the action's wait status
     * to (-1: none). The status ends the process (reaped is set) before the
     * init's exit, which tears the namespaces down; the init itself is
     * reaped when its exit is seen (child_gone), or after proc_free. */
    int status_fd;
    sd_event_source *status_src;
    bool child_gone;

    struct proc_result result;
    proc_done_fn done;
    void *userdata;
    bool finished;
    struct proc *live_prev, *live_next; /* every proc not yet freed (proc_is_live) */

    /* A child being forked (proc_prespawn's spare, or proc_start's without
     * waiting): the fork server whose answer gives its pid (NULL once
     * known), and who hears of that pid; for proc_start's, what its start
     * still needs then (process_fork.c). */
    struct fork_server *forking;
    proc_done_fn started;
    struct proc_fork_wait *fork_wait;
    bool idle; /* a spare waiting for its work (proc_prespawn until proc_arm) */
};

/* Both ends of the child's pipes (process.c). */
struct child_fds {
    int in[2], out[2], err[2], ctl[2]; /* [0] read end, [1] write end */
    int status[2];                     /* the sandbox's init reports here */
};

void proc_child_fds_close(struct child_fds *c);
/* Makes the child's ends its uid's (spec->uid). */
int proc_child_fds_give(const struct proc_spec *spec, const struct child_fds *c);
/* What the fork server gets for the child: its ends, uid, gid and limits. */
struct fork_request proc_fork_request(const struct proc_spec *spec, const struct child_fds *c);
/* The fork server refused or did not answer (rc): logged and counted; the
 * child is started cold. */
void proc_fork_fell_back(const struct proc_spec *spec, int rc);
/* Asks spec's fork server for the child without waiting (a spare when
 * spare), done getting the answer; the child's ends are its uid's first.
 * 0 with p->forking set, or a negative errno and nothing asked. */
int proc_fork_ask(struct proc *p, const struct proc_spec *spec, const struct child_fds *c,
                  bool spare, fork_spawned_fn done);
/* Spawns the child: forked by spec->fork_server when it can (*forked), else
 * cold; in namespaces under the sandbox's init. */
int proc_spawn_child(const struct proc_spec *spec, const struct child_fds *c, pid_t *pid,
                     bool *forked);
/* Once the child exists: its pidfd, the parent's ends (c gives them up) and
 * what feeds and watches them; a forked child's launch is fed first. */
int proc_begin(struct proc *p, const struct proc_spec *spec, struct child_fds *c, bool forked,
               char *err, size_t errlen);

/* process_fork.c: with spec's fork server ready and idle, asks it for the
 * child without waiting (c's descriptors are then p's); 0, or a negative
 * errno and nothing asked. */
int proc_fork_async(struct proc *p, const struct proc_spec *spec, struct child_fds *c);
/* Drops what the start awaiting the fork server's answer held. */
void proc_fork_wait_free(struct proc *p);

static inline void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Watches what p already holds: the parent's ends (out_fd, err_fd,
 * stdin_feed.fd, control_fd when there is a control channel), the exit, the
 * timeout. On failure p keeps what it holds, for proc_unwatch. */
int proc_watch(struct proc *p, const struct proc_spec *spec);

/* A spare (proc_prespawn): watches its exit only, which calls p->done while
 * it waits for proc_arm (process_spare.c). */
int proc_watch_idle(struct proc *p);

/* Drops every loop source and closes the pipes: the end of watching. */
void proc_unwatch(struct proc *p);

/* SIGTERM to the group now, SIGKILL after the grace; once only. */
void proc_begin_termination(struct proc *p);
void proc_signal_group(struct proc *p, int sig);

/* Under the sandbox's init: the action's own exit or signal, as the init
 * reported it, over the init's (process.c). */
void proc_take_init_status(struct proc *p);

#endif
