/* A supervised process's life on the loop (see process.h): its pipes and exit
 * watched, output streamed to the sinks, stdin and the control channel fed,
 * the reply read, and the timeout and kill of the whole process group. */
#include "exec/process_supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "core/log.h"

#define PROC_READ_CHUNK 65536
/* Reads per wake-up, so one chatty child cannot starve the loop. */
#define PROC_READS_PER_EVENT 16
#define PROC_FINAL_GRACE_MS 1000

static void proc_check_done(struct proc *p);
static int proc_arm_kill_timer(struct proc *p, uint64_t delay_ms);

static void drop_source(sd_event_source **src)
{
    *src = sd_event_source_disable_unref(*src);
}

/* Output */

static void proc_stream_closed(struct proc *p, bool is_stdout)
{
    if (is_stdout) {
        drop_source(&p->out_src);
        close_fd(&p->out_fd);
    } else {
        drop_source(&p->err_src);
        close_fd(&p->err_fd);
    }
}

static int proc_on_output(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    struct proc *p = userdata;
    bool is_stdout = s == p->out_src;
    struct output_sink *sink = is_stdout ? p->out_sink : p->err_sink;
    char buf[PROC_READ_CHUNK];
    (void)revents;
    for (int i = 0; i < PROC_READS_PER_EVENT; i++) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n > 0) {
            output_sink_write(sink, buf, (size_t)n);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return 0;
        if (n < 0)
            p->result.output_cut = true;
        proc_stream_closed(p, is_stdout); /* end of file or a read error */
        proc_check_done(p);
        return 0;
    }
    return 0;
}

/* Feeding stdin and the control channel */

/* Copies data; f->fd is already set by whoever took the fd. */
static void feed_init(struct feed *f, const void *data, size_t len)
{
    f->len = len;
    f->off = 0;
    f->data = xmalloc(len ? len : 1);
    if (len)
        memcpy(f->data, data, len);
    f->src = NULL;
}

static void feed_free(struct feed *f)
{
    drop_source(&f->src);
    if (f->data) {
        secure_zero(f->data, f->len);
        free(f->data);
    }
    f->data = NULL;
}

/* Writes what the fd takes. Returns 1 when all was written, 0 to wait for
 * writability, -1 when the child closed its end (nothing more to deliver). */
static int feed_write(struct feed *f, uint32_t revents)
{
    if (revents & EPOLLERR)
        return -1;
    while (f->off < f->len) {
        ssize_t n = write(f->fd, f->data + f->off, f->len - f->off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n < 0)
            return -1;
        f->off += (size_t)n;
    }
    return 1;
}

static int proc_on_stdin_writable(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    struct proc *p = userdata;
    (void)s;
    (void)fd;
    if (feed_write(&p->stdin_feed, revents) == 0)
        return 0;
    feed_free(&p->stdin_feed);
    close_fd(&p->stdin_feed.fd);
    return 0;
}

static void control_read_reply(struct proc *p)
{
    char buf[PROC_READ_CHUNK];
    for (;;) {
        ssize_t n = read(p->control_fd, buf, sizeof(buf));
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0)
            break;
        size_t room = p->reply_max - p->result.reply.len;
        size_t keep = (size_t)n < room ? (size_t)n : room;
        strbuf_append(&p->result.reply, buf, keep);
        if (keep < (size_t)n)
            p->result.reply_truncated = true;
    }
    drop_source(&p->control_src);
    close_fd(&p->control_fd);
    proc_check_done(p);
}

/* One source serves the control fd: first it sends, then (for a socket) it
 * reads the reply until end of file. */
static int proc_on_control(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    struct proc *p = userdata;
    (void)fd;
    if (!p->control_feed.data) {
        control_read_reply(p);
        return 0;
    }
    int rc = feed_write(&p->control_feed, revents);
    if (rc == 0)
        return 0;
    feed_free(&p->control_feed);
    if (rc > 0 && p->control == PROC_CONTROL_SOCKET) {
        shutdown(p->control_fd, SHUT_WR);
        sd_event_source_set_io_events(s, EPOLLIN);
        return 0;
    }
    drop_source(&p->control_src);
    close_fd(&p->control_fd);
    proc_check_done(p);
    return 0;
}

/* Exit, timeout and kill */

