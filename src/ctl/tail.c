/* `attunectl execution tail ID [-f] [--stream stdout|stderr|both]`: prints
 * the stdout.log and stderr.log the worker writes for an execution,
 * {worker.artifacts_dir}/{worker name}/{ID}/, which the worker masks as it
 * writes them; with -f, follows them (inotify, else a short poll) until the
 * execution row reaches a final status, then prints what remains. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl/ctl.h"

#define TAIL_STATUS_POLL_MS 500u /* how often -f reads the row */
/* Until the folder is there: the row more often, and the folder at each poll,
 * so that the first lines show as soon as the others. */
#define TAIL_START_POLL_MS 100u
#define TAIL_FILE_POLL_MS 20u /* how often -f looks at the files without inotify */
#define TAIL_DB_LOST_LIMIT_MS 30000u
#define TAIL_CHUNK 65536

/* What the steps return when there is no exit status yet. */
#define TAIL_GO_ON (-1)
#define TAIL_WAIT (-2) /* not there yet: waiting may bring it */

enum { TAIL_STDOUT, TAIL_STDERR };
static const char *const log_names[2] = {"stdout.log", "stderr.log"};

/* What one look at the row says. */
struct tail_look {
    char status[32];
    char worker[160]; /* the worker's name, "" when no worker has it */
    char host[256];   /* the host that worker registered from, "" if unknown */
    bool final;
    bool alive; /* the worker's heartbeat is recent */
};

struct tail {
    const struct config *cfg;
    const char *id; /* as given, checked by ctl_parse_id */
    PGconn *db;
    char *dir; /* the execution's folder, once known */
    int dir_fd;
    int fd[2];     /* the logs, -1 until they exist */
    int out_fd[2]; /* where each goes; -1: not shown */
    int inotify_fd;
};

/* Before a worker claims it: no folder yet. */
static bool is_pending(const char *status)
{
    return strcmp(status, "requested") == 0 || strcmp(status, "scheduling") == 0 ||
           strcmp(status, "scheduled") == 0;
}

static void copy_column(const PGresult *res, int col, char *buf, size_t buflen)
{
    snprintf(buf, buflen, "%s", PQgetisnull(res, 0, col) ? "" : PQgetvalue(res, 0, col));
}

/* Returns 1 with *look filled, 0 when there is no such execution, -1 when the
 * database did not answer (the reason is on the connection). */
static int tail_look(struct tail *t, struct tail_look *look)
{
    static const char sql[] =
        "SELECT e.status::text, w.name, w.host, COALESCE(w.last_heartbeat > NOW() - "
        "make_interval(secs => $2::double precision), false) FROM attune.execution e "
        "LEFT JOIN attune.worker w ON w.id = e.worker WHERE e.id = $1::bigint";
    char max_age[32];
    snprintf(max_age, sizeof(max_age), "%d", 3 * t->cfg->heartbeat_interval);
    const char *values[] = {t->id, max_age};
    PGresult *res = ctl_query_quiet(t->db, sql, 2, values);
    int rc = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        rc = PQntuples(res) == 1;
        if (rc) {
            copy_column(res, 0, look->status, sizeof(look->status));
            copy_column(res, 1, look->worker, sizeof(look->worker));
            copy_column(res, 2, look->host, sizeof(look->host));
            look->final = ctl_status_is_final(look->status);
            look->alive = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
        }
    }
    PQclear(res);
    return rc;
}

/* True when the worker registered from a host other than this one. */
static bool on_other_host(const struct tail_look *look)
{
    char here[256] = "";
    if (!look->host[0] || gethostname(here, sizeof(here) - 1) != 0)
        return false;
    return strcmp(here, look->host) != 0;
}

/* Why the folder is not here, printed; returns the exit status. */
static int missing_folder(const struct tail *t, const struct tail_look *look, const char *dir)
{
    if (on_other_host(look))
        return ctl_error("execution %s ran on host %s (worker %s): its output is in %s there, "
                         "not on this host",
                         t->id, look->host, look->worker, dir);
    return ctl_error("execution %s (%s, worker %s): no folder %s on this host: "
                     "worker.artifacts_dir differs from the worker's, or "
                     "worker.artifact_retention_days removed it",
                     t->id, look->status, look->worker, dir);
}

/* worker.name allows letters, digits, '.', '_' and '-': a row naming anything
 * else (a '/', "..") names no folder of the artifacts root. */
static bool is_folder_name(const char *name)
{
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
           strlen(name);
}

/* Opens the execution's folder. Returns TAIL_GO_ON, TAIL_WAIT, or the exit
 * status after printing why. */
