/* The guardian (see guardian.h). Orders are lines on a pipe: "+PGID", "-PGID"
 * and "bye". End of file without "bye" means the worker died. */
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

void guardian_watch(struct guardian *g, pid_t pgid)
{
    char line[32];
    snprintf(line, sizeof(line), "+%d\n", (int)pgid);
    guardian_send(g, line);
}

void guardian_forget(struct guardian *g, pid_t pgid)
{
    char line[32];
    snprintf(line, sizeof(line), "-%d\n", (int)pgid);
    guardian_send(g, line);
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

struct pgid_set {
    pid_t *items;
    size_t len, cap;
};

static void pgid_set_apply(struct pgid_set *s, const char *line)
{
    int64_t v;
    if (!parse_int64(line + 1, &v) || v <= 1)
        return;
    if (line[0] == '+') {
        if (s->len == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 64;
            s->items = xrealloc(s->items, s->cap * sizeof(pid_t));
        }
        s->items[s->len++] = (pid_t)v;
        return;
    }
    for (size_t i = 0; i < s->len; i++) {
        if (s->items[i] == (pid_t)v) {
            s->items[i] = s->items[--s->len];
            return;
        }
    }
}

int guardian_main(int fd)
{
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    FILE *in = fdopen(fd, "r");
    if (!in)
        return 1;
    struct pgid_set set = {0};
    char line[64];
    bool bye = false;
    while (fgets(line, sizeof(line), in)) {
        line[strcspn(line, "\n")] = '\0';
        if (strcmp(line, "bye") == 0)
            bye = true;
        else
            pgid_set_apply(&set, line);
    }
    if (!bye && set.len > 0) {
        for (size_t i = 0; i < set.len; i++)
            kill(-set.items[i], SIGKILL);
        fprintf(stderr,
                "attune-worker guardian: the worker died; killed %zu action process "
                "groups\n",
                set.len);
    }
    free(set.items);
    fclose(in);
    return 0;
}
