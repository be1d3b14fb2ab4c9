/* A child process supervised on the event loop (see process.h). */
#include "exec/process.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"

#define PROC_READ_CHUNK 65536
/* Reads per wake-up, so one chatty child cannot starve the loop. */
#define PROC_READS_PER_EVENT 16
#define PROC_FINAL_GRACE_MS 1000

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

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void drop_source(sd_event_source **src)
{
    *src = sd_event_source_disable_unref(*src);
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

static void proc_check_done(struct proc *p);
static void proc_signal_group(struct proc *p, int sig);
static int proc_arm_kill_timer(struct proc *p, uint64_t delay_ms);

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

static int on_output(sd_event_source *s, int fd, uint32_t revents, void *userdata)
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
        proc_stream_closed(p, is_stdout); /* end of file or a read error */
        proc_check_done(p);
        return 0;
    }
    return 0;
}

/* Feeding stdin and the control channel */

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

static int on_stdin_writable(sd_event_source *s, int fd, uint32_t revents, void *userdata)
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
static int on_control(sd_event_source *s, int fd, uint32_t revents, void *userdata)
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

static void proc_signal_group(struct proc *p, int sig)
{
    /* The child leads its own session, so its pid is the group id. */
    if (kill(-p->pid, sig) < 0 && errno != ESRCH)
        log_warn("cannot send signal %d to process group %d: %s", sig, (int)p->pid,
                 strerror(errno));
}

static bool proc_group_alive(const struct proc *p)
{
    return kill(-p->pid, 0) == 0;
}

static void proc_begin_termination(struct proc *p)
{
    if (p->kill_stage != KILL_NONE)
        return;
    proc_signal_group(p, SIGTERM);
    p->kill_stage = KILL_TERM_SENT;
    proc_arm_kill_timer(p, p->kill_grace_ms);
}

static int on_child_exit(sd_event_source *s, const siginfo_t *si, void *userdata)
{
    struct proc *p = userdata;
    (void)s;
    p->reaped = true;
    p->result.duration_ms = time_monotonic_ms() - p->started_ms;
    if (si->si_code == CLD_EXITED) {
        p->result.exited = true;
        p->result.exit_code = si->si_status;
    } else {
        p->result.signal = si->si_status;
    }
    drop_source(&p->timeout_src);
    /* Whatever the action left behind in its group goes with it. */
    if (proc_group_alive(p))
        proc_begin_termination(p);
    proc_check_done(p);
    return 0;
}

static void proc_force_finish(struct proc *p)
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
        proc_force_finish(p);
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

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata)
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

/* Spawning */

struct child_fds {
    int in[2], out[2], err[2], ctl[2]; /* [0] read end, [1] write end */
};

static void child_fds_close(struct child_fds *c)
{
    int *all[] = {&c->in[0],  &c->in[1],  &c->out[0], &c->out[1],
                  &c->err[0], &c->err[1], &c->ctl[0], &c->ctl[1]};
    for (size_t i = 0; i < ARRAY_SIZE(all); i++)
        close_fd(all[i]);
}

static int child_fds_open(struct child_fds *c, enum proc_control control)
{
    if (pipe2(c->in, O_CLOEXEC) < 0 || pipe2(c->out, O_CLOEXEC) < 0 || pipe2(c->err, O_CLOEXEC) < 0)
        return -errno;
    if (control == PROC_CONTROL_PIPE && pipe2(c->ctl, O_CLOEXEC) < 0)
        return -errno;
    /* For a socket both ends read and write; [0] goes to the child. */
    if (control == PROC_CONTROL_SOCKET &&
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c->ctl) < 0)
        return -errno;
    return 0;
}

