/* The fork server (see fork_server.h): the zygote's start, readiness, exit
 * and replacement on the loop; one request at a time, answered within a
 * short timeout; the reaping of strays in sandbox.mode none. */
#include "exec/fork_server.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/metrics.h"
#include "exec/proc_stat.h"
#include "exec/process.h"
#include "exec/fork_request.h"
#include "exec/sandbox_limits.h"
#include "exec/spawn.h"

/* Forking the warm interpreter takes milliseconds (tens on a loaded virtual
 * machine); a zygote that has not answered in this long is stuck. */
#define FORK_SERVER_ANSWER_MS 1000
/* The zygote holds nothing of an execution, so it should not grow: more than
 * this above its size once ready is a leak, and it is replaced. */
#define FORK_SERVER_GROWTH_KB (64 * 1024)
#define FORK_SERVER_RESTART_MS 100
#define FORK_SERVER_BACKOFF_MAX_MS 60000

struct fork_server {
    sd_event *loop;
    char *path, *name;
    struct strv argv, env;
    pid_t pid; /* -1: none running */
    int pidfd, sock;
    sd_event_source *exit_src, *ready_src, *restart_src;
    bool ready, killed; /* killed: by us, replaced rather than crashed */
    /* The asynchronous request whose answer is awaited (done NULL: none). */
    struct {
        fork_spawned_fn done;
        void *userdata;
        sd_event_source *answer_src, *timeout_src;
    } pending;
    unsigned early_deaths; /* in a row, before it was ready: backs the restarts off */
    uint64_t base_rss_kb;
};

/* Preload failures are logged by the first zygote only: later ones fail alike. */
static bool preload_logged;

static int fork_server_start(struct fork_server *fs, char *err, size_t errlen);

static void drop_source(sd_event_source **src)
{
    *src = sd_event_source_disable_unref(*src);
}