void proc_signal_group(struct proc *p, int sig)
{
    /* The child leads its own session, so its pid is the group id. A child
     * of the fork server makes itself that leader only after the fork: until
     * then there is no such group, and the child itself is signalled. */
    int rc = kill(-p->pid, sig);
    if (rc < 0 && errno == ESRCH && !p->reaped)
        rc = kill(p->pid, sig);
    if (rc < 0 && errno != ESRCH)
        log_warn("cannot send signal %d to process group %d: %s", sig, (int)p->pid,
                 strerror(errno));
}

static bool proc_group_alive(const struct proc *p)
{
    return kill(-p->pid, 0) == 0;
}

void proc_begin_termination(struct proc *p)
{
    if (p->kill_stage != KILL_NONE)
        return;
    proc_signal_group(p, SIGTERM);
    p->kill_stage = KILL_TERM_SENT;
    proc_arm_kill_timer(p, p->kill_grace_ms);
}

/* The process's end is known: from its exit, or from the sandbox's init. */
static void proc_ended(struct proc *p, bool check_group)
{
    p->reaped = true;
    p->result.duration_ms = time_monotonic_ms() - p->started_ms;
    drop_source(&p->timeout_src);
    /* Whatever the action left behind in its group goes with it. */
    if (check_group && proc_group_alive(p))
        proc_begin_termination(p);
    proc_check_done(p);
}

static int proc_on_child_exit(sd_event_source *s, const siginfo_t *si, void *userdata)
{
    struct proc *p = userdata;
    (void)s;
    p->child_gone = true;
    if (p->reaped) /* the init's status came first */
        return 0;
    drop_source(&p->status_src);
    if (si->si_code == CLD_EXITED) {
        p->result.exited = true;
        p->result.exit_code = si->si_status;
    } else {
        p->result.signal = si->si_status;
    }
    proc_take_init_status(p);
    proc_ended(p, true);
    return 0;
}

/* The init wrote the action's wait status and is exiting: the kernel kills
 * what is left in the namespace with it, so the result need not wait for
 * that exit, nor for the tear-down of the namespaces in it. */
static int proc_on_init_status(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    struct proc *p = userdata;
    int status;
    (void)s;
    (void)revents;
    drop_source(&p->status_src);
    /* Nothing there: the init was killed; its exit tells. */
    if (read(fd, &status, sizeof(status)) != (ssize_t)sizeof(status))
        return 0;
    close_fd(&p->status_fd);
    p->result.exited = WIFEXITED(status);
    p->result.exit_code = p->result.exited ? WEXITSTATUS(status) : 0;
    p->result.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    proc_ended(p, false);
    return 0;
}

static int on_late_init_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    siginfo_t si;
    (void)revents;
    (void)userdata;
    waitid(P_PIDFD, (id_t)fd, &si, WEXITED | WNOHANG);
    sd_event_source_disable_unref(s); /* closes fd */
    return 0;
}

/* An init whose status ended the process but whose exit was not seen yet:
 * reaped by the loop once it is gone, or at once without a pidfd. */
static void proc_reap_init_later(struct proc *p)
{
    siginfo_t si;
    int fd = p->pidfd >= 0 ? fcntl(p->pidfd, F_DUPFD_CLOEXEC, 3) : -1;
    sd_event_source *src = NULL;
    if (fd >= 0 && sd_event_add_io(p->loop, &src, fd, EPOLLIN, on_late_init_exit, NULL) >= 0) {
        sd_event_source_set_io_fd_own(src, 1);
        sd_event_source_set_floating(src, 1);
        sd_event_source_unref(src);
        return;
    }
    if (fd >= 0)
        close(fd);
    waitid(P_PID, (id_t)p->pid, &si, WEXITED);
}

/* Stops reading and feeding the child: its pipes closed, their sources gone. */
static void proc_close_pipes(struct proc *p)
{
    proc_stream_closed(p, true);
    proc_stream_closed(p, false);
    drop_source(&p->control_src);
    close_fd(&p->control_fd);
    feed_free(&p->stdin_feed);
    close_fd(&p->stdin_feed.fd);
    feed_free(&p->control_feed);
}

