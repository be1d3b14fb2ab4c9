/* What process.c (spawning) and process_supervise.c (the child's events on
 * the loop) share about a supervised process; not for other modules. */
#ifndef ATTUNE_EXEC_PROCESS_PRIVATE_H
#define ATTUNE_EXEC_PROCESS_PRIVATE_H

#include <signal.h>
#include <stdlib.h>
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

    struct proc_result result;
    proc_done_fn done;
    void *userdata;
    bool finished;
};

static inline void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static inline void drop_source(sd_event_source **src)
{
    *src = sd_event_source_disable_unref(*src);
}

static inline void feed_free(struct feed *f)
{
    drop_source(&f->src);
    if (f->data) {
        secure_zero(f->data, f->len);
        free(f->data);
    }
    f->data = NULL;
}

/* Loop callbacks proc_start installs (process_supervise.c). */
int proc_on_output(sd_event_source *s, int fd, uint32_t revents, void *userdata);
int proc_on_stdin_writable(sd_event_source *s, int fd, uint32_t revents, void *userdata);
int proc_on_control(sd_event_source *s, int fd, uint32_t revents, void *userdata);
int proc_on_child_exit(sd_event_source *s, const siginfo_t *si, void *userdata);
int proc_on_timeout(sd_event_source *s, uint64_t usec, void *userdata);

/* SIGTERM to the group now, SIGKILL after the grace; once only. */
void proc_begin_termination(struct proc *p);
void proc_signal_group(struct proc *p, int sig);

#endif
