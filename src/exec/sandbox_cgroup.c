/* The cgroup v2 side of the per-execution limits (see sandbox_cgroup.h). */
#include "exec/sandbox_cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "exec/proc_stat.h"

/* Where a cgroup2 hierarchy is mounted: pure v2, then hybrid. */
static const char *const cgroup2_mounts[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"};
/* cpu.max's period, in microseconds (the kernel's default). */
#define CPU_PERIOD_US 100000
/* At 1 ms apart: how long the removal waits for killed tasks to go. */
#define REMOVE_ROUNDS 200
#define CGROUP_FILE_MAX (64 * 1024)

char *cgroup_parse_self(const char *text)
{
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > 3 && strncmp(line, "0::", 3) == 0 && line[3] == '/')
            return xstrndup(line + 3, len - 3);
        line = end ? end + 1 : NULL;
    }
    return NULL;
}

/* Whether name is one of the space-separated words of list. */
static bool word_in(const char *list, const char *name, size_t len)
{
    for (const char *p = list; *p;) {
        p += strspn(p, " \t\n");
        size_t n = strcspn(p, " \t\n");
        if (n == len && strncmp(p, name, len) == 0)
            return true;
        p += n;
    }
    return false;
}

bool cgroup_has_controllers(const char *controllers, const char *want)
{
    for (const char *p = want; *p;) {
        p += strspn(p, " ");
        size_t n = strcspn(p, " ");
        if (n && !word_in(controllers, p, n))
            return false;
        p += n;
    }
    return true;
}

int64_t cgroup_event_count(const char *text, const char *key)
{
    size_t klen = strlen(key);
    for (const char *line = text; line && *line;) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ' ')
            return strtoll(line + klen + 1, NULL, 10);
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    return 0;
}

void cgroup_wanted_controllers(const struct config_limits *limits, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s%s%s", limits->memory_max ? "memory " : "",
             limits->tasks_max ? "pids " : "", limits->cpu_max_permille ? "cpu" : "");
    size_t len = strlen(out);
    if (len && out[len - 1] == ' ')
        out[len - 1] = '\0';
}

/* Files of a cgroup, relative to its held directory */

static int cg_read(int dir_fd, const char *name, struct strbuf *out)
{
    int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    int rc = read_fd(fd, CGROUP_FILE_MAX, out);
    close(fd);
    strbuf_putc(out, '\0'); /* an empty file is "", not NULL */
    out->len--;
    return rc < 0 ? rc : 0;
}