static int on_kill_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
    struct proc *p = userdata;
    (void)s;
    (void)usec;
    drop_source(&p->kill_src);
    if (p->kill_stage == KILL_TERM_SENT) {
        proc_signal_group(p, SIGKILL);
        p->kill_stage = KILL_KILL_SENT;
        proc_arm_kill_timer(p, PROC_FINAL_GRACE_MS);
    } else if (p->reaped) {
        /* Something outside the group still holds the pipes: stop waiting. */
        log_warn("process %d: output still open after SIGKILL; closing it", (int)p->pid);
        if (p->out_fd >= 0 || p->err_fd >= 0)
            p->result.output_cut = true;
        proc_close_pipes(p);
        proc_check_done(p);
    }
    return 0;
}

static int proc_arm_kill_timer(struct proc *p, uint64_t delay_ms)
{
    drop_source(&p->kill_src);
    return sd_event_add_time_relative(p->loop, &p->kill_src, CLOCK_MONOTONIC, delay_ms * 1000, 1000,
                                      on_kill_timer, p);
}

static int proc_on_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
    struct proc *p = userdata;
    (void)s;
    (void)usec;
    drop_source(&p->timeout_src);
    p->result.timed_out = true;
    log_info("process %d timed out; terminating its process group", (int)p->pid);
    proc_begin_termination(p);
    return 0;
}

static void proc_check_done(struct proc *p)
{
    if (p->finished || !p->reaped || p->out_fd >= 0 || p->err_fd >= 0 || p->control_fd >= 0)
        return;
    p->finished = true;
    /* What the action left in its group got SIGTERM when it exited; whatever
     * ignored that goes now, since nobody will be watching it any more. */
    if (p->kill_stage == KILL_TERM_SENT)
        proc_signal_group(p, SIGKILL);
    drop_source(&p->kill_src);
    drop_source(&p->stdin_feed.src);
    close_fd(&p->stdin_feed.fd);
    p->done(p, p->userdata);
}

/* Watching and letting go */

static int set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    return flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ? -errno : 0;
}

int proc_watch(struct proc *p, const struct proc_spec *spec)
{
    feed_init(&p->stdin_feed, spec->stdin_data, spec->stdin_len);
    int rc = 0;
    int fds[] = {p->out_fd, p->err_fd, p->stdin_feed.fd};
    for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
        rc = rc ? rc : set_nonblocking(fds[i]);
    rc = rc ? rc : sd_event_add_io(p->loop, &p->out_src, p->out_fd, EPOLLIN, proc_on_output, p);
    rc = rc ? rc : sd_event_add_io(p->loop, &p->err_src, p->err_fd, EPOLLIN, proc_on_output, p);
    rc = rc ? rc
            : sd_event_add_io(p->loop, &p->stdin_feed.src, p->stdin_feed.fd, EPOLLOUT,
                              proc_on_stdin_writable, p);
    if (rc == 0 && spec->control != PROC_CONTROL_NONE) {
        p->control_feed.fd = p->control_fd;
        feed_init(&p->control_feed, spec->control_data, spec->control_len);
        rc = set_nonblocking(p->control_fd);
        rc = rc ? rc
                : sd_event_add_io(p->loop, &p->control_src, p->control_fd, EPOLLOUT,
                                  proc_on_control, p);
    }
    /* Without a pidfd (a kernel or a valgrind that lacks pidfd_open), sd-event
     * watches the pid itself through SIGCHLD, which the loop has blocked. */
    if (rc == 0 && p->pidfd >= 0)
        rc = sd_event_add_child_pidfd(p->loop, &p->child_src, p->pidfd, WEXITED, proc_on_child_exit,
                                      p);
    else if (rc == 0)
        rc = sd_event_add_child(p->loop, &p->child_src, p->pid, WEXITED, proc_on_child_exit, p);
    if (rc == 0 && p->status_fd >= 0)
        rc =
            sd_event_add_io(p->loop, &p->status_src, p->status_fd, EPOLLIN, proc_on_init_status, p);
    /* From the real start, not from the loop's cached time of this iteration. */
    if (rc == 0 && spec->timeout_ms)
        rc = sd_event_add_time(p->loop, &p->timeout_src, CLOCK_MONOTONIC,
                               (p->started_ms + spec->timeout_ms) * 1000, 1000, proc_on_timeout, p);
    return rc;
}

void proc_unwatch(struct proc *p)
{
    if (p->child_src && p->reaped && !p->child_gone)
        proc_reap_init_later(p);
    drop_source(&p->status_src);
    drop_source(&p->child_src);
    drop_source(&p->timeout_src);
    drop_source(&p->kill_src);
    proc_close_pipes(p);
}