static int tail_open_dir(struct tail *t, const struct tail_look *look, bool follow)
{
    if (!look->worker[0] || is_pending(look->status)) {
        if (follow && !look->final)
            return TAIL_WAIT;
        return ctl_error("execution %s has no output: no worker has started it (status %s)", t->id,
                         look->status);
    }
    if (!is_folder_name(look->worker))
        return ctl_error("execution %s: its worker's name '%s' is not a folder name", t->id,
                         look->worker);
    char *dir = xasprintf("%s/%s/%s", t->cfg->artifacts_dir, look->worker, t->id);
    t->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (t->dir_fd >= 0) {
        t->dir = dir;
        return TAIL_GO_ON;
    }
    int err = errno, rc = TAIL_WAIT;
    if (err != ENOENT)
        rc = ctl_error("cannot open %s: %s", dir, strerror(err));
    else if (!follow || look->final || on_other_host(look))
        rc = missing_folder(t, look, dir);
    free(dir);
    return rc;
}

/* Opens the logs that exist by now. Returns TAIL_GO_ON, or the exit status
 * after printing why. */
static int tail_open_logs(struct tail *t)
{
    for (int i = 0; i < 2; i++) {
        if (t->out_fd[i] < 0 || t->fd[i] >= 0)
            continue;
        int fd = openat(t->dir_fd, log_names[i], O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct stat st;
        if (fd < 0 && errno == ENOENT)
            continue;
        if (fd < 0)
            return ctl_error("cannot read %s/%s: %s", t->dir, log_names[i], strerror(errno));
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
            close(fd);
            return ctl_error("cannot read %s/%s: not a regular file", t->dir, log_names[i]);
        }
        t->fd[i] = fd;
    }
    return TAIL_GO_ON;
}

/* Copies what the logs gained since the last call. Returns TAIL_GO_ON, or
 * the exit status (0 when the reader went away, as tail's). */
static int tail_drain(struct tail *t)
{
    static char buf[TAIL_CHUNK];
    for (int i = 0; i < 2; i++) {
        ssize_t n;
        while (t->fd[i] >= 0 && (n = read(t->fd[i], buf, sizeof(buf))) != 0) {
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return ctl_error("cannot read %s/%s: %s", t->dir, log_names[i], strerror(errno));
            int rc = write_all(t->out_fd[i], buf, (size_t)n);
            if (rc < 0)
                return rc == -EPIPE ? CTL_EXIT_OK : ctl_error("cannot write: %s", strerror(-rc));
        }
    }
    return TAIL_GO_ON;
}

/* Watches the folder for writes; without inotify, tail_wait polls. */
static void tail_watch(struct tail *t)
{
    const uint32_t mask = IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE;
    t->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (t->inotify_fd >= 0 && inotify_add_watch(t->inotify_fd, t->dir, mask) < 0) {
        close(t->inotify_fd);
        t->inotify_fd = -1;
    }
}