static int cg_write(int dir_fd, const char *name, const char *text)
{
    int fd = openat(dir_fd, name, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    int rc = write_all(fd, text, strlen(text));
    close(fd);
    return rc;
}

static int64_t cg_event(int dir_fd, const char *file, const char *key)
{
    struct strbuf sb;
    strbuf_init(&sb);
    int64_t n = cg_read(dir_fd, file, &sb) == 0 ? cgroup_event_count(sb.data, key) : 0;
    strbuf_free(&sb);
    return n;
}

/* Finding and preparing the worker's subtree */

static char *cgroup_own_dir(char *err, size_t errlen)
{
    struct strbuf sb;
    strbuf_init(&sb);
    char *path = read_file("/proc/self/cgroup", CGROUP_FILE_MAX, &sb) < 0
                     ? NULL
                     : cgroup_parse_self(sb.data);
    strbuf_free(&sb);
    if (!path) {
        set_error(err, errlen, ENOENT, "the worker is in no cgroup v2 (no 0:: line)");
        return NULL;
    }
    char *dir = NULL;
    for (size_t i = 0; i < ARRAY_SIZE(cgroup2_mounts) && !dir; i++) {
        struct statfs fs;
        if (statfs(cgroup2_mounts[i], &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC)
            dir = xasprintf("%s%s", cgroup2_mounts[i], path);
    }
    if (!dir)
        set_error(err, errlen, ENOENT, "no cgroup2 file system at /sys/fs/cgroup");
    else if (strcmp(path, "/") == 0) {
        set_error(err, errlen, EPERM, "the worker's cgroup %s is the root: nothing delegated", dir);
        free(dir);
        dir = NULL;
    }
    free(path);
    return dir;
}

/* Every process of the worker's cgroup goes to the leaf (at start that is the
 * worker alone, or what its service manager put there with it). */
static int cgroup_move_to_leaf(int dir_fd)
{
    if (mkdirat(dir_fd, CGROUP_WORKER_LEAF, 0755) < 0 && errno != EEXIST)
        return -errno;
    int leaf = openat(dir_fd, CGROUP_WORKER_LEAF, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (leaf < 0)
        return -errno;
    struct strbuf sb;
    strbuf_init(&sb);
    int rc = cg_read(dir_fd, "cgroup.procs", &sb);
    for (char *p = sb.data, *end; rc == 0 && p && *p; p = end) {
        long pid = strtol(p, &end, 10);
        if (end == p)
            break;
        char num[32];
        snprintf(num, sizeof(num), "%ld", pid);
        rc = cg_write(leaf, "cgroup.procs", num);
        if (rc == -ESRCH) /* gone meanwhile */
            rc = 0;
    }
    strbuf_free(&sb);
    close(leaf);
    return rc;
}

static int cgroup_enable(int dir_fd, const char *want)
{
    char text[64] = "";
    for (const char *p = want; *p;) {
        size_t n = strcspn(p, " ");
        size_t len = strlen(text);
        snprintf(text + len, sizeof(text) - len, "%s+%.*s", len ? " " : "", (int)n, p);
        p += n;
        p += strspn(p, " ");
    }
    return cg_write(dir_fd, "cgroup.subtree_control", text);
}

/* Waits until the cgroup at name has no process left, then removes it. */
static int cgroup_kill_remove(int parent_fd, const char *name, int dir_fd)
{
    const struct timespec pause = {.tv_sec = 0, .tv_nsec = 1000 * 1000};
    if (cg_write(dir_fd, "cgroup.kill", "1") < 0) {
        /* Before Linux 5.14: one by one. */
        struct strbuf sb;
        strbuf_init(&sb);
        if (cg_read(dir_fd, "cgroup.procs", &sb) == 0)
            for (char *p = sb.data, *end; p && *p; p = end) {
                long pid = strtol(p, &end, 10);
                if (end == p)
                    break;
                kill((pid_t)pid, SIGKILL);
            }
        strbuf_free(&sb);
    }
    for (int round = 0; round < REMOVE_ROUNDS; round++) {
        if (unlinkat(parent_fd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
            return 0;
        if (errno != EBUSY)
            return -errno;
        nanosleep(&pause, NULL);
    }
    return -EBUSY;
}

static void cgroup_remove_leftovers(int dir_fd)
{
    int fd = dup(dir_fd);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    struct dirent *e;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    while ((e = readdir(d))) {
        if (!str_starts_with(e->d_name, CGROUP_EXEC_PREFIX))
            continue;
        int cg = openat(dir_fd, e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        int rc = cg < 0 ? -errno : cgroup_kill_remove(dir_fd, e->d_name, cg);
        if (rc < 0)
            log_warn("cannot remove the cgroup %s left by an earlier run: %s", e->d_name,
                     strerror(-rc));
        else
            log_info("removed the cgroup %s left by an earlier run, with its processes", e->d_name);
        if (cg >= 0)
            close(cg);
    }
    closedir(d);
}

static pid_t parent_of(long pid)
{
    char state;
    pid_t ppid;
    return proc_stat_read((pid_t)pid, &state, &ppid) ? ppid : 0;
}

/* Nothing but the worker and its children (its guardian) in the cgroup: no
 * login shell or other program whose cgroup the worker would rearrange. */
static bool cgroup_only_ours(int dir_fd)
{
    struct strbuf sb;
    strbuf_init(&sb);
    bool ours = cg_read(dir_fd, "cgroup.procs", &sb) == 0;
    pid_t self = getpid();
    for (char *p = sb.data, *end; ours && p && *p; p = end) {
        long pid = strtol(p, &end, 10);
        if (end == p)
            break;
        ours = pid == self || parent_of(pid) == self;
    }
    strbuf_free(&sb);
    return ours;
}

/* Delegated to the worker: systemd (from v251) marks a cgroup it delegates
 * with the xattr trusted.delegate (user.delegate for a user manager), and
 * chowns it to the unit's User=. trusted.* is hidden from a root worker
 * without CAP_SYS_ADMIN (the unit's bounding set), so a cgroup holding only
 * the worker and its children counts too: under a service manager that is
 * the unit's own. Else it belongs to whoever runs the session around the
 * worker, which must not have it rearranged. */
static bool cgroup_delegated(int dir_fd)
{
    static const char *const names[] = {"trusted.delegate", "user.delegate"};
    char path[64], value[8];
    struct stat st;
    snprintf(path, sizeof(path), "/proc/self/fd/%d", dir_fd);
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        ssize_t n = getxattr(path, names[i], value, sizeof(value) - 1);
        if (n > 0 && value[0] == '1')
            return true;
    }
    if (geteuid() != 0 && fstat(dir_fd, &st) == 0 && st.st_uid == geteuid())
        return true;
    return cgroup_only_ours(dir_fd);
}

static int cgroup_tree_check(struct cgroup_tree *t, const char *want, char *err, size_t errlen)
{
    if (!cgroup_delegated(t->dir_fd))
        return set_error(err, errlen, EPERM,
                         "%s is not delegated to the worker (no trusted.delegate mark, which "
                         "systemd sets with Delegate=yes, and other programs in it)",
                         t->dir);
    struct strbuf sb;
    strbuf_init(&sb);
    int rc = cg_read(t->dir_fd, "cgroup.controllers", &sb);
    if (rc < 0)
        set_error(err, errlen, rc, "cannot read %s/cgroup.controllers: %s", t->dir, strerror(-rc));
    else if (!cgroup_has_controllers(sb.data, want))
        rc = set_error(err, errlen, ENOTSUP,
                       "%s offers the controllers \"%.*s\", not all of \"%s\" (delegate them, "
                       "as systemd does with Delegate=yes)",
                       t->dir, (int)strcspn(sb.data, "\n"), sb.data, want);
    else if (faccessat(t->dir_fd, "cgroup.subtree_control", W_OK, AT_EACCESS) < 0 ||
             faccessat(t->dir_fd, "cgroup.procs", W_OK, AT_EACCESS) < 0)
        rc = set_error(err, errlen, EACCES, "%s is not writable by the worker", t->dir);
    strbuf_free(&sb);
    return rc;
}

int cgroup_tree_open(const char *want, struct cgroup_tree *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    t->dir_fd = -1;
    t->dir = cgroup_own_dir(err, errlen);
    if (!t->dir)
        return -ENOENT;
    t->dir_fd = open(t->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = t->dir_fd < 0
                 ? set_error(err, errlen, -errno, "cannot open %s: %s", t->dir, strerror(errno))
                 : cgroup_tree_check(t, want, err, errlen);
    if (rc == 0 && (rc = cgroup_move_to_leaf(t->dir_fd)) < 0)
        set_error(err, errlen, rc, "cannot move the worker into %s/%s: %s", t->dir,
                  CGROUP_WORKER_LEAF, strerror(-rc));
    if (rc == 0 && (rc = cgroup_enable(t->dir_fd, want)) < 0)
        set_error(err, errlen, rc, "cannot enable \"%s\" in %s/cgroup.subtree_control: %s", want,
                  t->dir, strerror(-rc));
    if (rc < 0) {
        cgroup_tree_close(t);
        return rc;
    }
    cgroup_remove_leftovers(t->dir_fd);
    return 0;
}

void cgroup_tree_close(struct cgroup_tree *t)
{
    if (t->dir_fd >= 0)
        close(t->dir_fd);
    t->dir_fd = -1;
    free(t->dir);
    t->dir = NULL;
}

/* One execution's cgroup */

static int cgroup_exec_limit(int fd, const struct config_limits *l)
{
    char text[64];
    int rc = 0;
    if (l->memory_max) {
        snprintf(text, sizeof(text), "%" PRId64, l->memory_max);
        rc = cg_write(fd, "memory.max", text);
        /* Else the limit only moves the excess to swap. Absent without swap. */
        if (rc == 0)
            cg_write(fd, "memory.swap.max", "0");
    }
    if (rc == 0 && l->tasks_max) {
        snprintf(text, sizeof(text), "%" PRId64, l->tasks_max);
        rc = cg_write(fd, "pids.max", text);
    }
    if (rc == 0 && l->cpu_max_permille) {
        snprintf(text, sizeof(text), "%ld %d", (long)l->cpu_max_permille * (CPU_PERIOD_US / 1000),
                 CPU_PERIOD_US);
        rc = cg_write(fd, "cpu.max", text);
    }
    return rc;
}

int cgroup_exec_create(struct cgroup_tree *t, const struct config_limits *limits, char **name,
                       int *dir_fd, char *err, size_t errlen)
{
    char *n = NULL;
    int rc = -EEXIST;
    for (int tries = 0; tries < 100 && rc == -EEXIST; tries++) {
        free(n);
        n = xasprintf(CGROUP_EXEC_PREFIX "%u", t->next++);
        rc = mkdirat(t->dir_fd, n, 0755) < 0 ? -errno : 0;
    }
    int fd = rc < 0 ? -1 : openat(t->dir_fd, n, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (rc == 0 && fd < 0)
        rc = -errno;
    if (rc == 0)
        rc = cgroup_exec_limit(fd, limits);
    if (rc < 0) {
        set_error(err, errlen, rc, "cannot make the execution's cgroup in %s: %s", t->dir,
                  strerror(-rc));
        if (fd >= 0)
            close(fd);
        if (n)
            unlinkat(t->dir_fd, n, AT_REMOVEDIR);
        free(n);
        return rc;
    }
    *name = n;
    *dir_fd = fd;
    return 0;
}

void cgroup_exec_remove(struct cgroup_tree *t, const char *name, int dir_fd,
                        struct cgroup_outcome *out)
{
    memset(out, 0, sizeof(*out));
    out->oom_killed = cg_event(dir_fd, "memory.events", "oom_kill") > 0;
    out->tasks_denied = cg_event(dir_fd, "pids.events", "max") > 0;
    int rc = cgroup_kill_remove(t->dir_fd, name, dir_fd);
    if (rc < 0)
        log_warn("cannot remove the cgroup %s/%s: %s", t->dir, name, strerror(-rc));
    close(dir_fd);
}
