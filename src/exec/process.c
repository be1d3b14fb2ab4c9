/* A child process supervised on the event loop (see process.h): its pipes,
 * the spawn, and the public calls; process_supervise.c watches it on the loop. */
#include "exec/process.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "exec/fork_server.h"
#include "exec/process_supervise.h"
#include "exec/sandbox_ns.h"
#include "exec/spawn.h"

void proc_child_fds_close(struct child_fds *c)
{
    int *all[] = {&c->in[0],  &c->in[1],  &c->out[0], &c->out[1],    &c->err[0],
                  &c->err[1], &c->ctl[0], &c->ctl[1], &c->status[0], &c->status[1]};
    for (size_t i = 0; i < ARRAY_SIZE(all); i++)
        close_fd(all[i]);
}

static int child_fds_open(struct child_fds *c, const struct proc_spec *spec)
{
    enum proc_control control = spec->control;
    if (pipe2(c->in, O_CLOEXEC) < 0 || pipe2(c->out, O_CLOEXEC) < 0 || pipe2(c->err, O_CLOEXEC) < 0)
        return -errno;
    if (spec->ns && pipe2(c->status, O_CLOEXEC | O_NONBLOCK) < 0)
        return -errno;
    if (control == PROC_CONTROL_PIPE && pipe2(c->ctl, O_CLOEXEC) < 0)
        return -errno;
    /* For a socket both ends read and write; [0] goes to the child. */
    if (control == PROC_CONTROL_SOCKET &&
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c->ctl) < 0)
        return -errno;
    return 0;
}

/* A child on a uid of its own re-opens its pipes and parameter file by path
 * (/dev/stdout, /dev/fd/3, /proc/self/fd/4), which checks the inode's owner:
 * they become the child's. */
int proc_child_fds_give(const struct proc_spec *spec, const struct child_fds *c)
{
    const int fds[] = {c->in[0], c->out[1], c->err[1], c->ctl[0],
                       spec->file_fd > 2 ? spec->file_fd : -1};
    for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
        if (fds[i] >= 0 && fchown(fds[i], spec->uid, spec->gid) < 0)
            return -errno;
    return 0;
}

_Static_assert(SANDBOX_NS_STATUS_FD > PROC_FILE_FD, "the init's status pipe is above the rest");

/* In new namespaces: the program starts as the child of the namespace's
 * init, which takes the status pipe (spawn.h). */
static int spawn_in_ns(const struct proc_spec *spec, const struct child_fds *c,
                       struct spawn_req *req, pid_t *pid)
{
    struct spawn_fd fds[6];
    memcpy(fds, req->fds, sizeof(*fds) * (size_t)req->n_fds);
    fds[req->n_fds] = (struct spawn_fd){c->status[1], SANDBOX_NS_STATUS_FD};
    req->ns = sandbox_ns_prepare(spec->ns, spec->cwd, spec->path);
    if (!req->ns)
        return -errno;
    req->fds = fds;
    req->n_fds++;
    req->close_from = SANDBOX_NS_STATUS_FD + 1;
    return spawn_process(req, pid);
}

static struct proc *live_procs;

/* From the warm zygote: the same descriptors, uid, gid and limits. */
struct fork_request proc_fork_request(const struct proc_spec *spec, const struct child_fds *c)
{
    return (struct fork_request){
        .fds = {c->in[0], c->out[1], c->err[1], c->ctl[0]},
        .file_fd = spec->file_fd > 2 ? spec->file_fd : -1,
        .uid = spec->uid,
        .gid = spec->gid,
        .limits = spec->limits,
    };
}

void proc_fork_fell_back(const struct proc_spec *spec, int rc)
{
    log_debug("fork server: %s; starting %s cold", strerror(-rc), spec->path);
    fork_server_count_cold();
}

