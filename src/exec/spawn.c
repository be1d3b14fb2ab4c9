/* The clone-based spawn (see spawn.h). The child shares the parent's memory
 * until it executes, so it only makes raw system calls and writes nothing but
 * its own stack and the error word the parent reads once it resumes. */
#include "exec/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec/sandbox_limits.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#endif

#define SPAWN_STACK_SIZE (64 * 1024)

struct spawn_child {
    const struct spawn_req *req;
    pid_t parent;
    int parent_pidfd; /* namespaces: getppid() is 0 there, whoever the parent */
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

/* Namespaces (req->ns): the child's side, raw system calls only. */

static int write_proc_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    int saved = errno;
    close(fd);
    errno = saved;
    return n == (ssize_t)len ? 0 : -1;
}

/* mkdir -p, on the child's stack. */
static int make_dirs(const char *target)
{
    char path[PATH_MAX];
    size_t len = strlen(target);
    if (len >= sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(path, target, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
            return -1;
        path[i] = saved;
    }
    return 0;
}

static int ns_readonly(int fd, const char *path)
{
    struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY};
    return mount_setattr(fd, path, AT_RECURSIVE | (*path ? 0 : AT_EMPTY_PATH), &ro, sizeof(ro));
}

static int ns_tree_attach(const struct spawn_mount *m, int fd)
{
    /* An optional source that was not there; else the target was there as
     * well, unless a tmpfs of ours covers it now. */
    if (fd < 0)
        return 0;
    if (m->readonly && ns_readonly(fd, "") < 0)
        return -1;
    int rc = move_mount(fd, "", AT_FDCWD, m->target, MOVE_MOUNT_F_EMPTY_PATH);
    /* Folders are made only where missing (each mkdir is a system call). */
    if (rc < 0 && errno == ENOENT && m->mkdir && make_dirs(m->target) == 0)
        rc = move_mount(fd, "", AT_FDCWD, m->target, MOVE_MOUNT_F_EMPTY_PATH);
    return rc;
}

static int ns_mount(const struct spawn_mount *m)
{
    int rc = mount(m->source, m->target, m->fstype, m->flags, m->data);
    if (rc < 0 && errno == ENOENT && m->mkdir && make_dirs(m->target) == 0)
        rc = mount(m->source, m->target, m->fstype, m->flags, m->data);
    return rc;
}