static void close_if_open(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static uint64_t rss_kb(pid_t pid)
{
    char path[64];
    unsigned long size = 0, resident = 0;
    snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (uint64_t)resident * (uint64_t)(sysconf(_SC_PAGESIZE) / 1024);
}

/* Kills the zygote; its exit (on the loop) brings the next one. */
static void fork_server_kill(struct fork_server *fs, const char *why)
{
    if (fs->pid <= 0 || fs->killed)
        return;
    log_warn("%s fork server (pid %d) %s; replacing it (executions run cold meanwhile)", fs->name,
             (int)fs->pid, why);
    fs->killed = true;
    fs->ready = false;
    kill(fs->pid, SIGKILL);
}

static int on_restart(sd_event_source *s, uint64_t usec, void *userdata);

/* Soon after a zygote that served; backing off while each dies before it is ready. */
static void schedule_restart(struct fork_server *fs)
{
    unsigned shift = fs->early_deaths < 10 ? fs->early_deaths : 10;
    uint64_t delay = (uint64_t)FORK_SERVER_RESTART_MS << shift;
    if (delay > FORK_SERVER_BACKOFF_MAX_MS)
        delay = FORK_SERVER_BACKOFF_MAX_MS;
    drop_source(&fs->restart_src);
    sd_event_add_time_relative(fs->loop, &fs->restart_src, CLOCK_MONOTONIC, delay * 1000, 1000,
                               on_restart, fs);
}

static int on_restart(sd_event_source *s, uint64_t usec, void *userdata)
{
    struct fork_server *fs = userdata;
    char err[256];
    (void)s;
    (void)usec;
    drop_source(&fs->restart_src);
    if (fork_server_start(fs, err, sizeof(err)) < 0) {
        log_warn("cannot restart the %s fork server: %s", fs->name, err);
        fs->early_deaths++;
        schedule_restart(fs);
    }
    return 0;
}

static void pending_settle(struct fork_server *fs, int rc, pid_t pid);

/* The answer waiting on sock: the child's pid and an errno (0: it is set
 * up). Returns 0 with *pid set, the zygote's errno, or -EPROTO for no pid;
 * -EPIPE with *missing saying why when no whole answer is there. */
static int take_answer(int sock, pid_t *pid, const char **missing)
{
    int32_t answer[2];
    ssize_t got = recv(sock, answer, sizeof(answer), MSG_DONTWAIT);
    if (got != (ssize_t)sizeof(answer)) {
        bool died = got == 0 || (got < 0 && errno == ECONNRESET); /* killed, request unread */
        *missing = died ? "closed its socket (it died)" : "gave no answer";
        return -EPIPE;
    }
    /* A child whose set-up failed exited at once; it is ours to reap. */
    if (answer[1] != 0 && answer[0] > 0)
        waitpid(answer[0], NULL, 0);
    if (answer[1] != 0)
        return -answer[1];
    *pid = answer[0];
    return answer[0] > 0 ? 0 : -EPROTO;
}

static void fork_server_forget(struct fork_server *fs)
{
    if (fs->pending.done) { /* an answer already sent is still there to read */
        pid_t pid = 0;
        const char *missing = NULL;
        int rc = fs->sock >= 0 ? take_answer(fs->sock, &pid, &missing) : -EPIPE;
        pending_settle(fs, rc < 0 ? -EPIPE : 0, pid);
    }
    drop_source(&fs->exit_src);
    drop_source(&fs->ready_src);
    close_if_open(&fs->pidfd);
    close_if_open(&fs->sock);
    fs->pid = -1;
    fs->ready = false;
}

static int on_zygote_exit(sd_event_source *s, const siginfo_t *si, void *userdata)
{
    struct fork_server *fs = userdata;
    (void)s;
    bool was_ready = fs->ready || fs->killed;
    if (!fs->killed)
        log_warn("%s fork server (pid %d) %s %d; starting another (executions run cold meanwhile)",
                 fs->name, (int)fs->pid,
                 si->si_code == CLD_EXITED ? "exited with status" : "was killed by signal",
                 si->si_status);
    fork_server_forget(fs);
    fs->killed = false;
    metrics_fork_server(METRICS_FORK_RESTART);
    fs->early_deaths = was_ready ? 0 : fs->early_deaths + 1;
    schedule_restart(fs);
    return 0;
}

static void log_preload_failures(const struct fork_server *fs, const json_t *failed)
{
    size_t i;
    json_t *item;
    json_array_foreach(failed, i, item)
    {
        if (json_is_string(item))
            log_warn("%s fork server: cannot preload %s; skipped", fs->name,
                     json_string_value(item));
    }
}

/* The zygote's first message: {"ready": true, "failed": ["module: error"...]}. */
static int on_ready(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    struct fork_server *fs = userdata;
    char buf[16384];
    (void)s;
    (void)revents;
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    drop_source(&fs->ready_src);
    if (n <= 0)
        return 0; /* it died: its exit brings the next one */
    buf[n] = '\0';
    json_t *msg = json_loads(buf, 0, NULL);
    if (json_is_true(json_object_get(msg, "ready"))) {
        json_int_t threads = json_integer_value(json_object_get(msg, "threads"));
        if (!preload_logged)
            log_preload_failures(fs, json_object_get(msg, "failed"));
        if (!preload_logged && threads > 1)
            log_warn("%s fork server: the preloaded modules started %lld threads; a fork copies "
                     "only one, and a lock another held stays held in the child: preload "
                     "modules that start none",
                     fs->name, (long long)threads - 1);
        preload_logged = true;
        fs->ready = true;
        fs->base_rss_kb = rss_kb(fs->pid);
        log_info("%s fork server ready (pid %d, %llu KiB resident)", fs->name, (int)fs->pid,
                 (unsigned long long)fs->base_rss_kb);
    } else {
        fork_server_kill(fs, "sent something other than its readiness");
    }
    json_decref(msg);
    return 0;
}

static int fork_server_start(struct fork_server *fs, char *err, size_t errlen)
{
    int sv[2] = {-1, -1};
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    int rc =
        devnull < 0 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0 ? -errno : 0;
    /* Its stderr is the worker's: a traceback of the zygote itself lands in the log. */
    const struct spawn_fd fds[] = {{devnull, 0}, {devnull, 1}, {2, 2}, {sv[1], 3}};
    const struct spawn_req req = {
        .path = fs->path,
        .argv = fs->argv.items,
        .envp = fs->env.items,
        .cwd = "/",
        .fds = fds,
        .n_fds = 4,
        .close_from = 4,
    };
    if (rc == 0)
        rc = spawn_process(&req, &fs->pid);
    close_if_open(&devnull);
    close_if_open(&sv[1]);
    fs->sock = sv[0];
    if (rc == 0 && (fs->pidfd = pidfd_open(fs->pid, 0)) < 0)
        rc = -errno;
    if (rc == 0)
        rc = sd_event_add_child_pidfd(fs->loop, &fs->exit_src, fs->pidfd, WEXITED, on_zygote_exit,
                                      fs);
    if (rc == 0)
        rc = sd_event_add_io(fs->loop, &fs->ready_src, fs->sock, EPOLLIN, on_ready, fs);
    if (rc < 0) {
        if (fs->pid > 0) {
            kill(fs->pid, SIGKILL);
            waitpid(fs->pid, NULL, 0);
        }
        fork_server_forget(fs);
        return set_error(err, errlen, rc, "cannot start %s: %s", fs->path, strerror(-rc));
    }
    return 0;
}

int fork_server_new(sd_event *loop, const struct fork_server_conf *conf, struct fork_server **out,
                    char *err, size_t errlen)
{
    struct fork_server *fs = xcalloc(1, sizeof(*fs));
    fs->loop = sd_event_ref(loop);
    fs->path = xstrdup(conf->path);
    fs->name = xstrdup(conf->name);
    fs->pid = -1;
    fs->pidfd = fs->sock = -1;
    strv_init(&fs->argv);
    strv_init(&fs->env);
    for (char *const *a = conf->argv; *a; a++)
        strv_push(&fs->argv, *a);
    for (char *const *e = conf->envp; *e; e++)
        strv_push(&fs->env, *e);
    int rc = fork_server_start(fs, err, errlen);
    if (rc < 0) {
        fork_server_free(fs);
        return rc;
    }
    *out = fs;
    return 0;
}

void fork_server_free(struct fork_server *fs)
{
    if (!fs)
        return;
    if (fs->pid > 0) {
        kill(fs->pid, SIGKILL);
        waitpid(fs->pid, NULL, 0);
    }
    fork_server_forget(fs);
    drop_source(&fs->restart_src);
    strv_free(&fs->argv);
    strv_free(&fs->env);
    free(fs->path);
    free(fs->name);
    sd_event_unref(fs->loop);
    free(fs);
}

bool fork_server_ready(const struct fork_server *fs)
{
    return fs->ready;
}

const char *fork_server_path(const struct fork_server *fs)
{
    return fs->path;
}

/* The answer: the child's pid and an errno (0: it is set up), waited for
 * at most timeout_ms. */
static int read_answer(struct fork_server *fs, int timeout_ms, pid_t *pid)
{
    struct pollfd p = {.fd = fs->sock, .events = POLLIN};
    int n;
    do
        n = poll(&p, 1, timeout_ms);
    while (n < 0 && errno == EINTR);
    if (n == 0) {
        fork_server_kill(fs, "did not answer within a second");
        return -ETIMEDOUT;
    }
    const char *missing = NULL;
    int rc = take_answer(fs->sock, pid, &missing);
    if (missing)
        fork_server_kill(fs, missing);
    return rc;
}

/* Counts a served request and replaces a zygote that grew. */
static void answered(struct fork_server *fs, int rc)
{
    if (rc == 0)
        metrics_fork_server(METRICS_FORK_SERVED);
    uint64_t now = rc == 0 ? rss_kb(fs->pid) : 0;
    if (now > fs->base_rss_kb + FORK_SERVER_GROWTH_KB)
        fork_server_kill(fs, "grew by more than 64 MiB");
}

/* The pending request is over: its caller hears of it (first forgotten, so
 * that it may ask again from its callback). */
static void pending_settle(struct fork_server *fs, int rc, pid_t pid)
{
    fork_spawned_fn done = fs->pending.done;
    void *userdata = fs->pending.userdata;
    drop_source(&fs->pending.answer_src);
    drop_source(&fs->pending.timeout_src);
    fs->pending.done = NULL;
    fs->pending.userdata = NULL;
    if (done)
        done(rc == 0 ? pid : -1, rc, userdata);
}

/* The child of an abandoned request: nobody wants it. */
static void kill_unwanted(pid_t pid, int rc, void *userdata)
{
    (void)userdata;
    if (rc == 0 && pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
}

/* A request still pending is answered first: the zygote answers in order. */
static void wait_pending(struct fork_server *fs)
{
    if (!fs->pending.done)
        return;
    pid_t pid = 0;
    int rc = read_answer(fs, FORK_SERVER_ANSWER_MS, &pid);
    answered(fs, rc);
    pending_settle(fs, rc, pid);
}

int fork_server_spawn(struct fork_server *fs, const struct fork_request *req, pid_t *pid)
{
    wait_pending(fs);
    if (!fs->ready)
        return -EAGAIN;
    int rc = fork_request_send(fs->sock, req);
    if (rc < 0) {
        fork_server_kill(fs, "refused a request");
        return rc;
    }
    rc = read_answer(fs, FORK_SERVER_ANSWER_MS, pid);
    answered(fs, rc);
    return rc;
}

static int on_answer(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    struct fork_server *fs = userdata;
    pid_t pid = 0;
    (void)s;
    (void)fd;
    (void)revents;
    int rc = read_answer(fs, 0, &pid);
    answered(fs, rc);
    pending_settle(fs, rc, pid);
    return 0;
}

static int on_answer_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
    struct fork_server *fs = userdata;
    (void)s;
    (void)usec;
    fork_server_kill(fs, "did not answer within a second");
    pending_settle(fs, -ETIMEDOUT, 0);
    return 0;
}

int fork_server_spawn_async(struct fork_server *fs, const struct fork_request *req,
                            fork_spawned_fn done, void *userdata)
{
    if (!fs->ready || fs->pending.done)
        return -EAGAIN;
    int rc = fork_request_send(fs->sock, req);
    if (rc < 0) {
        fork_server_kill(fs, "refused a request");
        return rc;
    }
    rc = sd_event_add_io(fs->loop, &fs->pending.answer_src, fs->sock, EPOLLIN, on_answer, fs);
    if (rc == 0)
        rc = sd_event_add_time_relative(fs->loop, &fs->pending.timeout_src, CLOCK_MONOTONIC,
                                        FORK_SERVER_ANSWER_MS * 1000ull, 1000, on_answer_timeout,
                                        fs);
    fs->pending.done = done;
    fs->pending.userdata = userdata;
    if (rc < 0) { /* it is asked for already: wait for it here */
        wait_pending(fs);
        return 0;
    }
    return 0;
}

bool fork_server_busy(const struct fork_server *fs)
{
    return fs->pending.done != NULL;
}

void fork_server_abandon(struct fork_server *fs, void *userdata)
{
    if (fs && fs->pending.done && fs->pending.userdata == userdata) {
        fs->pending.done = kill_unwanted;
        fs->pending.userdata = NULL;
    }
}

void fork_server_count_cold(void)
{
    metrics_fork_server(METRICS_FORK_COLD);
}

static void reap_strays_of(const char *children, pid_t keep)
{
    FILE *f = fopen(children, "re");
    long pid;
    if (!f)
        return;
    while (fscanf(f, "%ld", &pid) == 1) {
        char state;
        pid_t ppid;
        if ((pid_t)pid == keep || proc_is_live((pid_t)pid))
            continue;
        if (proc_stat_read((pid_t)pid, &state, &ppid) && state == 'Z')
            waitpid((pid_t)pid, NULL, WNOHANG);
    }
    fclose(f);
}

void fork_server_reap_strays(const struct fork_server *fs)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    if (!d)
        return;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[300];
        snprintf(path, sizeof(path), "/proc/self/task/%s/children", e->d_name);
        reap_strays_of(path, fs ? fs->pid : -1);
    }
    closedir(d);
}
