/* attune-sandbox-init: the first process of an execution's PID namespace in
 * the sandbox's userns mode (docs/configuration.md, "sandbox").
 *   attune-sandbox-init STATUS_FD PROGRAM ARG0 ARGS...
 * Starts PROGRAM in a process group of its own, passes the termination signals
 * the worker sends to its group on to PROGRAM's group (the first process of a
 * PID namespace ignores every signal it has no handler for), reaps every
 * orphan of the namespace, and when PROGRAM ends writes its wait status (an
 * int) to STATUS_FD and exits: the kernel then kills whatever is left in the
 * namespace. The worker spawns it with those signals blocked; no library but
 * libc. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};
#define N_FORWARDED (sizeof(forwarded) / sizeof(forwarded[0]))

static volatile pid_t action_pid;

static void on_signal(int sig)
{
    int saved = errno;
    if (action_pid > 0)
        kill(-action_pid, sig);
    errno = saved;
}

static void set_handlers(void (*handler)(int))
{
    struct sigaction sa = {.sa_handler = handler};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (size_t i = 0; i < N_FORWARDED; i++)
        sigaction(forwarded[i], &sa, NULL);
}

static void set_forwarded_blocked(int how)
{
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < N_FORWARDED; i++)
        sigaddset(&set, forwarded[i]);
    sigprocmask(how, &set, NULL);
}

/* In the forked child: the action, in its own group, as the worker would
 * have started it. */
static void exec_action(char **argv)
{
    sigset_t empty;
    setpgid(0, 0);
    set_handlers(SIG_DFL);
    sigemptyset(&empty);
    sigprocmask(SIG_SETMASK, &empty, NULL);
    execv(argv[0], argv + 1);
    dprintf(2, "attune-sandbox-init: cannot execute %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* Reaps until the action itself is gone; returns its wait status. */
static int wait_action(pid_t pid)
{
    for (;;) {
        int status;
        pid_t got = waitpid(-1, &status, 0);
        if (got == pid)
            return status;
        if (got < 0 && errno != EINTR)
            return 127 << 8;
    }
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fputs("usage: attune-sandbox-init STATUS_FD PROGRAM ARG0 [ARGS...]\n", stderr);
        return 2;
    }
    int status_fd = atoi(argv[1]);
    /* Handlers first, then the signals held since the spawn come in. */
    set_handlers(on_signal);
    set_forwarded_blocked(SIG_BLOCK);
    fcntl(status_fd, F_SETFD, FD_CLOEXEC);
    pid_t pid = fork();
    if (pid == 0)
        exec_action(argv + 2);
    if (pid < 0) {
        dprintf(2, "attune-sandbox-init: cannot fork: %s\n", strerror(errno));
        return 127;
    }
    setpgid(pid, pid); /* whichever of the two runs first */
    action_pid = pid;
    /* The action's pipes are the action's: the worker sees their end of file
     * when it and what it started are gone. */
    if (status_fd > 0)
        close_range(0, (unsigned)status_fd - 1, 0);
    close_range((unsigned)status_fd + 1, ~0U, 0);
    set_forwarded_blocked(SIG_UNBLOCK);
    int status = wait_action(pid);
    ssize_t n = write(status_fd, &status, sizeof(status));
    (void)n;
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}