int proc_fork_ask(struct proc *p, const struct proc_spec *spec, const struct child_fds *c,
                  bool spare, fork_spawned_fn done)
{
    if (spec->uid && proc_child_fds_give(spec, c) < 0)
        return -EAGAIN;
    struct fork_request req = proc_fork_request(spec, c);
    req.spare = spare;
    int rc = fork_server_spawn_async(spec->fork_server, &req, done, p);
    if (rc == 0)
        p->forking = spec->fork_server;
    return rc;
}

static int spawn_forked(const struct proc_spec *spec, const struct child_fds *c, pid_t *pid)
{
    const struct fork_request req = proc_fork_request(spec, c);
    int rc = fork_server_spawn(spec->fork_server, &req, pid);
    if (rc < 0)
        proc_fork_fell_back(spec, rc);
    return rc;
}

int proc_spawn_child(const struct proc_spec *spec, const struct child_fds *c, pid_t *pid,
                     bool *forked)
{
    if (spec->uid) {
        int rc = proc_child_fds_give(spec, c);
        if (rc < 0)
            return rc;
    }
    *forked = spec->fork_server && !spec->ns && spec->control == PROC_CONTROL_SOCKET &&
              spawn_forked(spec, c, pid) == 0;
    if (*forked)
        return 0;
    int child_ctl = spec->control == PROC_CONTROL_NONE ? -1 : c->ctl[0];
    struct spawn_fd fds[5] = {{c->in[0], 0}, {c->out[1], 1}, {c->err[1], 2}};
    int n = 3;
    if (child_ctl >= 0)
        fds[n++] = (struct spawn_fd){child_ctl, 3};
    else if (spec->file_fd > 2)
        fds[n++] = (struct spawn_fd){-1, 3};
    if (spec->file_fd > 2)
        fds[n++] = (struct spawn_fd){spec->file_fd, PROC_FILE_FD};
    struct spawn_req req = {
        .path = spec->path,
        .argv = spec->argv,
        .envp = spec->envp,
        .cwd = spec->cwd,
        .fds = fds,
        .n_fds = n,
        /* Belt and braces: whatever a library opened without O_CLOEXEC stays out. */
        .close_from = spec->file_fd > 2 ? PROC_FILE_FD + 1
                      : child_ctl >= 0  ? 4
                                        : 3,
        .uid = spec->uid,
        .gid = spec->gid,
        .limits = spec->limits,
    };
    if (spec->ns)
        return spawn_in_ns(spec, c, &req, pid);
    return spawn_process(&req, pid);
}

void proc_take_init_status(struct proc *p)
{
    int status;
    if (p->status_fd < 0)
        return;
    /* Nothing there: the init itself was killed (SIGKILL), which is the result. */
    if (read(p->status_fd, &status, sizeof(status)) == (ssize_t)sizeof(status)) {
        p->result.exited = WIFEXITED(status);
        p->result.exit_code = p->result.exited ? WEXITSTATUS(status) : 0;
        p->result.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    }
    close_fd(&p->status_fd);
}

/* Moves the parent's ends into p, which closes them from now on. */
static void proc_take_fds(struct proc *p, struct child_fds *c)
{
    p->out_fd = c->out[0];
    p->err_fd = c->err[0];
    p->stdin_feed.fd = c->in[1];
    p->control_fd = c->ctl[1]; /* -1 without a control channel */
    p->status_fd = c->status[0];
    c->out[0] = c->err[0] = c->in[1] = c->ctl[1] = c->status[0] = -1;
}

static struct proc *proc_alloc(sd_event *loop, const struct proc_spec *spec, proc_done_fn done,
                               void *userdata)
{
    struct proc *p = xcalloc(1, sizeof(*p));
    p->loop = sd_event_ref(loop);
    p->pid = -1;
    p->pidfd = p->out_fd = p->err_fd = p->control_fd = p->status_fd = -1;
    p->stdin_feed.fd = p->control_feed.fd = -1;
    p->control = spec->control;
    p->reply_max = spec->reply_max;
    p->kill_grace_ms = spec->kill_grace_ms ? spec->kill_grace_ms : 5000;
    p->out_sink = spec->stdout_sink;
    p->err_sink = spec->stderr_sink;
    p->done = done;
    p->userdata = userdata;
    strbuf_init(&p->result.reply);
    p->live_next = live_procs;
    if (live_procs)
        live_procs->live_prev = p;
    live_procs = p;
    return p;
}

