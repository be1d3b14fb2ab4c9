/* attune-sandbox-init: the first process of an execution's PID namespace in
 * the sandbox's userns mode (docs/configuration.md, "sandbox").
 *   attune-sandbox-init STATUS_FD ACTION_PID
 * The worker's spawn has already started the action as this process's child
 * ACTION_PID, leading a process group of its own, and left only STATUS_FD
 * open (exec/spawn.h): so the action starts while this program loads. It
 * passes the termination signals the worker sends to its group on to the
 * action's group, reaps every orphan of the namespace, and when the action
 * ends writes its wait status (an int) to STATUS_FD and exits: the kernel
 * then kills whatever is left in the namespace. The worker spawns it with
 * those signals and SIGCHLD blocked, and blocked they stay: the init takes
 * them with rt_sigtimedwait, so it needs no handler (the first process of a
 * PID namespace would drop a signal it has no handler for, unless blocked).
 * No C library where sys.h can do without. */
#include <sys/wait.h>

#include "sandbox_init/sys.h"

static int parse_fd_or_pid(const char *text)
{
    long n = 0;
    if (!*text)
        return -1;
    for (; *text; text++) {
        if (*text < '0' || *text > '9' || n > 0x3fffffff)
            return -1;
        n = n * 10 + (*text - '0');
    }
    return (int)n;
}

/* Reaps every child that has ended; true when the action was one of them. */
static int reap(pid_t action, int *status)
{
    int found = 0, st;
    long got;
    while ((got = init_wait4(-1, &st, WNOHANG)) > 0)
        if (got == action) {
            *status = st;
            found = 1;
        }
    /* No child left at all, and the action not seen: nothing to wait for. */
    if (got == -ECHILD && !found) {
        *status = 127 << 8;
        found = 1;
    }
    return found;
}

int init_main(int argc, char **argv)
{
    static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};
    if (argc != 3)
        return 2;
    int status_fd = parse_fd_or_pid(argv[1]);
    pid_t action = parse_fd_or_pid(argv[2]);
    if (status_fd < 0 || action <= 0)
        return 2;
    init_sigset set = INIT_SIGBIT(SIGCHLD);
    for (unsigned i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
        set |= INIT_SIGBIT(forwarded[i]);
    int status = 0;
    /* A SIGCHLD already pending (the action ended before we started) comes
     * first; so does a signal the worker sent meanwhile. */
    for (;;) {
        long sig = init_sigwait(&set);
        if (sig == SIGCHLD) {
            if (reap(action, &status))
                break;
        } else if (sig > 0) {
            init_kill(-action, (int)sig);
        } else if (sig != -EINTR) {
            status = 127 << 8; /* cannot wait: the namespace goes with us */
            break;
        }
    }
    long n = init_write(status_fd, &status, sizeof(status));
    (void)n;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

INIT_PROGRAM
