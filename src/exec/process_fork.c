/* An execution's child asked of the fork server without waiting for its
 * answer (see proc_start in process.h): the loop, and a cancel, go on
 * meanwhile. The spec is copied, for the child's launch once it is forked or
 * for a cold start when the fork server refuses or does not answer; a cancel
 * that came first means the child, if one was forked, is killed before it
 * was given anything. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "exec/fork_server.h"
#include "exec/process_supervise.h"

/* What the start still needs when the answer comes: the spec, its buffers
 * pointing at copies that outlive the caller's (the sinks, limits and fork
 * server stay borrowed), and the child's ends of its pipes. */
struct proc_fork_wait {
    struct proc_spec spec;
    char *path, *cwd;
    struct strv argv, envp, fork_args;
    char *stdin_data, *control_data;
    struct child_fds c;
};

static char *copy_bytes(const void *data, size_t len)
{
    if (!data)
        return NULL;
    char *copy = xmalloc(len ? len : 1);
    memcpy(copy, data, len);
    return copy;
}

/* NULL stays NULL. */
static char *const *copy_vector(char *const *items, struct strv *out)
{
    strv_init(out);
    if (!items)
        return NULL;
    for (char *const *s = items; *s; s++)
        strv_push(out, *s);
    return out->items;
}

static struct proc_fork_wait *fork_wait_new(const struct proc_spec *spec)
{
    struct proc_fork_wait *w = xcalloc(1, sizeof(*w));
    memset(&w->c, -1, sizeof(w->c));
    w->spec = *spec;
    w->spec.path = w->path = xstrdup(spec->path);
    w->spec.cwd = w->cwd = spec->cwd ? xstrdup(spec->cwd) : NULL;
    w->spec.argv = copy_vector(spec->argv, &w->argv);
    w->spec.envp = copy_vector(spec->envp, &w->envp);
    w->spec.fork_args = copy_vector(spec->fork_args, &w->fork_args);
    w->spec.stdin_data = w->stdin_data = copy_bytes(spec->stdin_data, spec->stdin_len);
    w->spec.control_data = w->control_data = copy_bytes(spec->control_data, spec->control_len);
    /* The caller closes its own once proc_start returns. */
    w->spec.file_fd =
        spec->file_fd > 2 ? fcntl(spec->file_fd, F_DUPFD_CLOEXEC, PROC_FILE_FD + 1) : -1;
    return w;
}

/* Parameters, secrets and a token may be among the copies: wiped first. */
static void wipe_vector(struct strv *v)
{
    for (size_t i = 0; i < v->len; i++)
        secure_zero(v->items[i], strlen(v->items[i]));
    strv_free(v);
}

static void wipe_bytes(char *data, size_t len)
{
    if (data)
        secure_zero(data, len);
    free(data);
}

void proc_fork_wait_free(struct proc *p)
{
    struct proc_fork_wait *w = p->fork_wait;
    if (!w)
        return;
    p->fork_wait = NULL;
    proc_child_fds_close(&w->c);
    wipe_vector(&w->argv);
    wipe_vector(&w->envp);
    wipe_vector(&w->fork_args);
    wipe_bytes(w->stdin_data, w->spec.stdin_len);
    wipe_bytes(w->control_data, w->spec.control_len);
    if (w->spec.file_fd >= 0)
        close(w->spec.file_fd);
    free(w->path);
    free(w->cwd);
    free(w);
}

/* A start that failed, or that a cancel overtook: a child there is killed
 * before it was given anything, and the proc ends unstarted (done hears of
 * it with neither an exit status nor a signal). */
static void proc_end_unstarted(struct proc *p)
{
    if (p->pid > 0) {
        proc_signal_group(p, SIGKILL);
        waitpid(p->pid, NULL, 0);
    }
    proc_unwatch(p);
    p->pid = -1;
    p->finished = true;
    p->done(p, p->userdata);
}

/* The fork server's answer: the forked child is fed its launch; a refusal
 * (or no answer) starts it cold; after a cancel nothing starts. */
static void on_exec_forked(pid_t pid, int rc, void *userdata)
{
    struct proc *p = userdata;
    struct proc_fork_wait *w = p->fork_wait;
    char err[512] = "";
    bool forked = rc == 0;
    p->forking = NULL;
    if (forked)
        p->pid = pid;
    if (p->result.cancelled) {
        rc = -ECANCELED;
    } else if (!forked) {
        proc_fork_fell_back(&w->spec, rc);
        struct proc_spec cold = w->spec;
        cold.fork_server = NULL;
        rc = proc_spawn_child(&cold, &w->c, &p->pid, &forked);
        if (rc < 0)
            set_error(err, sizeof(err), rc, "cannot start %s: %s", w->spec.path, strerror(-rc));
    }
    if (rc == 0)
        rc = proc_begin(p, &w->spec, &w->c, forked, err, sizeof(err));
    proc_fork_wait_free(p);
    if (rc == 0) {
        if (p->started)
            p->started(p, p->userdata);
        return;
    }
    if (rc != -ECANCELED)
        log_warn("%s", err);
    proc_end_unstarted(p);
}

int proc_fork_async(struct proc *p, const struct proc_spec *spec, struct child_fds *c)
{
    struct fork_server *fs = spec->fork_server;
    if (!fs || spec->ns || spec->control != PROC_CONTROL_SOCKET || !fork_server_ready(fs) ||
        fork_server_busy(fs))
        return -EAGAIN;
    struct proc_fork_wait *w = fork_wait_new(spec);
    p->fork_wait = w;
    if (spec->file_fd > 2 && w->spec.file_fd < 0) {
        proc_fork_wait_free(p);
        return -EAGAIN;
    }
    w->c = *c;
    p->started = spec->started;
    int rc = proc_fork_ask(p, &w->spec, &w->c, false, on_exec_forked);
    if (rc < 0) { /* c keeps the descriptors */
        memset(&w->c, -1, sizeof(w->c));
        proc_fork_wait_free(p);
        p->started = NULL;
        return rc;
    }
    memset(c, -1, sizeof(*c)); /* w->c holds them, until the answer */
    return 0;
}