/* A forked child reads its launch first, then the control payload. */
static int proc_watch_launch(struct proc *p, const struct proc_spec *spec, bool forked)
{
    if (!forked)
        return proc_watch(p, spec);
    struct proc_spec fed = *spec;
    struct strbuf control;
    strbuf_init(&control);
    fork_server_preamble(spec->fork_args, spec->envp, spec->cwd ? spec->cwd : "/", &control);
    strbuf_append(&control, spec->control_data, spec->control_len);
    fed.control_data = control.data;
    fed.control_len = control.len;
    int rc = proc_watch(p, &fed);
    secure_zero(control.data, control.len);
    strbuf_free(&control);
    return rc;
}

size_t proc_busy_count(void)
{
    size_t n = 0;
    for (const struct proc *p = live_procs; p; p = p->live_next)
        n += !p->idle && !p->finished;
    return n;
}

bool proc_is_live(pid_t pid)
{
    for (const struct proc *p = live_procs; p; p = p->live_next)
        if (p->pid == pid && !p->reaped)
            return true;
    return false;
}

int proc_begin(struct proc *p, const struct proc_spec *spec, struct child_fds *c, bool forked,
               char *err, size_t errlen)
{
    p->started_ms = time_monotonic_ms();
    p->pidfd = pidfd_open(p->pid, 0);
    if (p->pidfd < 0 && errno != ENOSYS)
        return set_error(err, errlen, errno, "pidfd_open: %s", strerror(errno));
    proc_take_fds(p, c);
    int rc = proc_watch_launch(p, spec, forked);
    if (rc < 0)
        return set_error(err, errlen, rc, "cannot watch process: %s", strerror(-rc));
    return 0;
}

int proc_start(sd_event *loop, const struct proc_spec *spec, proc_done_fn done, void *userdata,
               struct proc **out, char *err, size_t errlen)
{
    struct child_fds c;
    memset(&c, -1, sizeof(c));
    struct proc *p = proc_alloc(loop, spec, done, userdata);
    int rc = child_fds_open(&c, spec);
    if (rc < 0) {
        set_error(err, errlen, rc, "cannot create pipes: %s", strerror(-rc));
        goto fail;
    }
    if (proc_fork_async(p, spec, &c) == 0) {
        *out = p;
        return 0;
    }
    bool forked = false;
    rc = proc_spawn_child(spec, &c, &p->pid, &forked);
    if (rc < 0) {
        set_error(err, errlen, rc, "cannot start %s: %s", spec->path, strerror(-rc));
        goto fail;
    }
    rc = proc_begin(p, spec, &c, forked, err, errlen);
    if (rc < 0)
        goto fail;
    proc_child_fds_close(&c);
    *out = p;
    if (spec->started)
        spec->started(p, userdata);
    return 0;
fail:
    proc_child_fds_close(&c);
    proc_free(p);
    return rc;
}

/* The fork server's answer for a spare asked for without waiting. */
static void on_spare_forked(pid_t pid, int rc, void *userdata)
{
    struct proc *p = userdata;
    p->forking = NULL;
    if (rc == 0) {
        p->pid = pid;
        p->pidfd = pidfd_open(pid, 0);
        rc = p->pidfd < 0 ? -errno : proc_watch_idle(p);
    }
    if (rc == 0) {
        if (p->started)
            p->started(p, p->userdata);
        return;
    }
    /* Never started: exited tells, with no exit status and no signal. */
    log_debug("a spare could not be forked: %s", strerror(-rc));
    p->finished = true;
    p->done(p, p->userdata);
}