static int spawn_child(const struct proc_spec *spec, const struct child_fds *c, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t empty, all;
    int child_ctl = spec->control == PROC_CONTROL_NONE ? -1 : c->ctl[0];
    sigemptyset(&empty);
    sigfillset(&all);
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_adddup2(&fa, c->in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, c->out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, c->err[1], 2);
    if (child_ctl >= 0)
        posix_spawn_file_actions_adddup2(&fa, child_ctl, 3);
    /* Belt and braces: whatever a library opened without O_CLOEXEC stays out. */
    posix_spawn_file_actions_addclosefrom_np(&fa, child_ctl >= 0 ? 4 : 3);
    if (spec->cwd)
        posix_spawn_file_actions_addchdir_np(&fa, spec->cwd);
    posix_spawnattr_setflags(&attr,
                             POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setsigmask(&attr, &empty);
    posix_spawnattr_setsigdefault(&attr, &all);
    int rc = posix_spawn(pid, spec->path, &fa, &attr, spec->argv, spec->envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    return -rc;
}

static void feed_init(struct feed *f, int fd, const void *data, size_t len)
{
    f->fd = fd;
    f->len = len;
    f->off = 0;
    f->data = xmalloc(len ? len : 1);
    if (len)
        memcpy(f->data, data, len);
    f->src = NULL;
}

static int set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    return flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ? -errno : 0;
}

/* Takes the parent's ends of the pipes and watches them on the loop. */
static int proc_watch(struct proc *p, const struct proc_spec *spec, struct child_fds *c)
{
    p->out_fd = c->out[0];
    p->err_fd = c->err[0];
    c->out[0] = c->err[0] = -1;
    feed_init(&p->stdin_feed, c->in[1], spec->stdin_data, spec->stdin_len);
    c->in[1] = -1;
    int rc = 0;
    int fds[] = {p->out_fd, p->err_fd, p->stdin_feed.fd};
    for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
        rc = rc ? rc : set_nonblocking(fds[i]);
    rc = rc ? rc : sd_event_add_io(p->loop, &p->out_src, p->out_fd, EPOLLIN, on_output, p);
    rc = rc ? rc : sd_event_add_io(p->loop, &p->err_src, p->err_fd, EPOLLIN, on_output, p);
    rc = rc ? rc
            : sd_event_add_io(p->loop, &p->stdin_feed.src, p->stdin_feed.fd, EPOLLOUT,
                              on_stdin_writable, p);
    if (rc == 0 && spec->control != PROC_CONTROL_NONE) {
        p->control_fd = c->ctl[1];
        c->ctl[1] = -1;
        feed_init(&p->control_feed, p->control_fd, spec->control_data, spec->control_len);
        rc = set_nonblocking(p->control_fd);
        rc = rc ? rc
                : sd_event_add_io(p->loop, &p->control_src, p->control_fd, EPOLLOUT, on_control, p);
    }
    /* Without a pidfd (a kernel or a valgrind that lacks pidfd_open), sd-event
     * watches the pid itself through SIGCHLD, which the loop has blocked. */
    if (rc == 0 && p->pidfd >= 0)
        rc = sd_event_add_child_pidfd(p->loop, &p->child_src, p->pidfd, WEXITED, on_child_exit, p);
    else if (rc == 0)
        rc = sd_event_add_child(p->loop, &p->child_src, p->pid, WEXITED, on_child_exit, p);
    /* From the real start, not from the loop's cached time of this iteration. */
    if (rc == 0 && spec->timeout_ms)
        rc = sd_event_add_time(p->loop, &p->timeout_src, CLOCK_MONOTONIC,
                               (p->started_ms + spec->timeout_ms) * 1000, 1000, on_timeout, p);
    return rc;
}

static struct proc *proc_alloc(sd_event *loop, const struct proc_spec *spec, proc_done_fn done,
                               void *userdata)
{
    struct proc *p = xcalloc(1, sizeof(*p));
    p->loop = sd_event_ref(loop);
    p->pid = -1;
    p->pidfd = p->out_fd = p->err_fd = p->control_fd = -1;
    p->stdin_feed.fd = p->control_feed.fd = -1;
    p->control = spec->control;
    p->reply_max = spec->reply_max;
    p->kill_grace_ms = spec->kill_grace_ms ? spec->kill_grace_ms : 5000;
    p->out_sink = spec->stdout_sink;
    p->err_sink = spec->stderr_sink;
    p->done = done;
    p->userdata = userdata;
    strbuf_init(&p->result.reply);
    return p;
}

int proc_start(sd_event *loop, const struct proc_spec *spec, proc_done_fn done, void *userdata,
               struct proc **out, char *err, size_t errlen)
{
    struct child_fds c;
    memset(&c, -1, sizeof(c));
    struct proc *p = proc_alloc(loop, spec, done, userdata);
    int rc = child_fds_open(&c, spec->control);
    if (rc < 0) {
        set_error(err, errlen, rc, "cannot create pipes: %s", strerror(-rc));
        goto fail;
    }
    rc = spawn_child(spec, &c, &p->pid);
    if (rc < 0) {
        set_error(err, errlen, rc, "cannot start %s: %s", spec->path, strerror(-rc));
        goto fail;
    }
    p->started_ms = time_monotonic_ms();
    p->pidfd = pidfd_open(p->pid, 0);
    if (p->pidfd < 0 && errno != ENOSYS) {
        rc = -errno;
        set_error(err, errlen, rc, "pidfd_open: %s", strerror(-rc));
        goto fail;
    }
    rc = proc_watch(p, spec, &c);
    if (rc < 0) {
        set_error(err, errlen, rc, "cannot watch process: %s", strerror(-rc));
        goto fail;
    }
    child_fds_close(&c);
    *out = p;
    return 0;
fail:
    child_fds_close(&c);
    proc_free(p);
    return rc;
}

const struct proc_result *proc_get_result(const struct proc *proc)
{
    return &proc->result;
}

pid_t proc_pid(const struct proc *proc)
{
    return proc->pid;
}

void proc_cancel(struct proc *proc)
{
    if (proc->finished)
        return;
    proc->result.cancelled = true;
    proc_begin_termination(proc);
}

void proc_free(struct proc *p)
{
    if (!p)
        return;
    if (p->pid > 0 && !p->reaped) {
        proc_signal_group(p, SIGKILL);
        siginfo_t si;
        if (p->pidfd >= 0)
            waitid(P_PIDFD, (id_t)p->pidfd, &si, WEXITED);
        else
            waitid(P_PID, (id_t)p->pid, &si, WEXITED);
    }
    drop_source(&p->child_src);
    drop_source(&p->timeout_src);
    drop_source(&p->kill_src);
    drop_source(&p->out_src);
    drop_source(&p->err_src);
    drop_source(&p->control_src);
    feed_free(&p->stdin_feed);
    feed_free(&p->control_feed);
    close_fd(&p->stdin_feed.fd);
    close_fd(&p->out_fd);
    close_fd(&p->err_fd);
    close_fd(&p->control_fd);
    close_fd(&p->pidfd);
    strbuf_free(&p->result.reply);
    sd_event_unref(p->loop);
    free(p);
}
