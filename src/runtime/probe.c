/* Asking an interpreter its version (see probe.h). It runs before any action,
 * from start-up, so it may wait on the child directly: its pid and nothing
 * else, and never longer than the timeout. */
#include "runtime/probe.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/util.h"
#include "runtime/registry.h"

/* `--version` prints one short line; more than this is not a version. */
#define PROBE_OUTPUT_MAX 512

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

bool probe_find_version(const char *text, char *out, size_t outlen)
{
    const char *p = text;
    while (*p && !is_digit(*p))
        p++;
    size_t len = 0;
    while (is_digit(p[len]) || (p[len] == '.' && is_digit(p[len + 1])))
        len++;
    if (len == 0 || len >= outlen)
        return false;
    memcpy(out, p, len);
    out[len] = '\0';
    return true;
}

/* In a session of its own, with stdout and stderr on out_fd, stdin empty,
 * a clean environment and no other descriptor. */
static int probe_spawn(const char *interpreter, int out_fd, pid_t *pid)
{
    char *const argv[] = {(char *)interpreter, (char *)"--version", NULL};
    char *const envp[] = {(char *)"PATH=" RUNTIME_DEFAULT_PATH, (char *)"LANG=C.UTF-8", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t empty, all;
    sigemptyset(&empty);
    sigfillset(&all);
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    posix_spawn_file_actions_adddup2(&fa, out_fd, 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawnattr_setflags(&attr,
                             POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setsigmask(&attr, &empty);
    posix_spawnattr_setsigdefault(&attr, &all);
    int rc = posix_spawn(pid, interpreter, &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    return -rc;
}

/* Waits for fd to become readable (or pidfd to exit) until deadline. */
static int probe_poll(int fd, uint64_t deadline)
{
    for (;;) {
        uint64_t now = time_monotonic_ms();
        if (now >= deadline)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, (int)(deadline - now));
        if (n > 0)
            return 0;
        if (n == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

/* Reads what the child prints until end of file, a full buffer or deadline. */
static int probe_read(int fd, uint64_t deadline, char *buf, size_t cap)
{
    size_t len = 0;
    int rc = 0;
    while (len < cap && (rc = probe_poll(fd, deadline)) == 0) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n == 0)
            break;
        if (n < 0 && errno != EINTR) {
            rc = -errno;
            break;
        }
        len += n > 0 ? (size_t)n : 0;
    }
    buf[len] = '\0';
    return rc;
}

/* Reaps the child, killing its whole session's group when it is still
 * there at the deadline. Returns its wait status, or -1 if it was killed. */
static int probe_reap(pid_t pid, uint64_t deadline)
{
    int pidfd = pidfd_open(pid, 0);
    if (pidfd >= 0) {
        (void)probe_poll(pidfd, deadline);
        close(pidfd);
    }
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid)
        return status;
    kill(-pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return -1;
}

int probe_start(const char *interpreter, struct probe *probe)
{
    int fds[2];
    probe->pid = 0;
    probe->fd = -1;
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    int rc = probe_spawn(interpreter, fds[1], &probe->pid);
    close(fds[1]);
    if (rc < 0) {
        close(fds[0]);
        probe->pid = 0;
        return rc;
    }
    probe->fd = fds[0];
    return 0;
}

int probe_finish(struct probe *probe, int timeout_ms, char *out, size_t outlen)
{
    if (probe->pid <= 0)
        return -ECHILD;
    uint64_t deadline = time_monotonic_ms() + (uint64_t)timeout_ms;
    char buf[PROBE_OUTPUT_MAX + 1];
    int rc = probe_read(probe->fd, deadline, buf, PROBE_OUTPUT_MAX);
    int status = probe_reap(probe->pid, deadline);
    if (rc == 0 && (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0))
        rc = status < 0 ? -ETIMEDOUT : -EPROTO;
    close(probe->fd);
    probe->fd = -1;
    probe->pid = 0;
    if (rc == 0 && !probe_find_version(buf, out, outlen))
        rc = -EPROTO;
    return rc;
}

int probe_version(const char *interpreter, int timeout_ms, char *out, size_t outlen)
{
    struct probe probe;
    int rc = probe_start(interpreter, &probe);
    return rc < 0 ? rc : probe_finish(&probe, timeout_ms, out, outlen);
}
