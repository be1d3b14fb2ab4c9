/* The sweep of a set of uids (see uid_reaper.h). */
#include "exec/uid_reaper.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "exec/spawn.h"

/* The uids a scan saw: few (one per running execution at most). */
struct uid_list {
    uid_t *items;
    size_t len, cap;
};

static void uid_list_add(struct uid_list *l, uid_t uid)
{
    for (size_t i = 0; i < l->len; i++)
        if (l->items[i] == uid)
            return;
    if (l->len == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->items = xrealloc(l->items, l->cap * sizeof(uid_t));
    }
    l->items[l->len++] = uid;
}

bool uid_reaper_in_range(uid_t uid, const void *range)
{
    const struct uid_reaper_range *r = range;
    return r->count > 0 && uid >= r->first && uid - r->first < r->count;
}

/* The real uid of a live process from its status; false for a zombie, a
 * process gone meanwhile, or text not understood. */
static bool proc_live_uid(int proc_fd, const char *pid, uid_t *uid)
{
    char path[32], buf[2048];
    snprintf(path, sizeof(path), "%s/status", pid);
    int fd = openat(proc_fd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    const char *state = strstr(buf, "\nState:");
    const char *uid_line = strstr(buf, "\nUid:");
    char s;
    unsigned long real;
    if (!state || !uid_line || sscanf(state, "\nState: %c", &s) != 1 ||
        sscanf(uid_line, "\nUid: %lu", &real) != 1)
        return false;
    *uid = (uid_t)real;
    return s != 'Z' && s != 'X';
}

/* Whether the process at /proc/<name> may be one of ours. Its folder belongs
 * to its effective uid, or to root when it made itself non-dumpable: any
 * other owner is another user's process, skipped without reading it. */
static bool proc_may_match(int proc_fd, const char *name, uid_reaper_match_fn match,
                           const void *set)
{
    struct stat st;
    if (fstatat(proc_fd, name, &st, 0) < 0)
        return false;
    return st.st_uid == 0 || match(st.st_uid, set);
}

/* One pass over /proc: the matching uids with a live process, and how many
 * such processes. Returns that count or a negative errno. */
static int uid_reaper_scan(uid_reaper_match_fn match, const void *set, struct uid_list *out)
{
    DIR *d = opendir("/proc");
    if (!d)
        return -errno;
    int dfd = dirfd(d), count = 0;
    pid_t self = getpid();
    struct dirent *e;
    out->len = 0;
    while ((e = readdir(d))) {
        uid_t uid;
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (pid <= 0 || *end || pid == self || !proc_may_match(dfd, e->d_name, match, set))
            continue;
        if (proc_live_uid(dfd, e->d_name, &uid) && uid != 0 && match(uid, set)) {
            uid_list_add(out, uid);
            count++;
        }
    }
    closedir(d);
    return count;
}

int uid_reaper_kill(uid_reaper_match_fn match, const void *set, struct uid_reaper_report *rep)
{
    const struct timespec pause = {.tv_sec = 0, .tv_nsec = 1000 * 1000};
    struct uid_list uids = {0};
    int rc = 0;
    memset(rep, 0, sizeof(*rep));
    while (rep->rounds < UID_REAPER_ROUNDS) {
        int alive = uid_reaper_scan(match, set, &uids);
        if (rep->rounds++ == 0 && alive > 0) {
            rep->found = alive;
            rep->uids = (int)uids.len;
        }
        rep->left = alive > 0 ? alive : 0;
        if (alive <= 0) {
            rc = alive;
            break;
        }
        for (size_t i = 0; i < uids.len && rc == 0; i++)
            rc = spawn_kill_uid(uids.items[i]);
        if (rc < 0)
            break;
        nanosleep(&pause, NULL);
    }
    free(uids.items);
    return rc;
}