/* A spare forked by the fork server, asked for without waiting (the fork
 * takes milliseconds of the zygote's time): 0; -EBUSY while it forks another;
 * -EAGAIN when it cannot. */
static int prespawn_forking(struct proc *p, const struct proc_spec *spec, const struct child_fds *c)
{
    if (!spec->fork_server || spec->control != PROC_CONTROL_SOCKET ||
        !fork_server_ready(spec->fork_server))
        return -EAGAIN;
    if (fork_server_busy(spec->fork_server))
        return -EBUSY;
    return proc_fork_ask(p, spec, c, true, on_spare_forked);
}

int proc_prespawn(sd_event *loop, const struct proc_spec *spec, proc_done_fn exited, void *userdata,
                  struct proc **out, char *err, size_t errlen)
{
    struct child_fds c;
    memset(&c, -1, sizeof(c));
    struct proc *p = proc_alloc(loop, spec, exited, userdata);
    p->started = spec->started;
    /* Not forked now: started cold, it reads its launch from fd 3 as a
     * forked spare does. */
    struct proc_spec cold = *spec;
    cold.fork_server = NULL;
    bool forked = false;
    int rc = spec->ns || spec->file_fd > 2 ? -EINVAL : child_fds_open(&c, spec);
    p->idle = true;
    int forking = rc == 0 ? prespawn_forking(p, spec, &c) : -EAGAIN;
    if (forking == 0) {
        proc_take_fds(p, &c);
        proc_child_fds_close(&c);
        *out = p;
        return 0;
    }
    if (forking == -EBUSY) /* not another: once the fork server has answered */
        rc = -EBUSY;
    if (rc == 0)
        rc = proc_spawn_child(&cold, &c, &p->pid, &forked);
    if (rc == 0 && (p->pidfd = pidfd_open(p->pid, 0)) < 0)
        rc = -errno;
    if (rc == 0) {
        proc_take_fds(p, &c);
        rc = proc_watch_idle(p);
    }
    proc_child_fds_close(&c);
    if (rc < 0) {
        set_error(err, errlen, rc, "cannot start a spare %s: %s", spec->path, strerror(-rc));
        proc_free(p);
        return rc;
    }
    *out = p;
    if (p->started)
        p->started(p, p->userdata);
    return 0;
}

const struct proc_result *proc_get_result(const struct proc *proc)
{
    return &proc->result;
}

pid_t proc_pid(const struct proc *proc)
{
    return proc->pid;
}

bool proc_started(const struct proc *proc)
{
    return proc->pid > 0;
}

void proc_cancel(struct proc *proc, uint64_t grace_ms)
{
    if (proc->finished)
        return;
    proc->result.cancelled = true;
    if (proc->fork_wait) /* the fork server's answer ends it (process_fork.c) */
        return;
    if (grace_ms > 0 && proc->kill_stage == KILL_NONE)
        proc->kill_grace_ms = grace_ms;
    proc_begin_termination(proc);
}

void proc_free(struct proc *p)
{
    if (!p)
        return;
    fork_server_abandon(p->forking, p);
    proc_fork_wait_free(p);
    if (p->pid > 0 && !p->reaped) {
        proc_signal_group(p, SIGKILL);
        siginfo_t si;
        if (p->pidfd >= 0)
            waitid(P_PIDFD, (id_t)p->pidfd, &si, WEXITED);
        else
            waitid(P_PID, (id_t)p->pid, &si, WEXITED);
    }
    proc_unwatch(p);
    if (p->live_prev)
        p->live_prev->live_next = p->live_next;
    else
        live_procs = p->live_next;
    if (p->live_next)
        p->live_next->live_prev = p->live_prev;
    close_fd(&p->pidfd);
    close_fd(&p->status_fd);
    strbuf_free(&p->result.reply);
    sd_event_unref(p->loop);
    free(p);
}
