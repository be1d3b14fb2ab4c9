/* The second phase of a process started in two (see proc_prespawn in
 * process.h): a spare's exit watched while it waits, and proc_arm, which
 * hands it its work and then supervises it as proc_start's child. */
#include <errno.h>
#include <string.h>
#include <sys/wait.h>

#include "exec/process_supervise.h"

static int proc_on_idle_exit(sd_event_source *s, const siginfo_t *si, void *userdata)
{
    struct proc *p = userdata;
    (void)s;
    p->reaped = true;
    p->result.exited = si->si_code == CLD_EXITED;
    p->result.exit_code = p->result.exited ? si->si_status : 0;
    p->result.signal = p->result.exited ? 0 : si->si_status;
    p->child_src = sd_event_source_disable_unref(p->child_src);
    p->finished = true;
    p->done(p, p->userdata);
    return 0;
}

int proc_watch_idle(struct proc *p)
{
    return sd_event_add_child_pidfd(p->loop, &p->child_src, p->pidfd, WEXITED, proc_on_idle_exit,
                                    p);
}

/* Whether the spare has exited, even when the loop has not seen it yet. */
static bool proc_gone(const struct proc *p)
{
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    if (p->reaped || p->finished)
        return true;
    if (waitid(P_PIDFD, (id_t)p->pidfd, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
        return true;
    return si.si_pid != 0;
}

int proc_arm(struct proc *p, const struct proc_spec *spec, proc_done_fn done, void *userdata,
             char *err, size_t errlen)
{
    if (spec->control != p->control)
        return set_error(err, errlen, EINVAL, "process %d: not the control channel it has",
                         (int)p->pid);
    if (proc_gone(p))
        return set_error(err, errlen, ESRCH, "the spare process %d is gone", (int)p->pid);
    p->child_src = sd_event_source_disable_unref(p->child_src);
    p->idle = false;
    p->reply_max = spec->reply_max;
    if (spec->kill_grace_ms)
        p->kill_grace_ms = spec->kill_grace_ms;
    p->out_sink = spec->stdout_sink;
    p->err_sink = spec->stderr_sink;
    p->done = done;
    p->userdata = userdata;
    p->started_ms = time_monotonic_ms();
    int rc = proc_watch(p, spec);
    if (rc < 0)
        return set_error(err, errlen, rc, "cannot watch process: %s", strerror(-rc));
    return 0;
}
