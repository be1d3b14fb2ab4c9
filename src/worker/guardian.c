/* The guardian (see guardian.h). Orders are lines on a pipe: "+PGID", "-PGID",
 * "+uUID", "-uUID" and "bye". End of file without "bye" means the worker died. */
#include "worker/guardian.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "exec/sandbox.h"
#include "exec/uid_reaper.h"
#include "executor/executor.h"

struct guardian {
    int fd; /* write end of the order pipe */
    pid_t pid;
};

static void guardian_send(struct guardian *g, const char *line)
{
    if (!g || g->fd < 0)
        return;
    /* Orders are far below PIPE_BUF, so each write is atomic and complete. */
    if (write_all(g->fd, line, strlen(line)) < 0) {
        log_warn("the guardian process is gone (%s); actions are no longer guarded",
                 strerror(errno));
        close(g->fd);
        g->fd = -1;
    }
}

struct guardian *guardian_start(void)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        log_warn("cannot start the guardian: %s", strerror(errno));
        return NULL;
    }
    /* A fork, not posix_spawn: this runs first thing in a small process with
     * no threads and no connections yet, and spares an exec of the service's
     * thirty-odd libraries. */
    pid_t pid = fork();
    if (pid < 0) {
        log_warn("cannot start the guardian: %s", strerror(errno));
        close(p[0]);
        close(p[1]);
        return NULL;
    }
    if (pid == 0) {
        close(p[1]);
        /* Its own process group: a Ctrl-C meant for the worker does not reach it. */
        setpgid(0, 0);
        int fd = dup2(p[0], 3);
        closefrom(4);
        _exit(fd == 3 ? guardian_main(3) : 1);
    }
    close(p[0]);
    struct guardian *g = xcalloc(1, sizeof(*g));
    g->fd = p[1];
    g->pid = pid;
    return g;
}

static void guardian_order(struct guardian *g, char sign, const char *kind, long long id)
{
    char line[40];
    snprintf(line, sizeof(line), "%c%s%lld\n", sign, kind, id);
    guardian_send(g, line);
}

void guardian_watch(struct guardian *g, pid_t pgid)
{
    guardian_order(g, '+', "", pgid);
}

void guardian_forget(struct guardian *g, pid_t pgid)
{
    guardian_order(g, '-', "", pgid);
}

void guardian_watch_uid(struct guardian *g, uid_t uid)
{
    guardian_order(g, '+', "u", (long long)uid);
}

void guardian_forget_uid(struct guardian *g, uid_t uid)
{
    guardian_order(g, '-', "u", (long long)uid);
}

static void on_spawn(pid_t pgid, void *userdata)
{
    guardian_watch(userdata, pgid);
}

static void on_reap(pid_t pgid, void *userdata)
{
    guardian_forget(userdata, pgid);
}

static void on_uid(uid_t uid, bool taken, void *userdata)
{
    if (taken)
        guardian_watch_uid(userdata, uid);
    else
        guardian_forget_uid(userdata, uid);
}

void guardian_attach(struct guardian *g, struct executor_settings *s)
{
    s->on_spawn = on_spawn;
    s->on_reap = on_reap;
    s->hook_userdata = g;
    if (s->sandbox)
        sandbox_set_uid_hook(s->sandbox, on_uid, g);
}

void guardian_stop(struct guardian *g)
{
    if (!g)
        return;
    guardian_send(g, "bye\n");
    if (g->fd >= 0)
        close(g->fd);
    waitpid(g->pid, NULL, 0);
    free(g);
}

/* The guardian process */

static void ids_add(struct guardian_ids *s, int64_t v)
{
    if (s->len == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->items = xrealloc(s->items, s->cap * sizeof(*s->items));
    }
    s->items[s->len++] = v;
}

static void ids_remove(struct guardian_ids *s, int64_t v)
{
    for (size_t i = 0; i < s->len; i++) {
        if (s->items[i] == v) {
            s->items[i] = s->items[--s->len];
            return;
        }
    }
}

bool guardian_orders_apply(struct guardian_orders *o, const char *line)
{
    if (strcmp(line, "bye") == 0) {
        o->bye = true;
        return true;
    }
    if (line[0] != '+' && line[0] != '-')
        return false;
    bool is_uid = line[1] == 'u';
    const char *digits = line + 1 + is_uid;
    int64_t v;
    if (*digits < '0' || *digits > '9' || !parse_int64(digits, &v))
        return false;
    /* kill(-1) and kill(-0) would reach far more than a group; uid 0 is root. */
    if (is_uid ? v < 1 || v > (int64_t)UINT32_MAX - 1 : v <= 1 || v > INT32_MAX)
        return false;
    struct guardian_ids *set = is_uid ? &o->uids : &o->groups;
    if (line[0] == '+')
        ids_add(set, v);
    else
        ids_remove(set, v);
    return true;
}

void guardian_orders_free(struct guardian_orders *o)
{
    free(o->groups.items);
    free(o->uids.items);
    memset(o, 0, sizeof(*o));
}

static bool held_uid(uid_t uid, const void *set)
{
    const struct guardian_ids *uids = set;
    for (size_t i = 0; i < uids->len; i++)
        if (uids->items[i] == (int64_t)uid)
            return true;
    return false;
}

/* The worker died: its groups first (one signal each), then whatever is left
 * on its uids, escapers that left their group included. */
static void guardian_kill_all(const struct guardian_orders *o)
{
    for (size_t i = 0; i < o->groups.len; i++)
        kill(-(pid_t)o->groups.items[i], SIGKILL);
    if (o->groups.len > 0)
        fprintf(stderr,
                "attune-worker guardian: the worker died; killed %zu action process "
                "groups\n",
                o->groups.len);
    if (o->uids.len == 0)
        return;
    struct uid_reaper_report rep;
    int rc = uid_reaper_kill(held_uid, &o->uids, &rep);
    fprintf(stderr,
            "attune-worker guardian: the worker died; swept %zu sandbox uids: %d processes "
            "found on %d of them, %d left after %d rounds%s%s\n",
            o->uids.len, rep.found, rep.uids, rep.left, rep.rounds, rc < 0 ? ": " : "",
            rc < 0 ? strerror(-rc) : "");
}

int guardian_main(int fd)
{
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    FILE *in = fdopen(fd, "r");
    if (!in)
        return 1;
    struct guardian_orders orders = {0};
    char line[64];
    while (fgets(line, sizeof(line), in)) {
        line[strcspn(line, "\n")] = '\0';
        guardian_orders_apply(&orders, line);
    }
    if (!orders.bye)
        guardian_kill_all(&orders);
    guardian_orders_free(&orders);
    fclose(in);
    return 0;
}