/* Sleeps until the folder changes or ms pass. */
static void tail_wait(struct tail *t, unsigned ms)
{
    if (t->inotify_fd < 0) {
        unsigned step = ms < TAIL_FILE_POLL_MS ? ms : TAIL_FILE_POLL_MS;
        struct timespec ts = {step / 1000, (long)(step % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        return;
    }
    struct pollfd p = {.fd = t->inotify_fd, .events = POLLIN};
    char events[4096];
    if (poll(&p, 1, (int)ms) > 0)
        while (read(t->inotify_fd, events, sizeof(events)) > 0)
            ;
}

/* One look at the row while following: TAIL_GO_ON when *look is fresh,
 * TAIL_WAIT when the database is unreachable for now, or the exit status
 * after printing why. */
static int tail_follow_look(struct tail *t, struct tail_look *look, bool seen, uint64_t *lost_since)
{
    char msg[512];
    int rc = tail_look(t, look);
    if (rc == 0)
        return ctl_error(seen ? "execution %s was deleted" : "execution %s not found", t->id);
    if (rc > 0) {
        *lost_since = 0;
        return TAIL_GO_ON;
    }
    uint64_t now = time_monotonic_ms();
    if (!*lost_since)
        *lost_since = now;
    if (now - *lost_since > TAIL_DB_LOST_LIMIT_MS)
        return ctl_error("lost the database while following execution %s: %s", t->id,
                         ctl_db_message(t->db, NULL, msg, sizeof(msg)));
    if (PQstatus(t->db) == CONNECTION_BAD)
        PQreset(t->db);
    return TAIL_WAIT;
}

/* With the folder open: prints what is new. Returns the exit status once the
 * execution is over (look was taken before this read, so all it wrote is
 * printed by then), else TAIL_GO_ON. */
static int tail_step(struct tail *t, const struct tail_look *look)
{
    int rc = tail_open_logs(t);
    if (rc == TAIL_GO_ON)
        rc = tail_drain(t);
    if (rc >= 0)
        return rc;
    if (look->final)
        return CTL_EXIT_OK;
    if (look->worker[0] && !look->alive)
        return ctl_error("worker %s stopped sending heartbeats; execution %s is still %s",
                         look->worker, t->id, look->status);
    return TAIL_GO_ON;
}

/* The folder, once the row names a worker and the folder exists. */
static int tail_follow_dir(struct tail *t, const struct tail_look *look)
{
    int rc = tail_open_dir(t, look, true);
    if (rc == TAIL_GO_ON)
        tail_watch(t);
    return rc;
}

static int tail_follow(struct tail *t)
{
    struct tail_look look = {0};
    uint64_t lost_since = 0, next_look = 0;
    bool seen = false; /* look holds a row */
    for (;;) {
        uint64_t now = time_monotonic_ms();
        if (now >= next_look) {
            int rc = tail_follow_look(t, &look, seen, &lost_since);
            if (rc >= 0)
                return rc;
            seen = seen || rc == TAIL_GO_ON;
            next_look = now + (t->dir_fd >= 0 ? TAIL_STATUS_POLL_MS : TAIL_START_POLL_MS);
        }
        if (seen && t->dir_fd < 0) {
            int rc = tail_follow_dir(t, &look);
            if (rc >= 0)
                return rc;
        }
        if (t->dir_fd >= 0) {
            int rc = tail_step(t, &look);
            if (rc >= 0)
                return rc;
        }
        now = time_monotonic_ms();
        if (next_look > now)
            tail_wait(t, (unsigned)(next_look - now));
    }
}

static int tail_once(struct tail *t)
{
    struct tail_look look;
    char msg[512];
    int rc = tail_look(t, &look);
    if (rc < 0)
        return ctl_error("cannot read execution %s: %s", t->id,
                         ctl_db_message(t->db, NULL, msg, sizeof(msg)));
    if (rc == 0)
        return ctl_error("execution %s not found", t->id);
    rc = tail_open_dir(t, &look, false);
    if (rc == TAIL_GO_ON)
        rc = tail_open_logs(t);
    if (rc == TAIL_GO_ON)
        rc = tail_drain(t);
    return rc < 0 ? CTL_EXIT_OK : rc;
}
/* --stream: which logs are shown and where. Both: stdout.log on standard
 * output and stderr.log on standard error; one: that log on standard output. */
static int tail_streams(struct tail *t, const char *stream)
{
    if (!stream || strcmp(stream, "both") == 0) {
        t->out_fd[TAIL_STDOUT] = STDOUT_FILENO;
        t->out_fd[TAIL_STDERR] = STDERR_FILENO;
    } else if (strcmp(stream, "stdout") == 0) {
        t->out_fd[TAIL_STDOUT] = STDOUT_FILENO;
    } else if (strcmp(stream, "stderr") == 0) {
        t->out_fd[TAIL_STDERR] = STDOUT_FILENO;
    } else {
        return ctl_usage_error("--stream expects stdout, stderr or both, got '%s'", stream);
    }
    return TAIL_GO_ON;
}

static void tail_close(struct tail *t)
{
    for (int i = 0; i < 2; i++)
        if (t->fd[i] >= 0)
            close(t->fd[i]);
    if (t->dir_fd >= 0)
        close(t->dir_fd);
    if (t->inotify_fd >= 0)
        close(t->inotify_fd);
    free(t->dir);
    PQfinish(t->db);
}

/* Exit status: 0 once all is printed (with -f: the execution is over), 1
 * when the execution, its worker or its folder is missing, 2 bad usage. */
int ctl_execution_tail(const struct config *cfg, const struct ctl_options *opts)
{
    struct tail t = {.cfg = cfg, .id = opts->args[0], .dir_fd = -1, .inotify_fd = -1};
    t.fd[0] = t.fd[1] = t.out_fd[0] = t.out_fd[1] = -1;
    long long id;
    if (!ctl_parse_id(opts->args[0], &id))
        return ctl_usage_error("execution id must be a positive whole number, got '%s'",
                               opts->args[0]);
    int status = tail_streams(&t, opts->stream);
    if (status >= 0)
        return status;
    t.db = ctl_db_connect(cfg);
    if (!t.db)
        return CTL_EXIT_FAILED;
    status = opts->follow ? tail_follow(&t) : tail_once(&t);
    tail_close(&t);
    return status;
}
