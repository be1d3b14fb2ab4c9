/* The clone-based spawn (see spawn.h). The child shares the parent's memory
 * until it executes, so it only makes raw system calls and writes nothing but
 * its own stack and the error word the parent reads once it resumes. */
#include "exec/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define SPAWN_STACK_SIZE (64 * 1024)

struct spawn_child {
    const struct spawn_req *req;
    pid_t parent;
    volatile int err; /* set by the child when it cannot go on */
};

/* glibc's setresuid and friends apply the change to every thread of the
 * process through shared state; the raw calls change this task only. */
static int drop_credentials(uid_t uid, gid_t gid)
{
    if (syscall(SYS_setgroups, 1, &gid) < 0 || syscall(SYS_setresgid, gid, gid, gid) < 0 ||
        syscall(SYS_setresuid, uid, uid, uid) < 0)
        return -1;
    return 0;
}

static void reset_signals(void)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    for (int sig = 1; sig < NSIG; sig++)
        sigaction(sig, &dfl, NULL); /* SIGKILL, SIGSTOP and glibc's own refuse: fine */
}

static int move_fds(const struct spawn_req *r)
{
    for (int i = 0; i < r->n_fds; i++) {
        const struct spawn_fd *f = &r->fds[i];
        int rc = f->src < 0         ? close(f->dst)
                 : f->src == f->dst ? fcntl(f->dst, F_SETFD, 0) /* keep it across exec */
                                    : dup2(f->src, f->dst);
        if (rc < 0 && !(f->src < 0 && errno == EBADF))
            return -1;
    }
    return close_range((unsigned)r->close_from, ~0U, 0) < 0 && errno != ENOSYS ? -1 : 0;
}

static int child_main(void *arg)
{
    struct spawn_child *c = arg;
    const struct spawn_req *r = c->req;
    sigset_t empty;
    reset_signals();
    if (setsid() < 0 || move_fds(r) < 0 || (r->cwd && chdir(r->cwd) < 0))
        goto fail;
    if (r->uid && drop_credentials(r->uid, r->gid) < 0)
        goto fail;
    /* After the uid change, which clears the parent-death signal. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
        goto fail;
    /* The parent died before the signal was armed: nobody supervises us. */
    if (getppid() != c->parent) {
        errno = ESRCH;
        goto fail;
    }
    sigemptyset(&empty);
    sigprocmask(SIG_SETMASK, &empty, NULL);
    execve(r->path, r->argv, r->envp);
fail:
    c->err = errno ? errno : EINVAL;
    _exit(127);
}

/* Runs fn in a child sharing our memory and waits until it has executed a
 * program or exited; all signals stay blocked here meanwhile, so no handler
 * of ours runs on the child's stack. */
static pid_t clone_vfork(int (*fn)(void *), void *arg)
{
    void *stack = mmap(NULL, SPAWN_STACK_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED)
        return -1;
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t pid = clone(fn, (char *)stack + SPAWN_STACK_SIZE, CLONE_VM | CLONE_VFORK | SIGCHLD, arg);
    int saved = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    munmap(stack, SPAWN_STACK_SIZE);
    errno = saved;
    return pid;
}

int spawn_process(const struct spawn_req *req, pid_t *pid)
{
    struct spawn_child c = {.req = req, .parent = getpid(), .err = 0};
    pid_t child = clone_vfork(child_main, &c);
    if (child < 0)
        return -errno;
    if (c.err) {
        int err = c.err;
        waitpid(child, NULL, 0);
        return -err;
    }
    *pid = child;
    return 0;
}

struct kill_child {
    uid_t uid;
    int known; /* -1: kill without counting */
    volatile int err;
    volatile int busy; /* set when uid held more than known processes */
};

/* Called on uid with RLIMIT_NPROC at known, set before the uid change: whether
 * uid held more than known processes besides the caller. The kernel counts
 * every task of a uid, zombies included; a change of real uid to one over its
 * RLIMIT_NPROC marks the process, and its next execve fails with EAGAIN while
 * the uid is still over (execve(2)). The path is a folder, never executed:
 * EACCES says the count was within the limit; any other failure, not known. */
static bool uid_busy(void)
{
    static char *const argv[] = {NULL};
    execve("/", argv, argv);
    return errno != EACCES;
}

static int kill_main(void *arg)
{
    struct kill_child *k = arg;
    const struct rlimit lim = {(rlim_t)k->known, (rlim_t)k->known};
    if (k->known >= 0 && setrlimit(RLIMIT_NPROC, &lim) < 0)
        k->known = -1; /* then kill without counting */
    if (drop_credentials(k->uid, k->uid) < 0) {
        k->err = errno;
        _exit(1);
    }
    if (k->known >= 0 && !uid_busy())
        _exit(0);
    k->busy = 1;
    /* kill(-1) succeeds even when it signalled nothing, so the caller looks
     * for survivors; a second round catches what forked during the first. */
    for (int round = 0; round < 2; round++)
        kill(-1, SIGKILL);
    _exit(0);
}

static int kill_uid(uid_t uid, int known)
{
    struct kill_child k = {.uid = uid, .known = known, .err = 0, .busy = 0};
    if (uid == 0)
        return -EINVAL;
    pid_t child = clone_vfork(kill_main, &k);
    if (child < 0)
        return -errno;
    waitpid(child, NULL, 0);
    return k.err ? -k.err : k.busy;
}

int spawn_kill_uid(uid_t uid)
{
    int rc = kill_uid(uid, -1);
    return rc < 0 ? rc : 0;
}

int spawn_kill_uid_extra(uid_t uid, int known)
{
    return kill_uid(uid, known < 0 ? 0 : known);
}