static int ns_mount_step(const struct spawn_mount *m, int *trees)
{
    switch (m->op) {
    case SPAWN_TREE_OPEN:
        trees[m->tree] =
            open_tree(AT_FDCWD, m->source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
        return trees[m->tree] < 0 ? -1 : 0;
    case SPAWN_TREE_ATTACH:
        return ns_tree_attach(m, trees[m->tree]);
    case SPAWN_READONLY:
        return ns_readonly(AT_FDCWD, m->target);
    case SPAWN_MOUNT:
        break;
    }
    return ns_mount(m);
}

static int ns_mounts(const struct spawn_ns *ns)
{
    int trees[SPAWN_TREES_MAX];
    for (int i = 0; i < SPAWN_TREES_MAX; i++)
        trees[i] = -1;
    for (int i = 0; i < ns->n_mounts; i++) {
        const struct spawn_mount *m = &ns->mounts[i];
        if (ns_mount_step(m, trees) < 0 && !(m->optional && errno == ENOENT))
            return -1;
    }
    /* Closed by the exec, but the copies are the namespace's now. */
    for (int i = 0; i < SPAWN_TREES_MAX; i++)
        if (trees[i] >= 0)
            close(trees[i]);
    return 0;
}

/* The worker is not dumpable, which makes its /proc/self files root's, out
 * of reach of its own uid; the flag belongs to the memory the child shares
 * with the suspended worker, so it is lifted only while the maps are written.
 * Nothing outside the worker's uid may use the moment, and an action, in a
 * PID namespace of its own, cannot name the worker. */
static int ns_write_maps(const struct spawn_ns *ns)
{
    if (prctl(PR_SET_DUMPABLE, 1) < 0)
        return -1;
    int rc = write_proc_file("/proc/self/setgroups", "deny") < 0 ||
                     write_proc_file("/proc/self/uid_map", ns->uid_map) < 0 ||
                     write_proc_file("/proc/self/gid_map", ns->gid_map) < 0
                 ? -1
                 : 0;
    int saved = errno;
    prctl(PR_SET_DUMPABLE, 0);
    errno = saved;
    return rc;
}

static int ns_setup(const struct spawn_ns *ns)
{
    if (ns_write_maps(ns) < 0)
        return -1;
    if (ns_mounts(ns) < 0)
        return -1;
    return ns->exec_check ? access(ns->exec_check, X_OK) : 0;
}

/* In a new PID namespace getppid() is 0 whoever the parent: whether the
 * worker died before the parent-death signal was armed is asked of its pidfd
 * (before the descriptors are closed). No credential change follows that
 * would clear the signal. */
static int ns_arm_parent_death(const struct spawn_child *c)
{
    struct pollfd p = {.fd = c->parent_pidfd, .events = POLLIN};
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
        return -1;
    if (poll(&p, 1, 0) != 0) {
        errno = ESRCH;
        return -1;
    }
    return 0;
}

/* The init takes these with rt_sigtimedwait, blocked (spawn.h). */
static void ns_signal_mask(sigset_t *set)
{
    static const int held[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD};
    for (size_t i = 0; i < sizeof(held) / sizeof(held[0]); i++)
        sigaddset(set, held[i]);
}

/* The program, started by the namespace's first process (spawn.h). */
struct ns_action {
    const struct spawn_req *req;
    volatile int err;
};

/* The program's side makes four system calls; the clone stack is mapped
 * afresh for every spawn, so each page it touches is a page fault, and a
 * larger array would be probed page by page (stack clash protection). */
#define NS_ACTION_STACK_SIZE 4096

static int ns_action_main(void *arg)
{
    struct ns_action *a = arg;
    const struct spawn_req *r = a->req;
    sigset_t empty;
    if (close(r->ns->status_fd) < 0 || setpgid(0, 0) < 0)
        goto fail;
    sigemptyset(&empty);
    sigprocmask(SIG_SETMASK, &empty, NULL);
    execve(r->path, r->argv, r->envp);
fail:
    a->err = errno ? errno : EINVAL;
    _exit(127);
}

/* The decimal digits of n (not negative) into buf, which holds 12 bytes. */
static char *format_int(char *buf, int n)
{
    char *p = buf + 11;
    *p = '\0';
    do
        *--p = (char)('0' + n % 10);
    while ((n /= 10) > 0);
    return p;
}

/* The namespace's first process: starts the program as its child on a stack
 * of its own (both share the worker's memory until they execute), then
 * becomes the init. Returns only on failure, with errno set. */
static void ns_start_action_and_init(const struct spawn_req *r)
{
    char stack[NS_ACTION_STACK_SIZE] __attribute__((aligned(16)));
    struct ns_action a = {.req = r, .err = 0};
    pid_t pid = clone(ns_action_main, stack + sizeof(stack), CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
    if (pid < 0)
        return;
    if (a.err) {
        errno = a.err;
        return;
    }
    char fd_buf[12], pid_buf[12];
    char *const argv[] = {(char *)r->ns->init_path, format_int(fd_buf, r->ns->status_fd),
                          format_int(pid_buf, pid), NULL};
    static char *const no_env[] = {NULL};
    /* The program's descriptors are the program's: the worker sees their end
     * of file when it and what it started are gone. */
    if (close_range(0, (unsigned)r->ns->status_fd - 1, 0) < 0 && errno != ENOSYS)
        return;
    execve(r->ns->init_path, argv, no_env);
}

static int child_main(void *arg)
{
    struct spawn_child *c = arg;
    const struct spawn_req *r = c->req;
    sigset_t empty;
    reset_signals();
    /* Limits first (the cgroup.procs write needs the worker's credentials),
     * then the namespaces. */
    if (setsid() < 0 || (r->limits && spawn_limits_apply(r->limits) < 0) ||
        (r->ns && (ns_arm_parent_death(c) < 0 || ns_setup(r->ns) < 0)))
        goto fail;
    if (move_fds(r) < 0 || (r->cwd && chdir(r->cwd) < 0))
        goto fail;
    if (r->uid && drop_credentials(r->uid, r->gid) < 0)
        goto fail;
    /* After the uid change, which clears the parent-death signal. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
        goto fail;
    /* The parent died before the signal was armed: nobody supervises us. */
    if (!r->ns && getppid() != c->parent) {
        errno = ESRCH;
        goto fail;
    }
    sigemptyset(&empty);
    if (r->ns)
        ns_signal_mask(&empty);
    sigprocmask(SIG_SETMASK, &empty, NULL);
    if (r->ns && r->ns->init_path)
        ns_start_action_and_init(r);
    else
        execve(r->path, r->argv, r->envp);
fail:
    c->err = errno ? errno : EINVAL;
    _exit(127);
}

/* Runs fn in a child sharing our memory and waits until it has executed a
 * program or exited; all signals stay blocked here meanwhile, so no handler
 * of ours runs on the child's stack. */
static pid_t clone_vfork(int (*fn)(void *), void *arg, int flags)
{
    void *stack = mmap(NULL, SPAWN_STACK_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED)
        return -1;
#ifdef __SANITIZE_ADDRESS__
    /* The child's frames never return, so their redzones stay poisoned in the
     * shadow memory we share: a later stack mapped at the same address would
     * inherit them. */
    __asan_unpoison_memory_region(stack, SPAWN_STACK_SIZE);
#endif
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t pid =
        clone(fn, (char *)stack + SPAWN_STACK_SIZE, CLONE_VM | CLONE_VFORK | SIGCHLD | flags, arg);
    int saved = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    munmap(stack, SPAWN_STACK_SIZE);
    errno = saved;
    return pid;
}

int spawn_process(const struct spawn_req *req, pid_t *pid)
{
    struct spawn_child c = {.req = req, .parent = getpid(), .parent_pidfd = -1, .err = 0};
    if (req->ns && (c.parent_pidfd = pidfd_open(c.parent, 0)) < 0)
        return -errno;
    pid_t child = clone_vfork(child_main, &c, req->ns ? req->ns->clone_flags : 0);
    int saved = errno;
    if (c.parent_pidfd >= 0)
        close(c.parent_pidfd);
    if (child < 0)
        return -saved;
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
    pid_t child = clone_vfork(kill_main, &k, 0);
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

struct probe_child {
    char uid_map[32], gid_map[32];
    volatile int err;
};

/* The probe's child: what a sandboxed child does first, then nothing. */
static int probe_main(void *arg)
{
    struct probe_child *p = arg;
    static const struct spawn_mount mounts[] = {
        {.target = "/", .flags = MS_REC | MS_PRIVATE},
        {.source = "proc",
         .target = "/proc",
         .fstype = "proc",
         .flags = MS_NOSUID | MS_NODEV | MS_NOEXEC},
    };
    const struct spawn_ns ns = {
        .uid_map = p->uid_map, .gid_map = p->gid_map, .mounts = mounts, .n_mounts = 2};
    if (ns_setup(&ns) < 0) {
        p->err = errno ? errno : EPERM;
        _exit(1);
    }
    _exit(0);
}

int spawn_probe_namespaces(void)
{
    struct probe_child p = {.err = 0};
    snprintf(p.uid_map, sizeof(p.uid_map), "%u %u 1", (unsigned)geteuid(), (unsigned)geteuid());
    snprintf(p.gid_map, sizeof(p.gid_map), "%u %u 1", (unsigned)getegid(), (unsigned)getegid());
    pid_t child = clone_vfork(probe_main, &p, SPAWN_NS_FLAGS);
    if (child < 0)
        return -errno;
    waitpid(child, NULL, 0);
    return -p.err;
}
