/* The supervised process's state and its life on the loop, as process_supervise.c
 * offers them to process.c (spawning, the public calls); not for other modules. */
#ifndef ATTUNE_EXEC_PROCESS_SUPERVISE_H
#define ATTUNE_EXEC_PROCESS_SUPERVISE_H

#include <unistd.h>

#include "exec/process.h"

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

    /* A spare being forked (proc_prespawn): the fork server whose answer
     * gives its pid (NULL once known), and who hears of that pid. */
    struct fork_server *forking;
    proc_done_fn started;
    bool idle; /* a spare waiting for its work (proc_prespawn until proc_arm) */
};

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
