/* Per-execution resource limits (see sandbox_limits.h): the choice of
 * enforcement at start, each execution's share, and the child's side. */
#include "exec/sandbox_limits.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "exec/sandbox.h"
#include "exec/sandbox_cgroup.h"

_Static_assert(sizeof(rlim_t) == 8, "prlimit64 takes 64-bit limits");

struct sandbox_limits {
    struct config_limits cfg;
    enum limits_backend backend;
    bool nproc; /* RLIMIT_NPROC is per execution (a uid or user namespace of its own) */
    struct cgroup_tree tree;
};

int spawn_limits_apply(const struct spawn_limits *l)
{
    static const char self[] = "0";
    if (l->cgroup_procs_fd >= 0 && write(l->cgroup_procs_fd, self, 1) != 1)
        return -1;
    for (int i = 0; i < l->n_rlimits; i++)
        if (syscall(SYS_prlimit64, 0, l->rlimits[i].resource, &l->rlimits[i].lim, NULL) < 0)
            return -1;
    return 0;
}

/* RLIMIT_NPROC counts the processes of a uid (from Linux 5.14 in each user
 * namespace apart): per execution only where each has a uid of its own. */
static bool nproc_per_execution(const struct config *cfg)
{
    enum sandbox_mode mode;
    char err[256];
    struct utsname u;
    int major = 0, minor = 0;
    if (sandbox_resolve_mode(cfg, &mode, err, sizeof(err)) < 0)
        return false;
    if (mode == SANDBOX_MODE_UID)
        return true;
    if (mode != SANDBOX_MODE_USERNS || uname(&u) < 0 ||
        sscanf(u.release, "%d.%d", &major, &minor) != 2)
        return false;
    return major > 5 || (major == 5 && minor >= 14);
}

static char *size_text(int64_t bytes)
{
    if (bytes % (INT64_C(1) << 30) == 0)
        return xasprintf("%" PRId64 " GiB", bytes >> 30);
    if (bytes % (INT64_C(1) << 20) == 0)
        return xasprintf("%" PRId64 " MiB", bytes >> 20);
    return xasprintf("%" PRId64 " bytes", bytes);
}

static void limits_log_rlimits(const struct sandbox_limits *l, const char *why)
{
    log_info("sandbox limits: rlimits (memory_max: RLIMIT_DATA of each process; tasks_max: "
             "RLIMIT_NPROC of the execution's uid); no delegated cgroup v2: %s",
             why);
    if (l->cfg.cpu_max_permille)
        log_warn("sandbox.cpu_max is not enforced: it needs a delegated cgroup v2 subtree "
                 "(systemd Delegate=yes), and there is no rlimit for it");
    if (l->cfg.tasks_max && !l->nproc)
        log_warn("sandbox.tasks_max is not enforced: without a cgroup v2 subtree it is "
                 "RLIMIT_NPROC, which counts every process of a uid, and executions do not "
                 "have a uid of their own in this sandbox.mode");
}

int sandbox_limits_new(const struct config *cfg, struct sandbox_limits **out, char *err,
                       size_t errlen)
{
    (void)err;
    (void)errlen;
    struct config_limits lim;
    char want[32], why[512];
    *out = NULL;
    config_sandbox_limits(cfg, &lim);
    if (!lim.memory_max && !lim.tasks_max && !lim.cpu_max_permille) {
        log_debug("sandbox limits: none (sandbox.memory_max, tasks_max and cpu_max are unlimited)");
        return 0;
    }
    struct sandbox_limits *l = xcalloc(1, sizeof(*l));
    l->cfg = lim;
    l->nproc = nproc_per_execution(cfg);
    l->tree.dir_fd = -1;
    cgroup_wanted_controllers(&lim, want, sizeof(want));
    if (cgroup_tree_open(want, &l->tree, why, sizeof(why)) == 0) {
        l->backend = LIMITS_CGROUP;
        log_info("sandbox limits: cgroup v2, a cgroup per execution below %s (%s)", l->tree.dir,
                 want);
    } else {
        l->backend = LIMITS_RLIMIT;
        limits_log_rlimits(l, why);
    }
    *out = l;
    return 0;
}

void sandbox_limits_free(struct sandbox_limits *l)
{
    if (!l)
        return;
    cgroup_tree_close(&l->tree);
    free(l);
}

enum limits_backend sandbox_limits_backend(const struct sandbox_limits *l)
{
    return l ? l->backend : LIMITS_NONE;
}

static void limits_add_rlimit(struct spawn_limits *s, int resource, int64_t value)
{
    s->rlimits[s->n_rlimits].resource = resource;
    s->rlimits[s->n_rlimits].lim.rlim_cur = (rlim_t)value;
    s->rlimits[s->n_rlimits].lim.rlim_max = (rlim_t)value;
    s->n_rlimits++;
}

int sandbox_limits_enter(struct sandbox_limits *l, struct limits_slot *slot, char *err,
                         size_t errlen)
{
    memset(slot, 0, sizeof(*slot));
    slot->cgroup_fd = slot->spawn.cgroup_procs_fd = -1;
    if (!l)
        return 0;
    if (l->backend == LIMITS_RLIMIT) {
        /* RLIMIT_DATA, not RLIMIT_AS: V8 reserves far more address space
         * than it uses, and node does not start under a small RLIMIT_AS. */
        if (l->cfg.memory_max)
            limits_add_rlimit(&slot->spawn, RLIMIT_DATA, l->cfg.memory_max);
        if (l->cfg.tasks_max && l->nproc)
            limits_add_rlimit(&slot->spawn, RLIMIT_NPROC, l->cfg.tasks_max);
        return 0;
    }
    int rc =
        cgroup_exec_create(&l->tree, &l->cfg, &slot->cgroup_name, &slot->cgroup_fd, err, errlen);
    if (rc < 0)
        return rc;
    slot->spawn.cgroup_procs_fd =
        openat(slot->cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (slot->spawn.cgroup_procs_fd < 0) {
        rc = set_error(err, errlen, -errno, "cannot open %s/%s/cgroup.procs: %s", l->tree.dir,
                       slot->cgroup_name, strerror(errno));
        sandbox_limits_leave(l, slot, NULL);
    }
    return rc;
}

void sandbox_limits_leave(struct sandbox_limits *l, struct limits_slot *slot,
                          struct limits_outcome *out)
{
    struct cgroup_outcome cg = {0};
    if (out)
        memset(out, 0, sizeof(*out));
    if (!l || !slot->cgroup_name)
        return;
    if (slot->spawn.cgroup_procs_fd >= 0)
        close(slot->spawn.cgroup_procs_fd);
    cgroup_exec_remove(&l->tree, slot->cgroup_name, slot->cgroup_fd, &cg);
    free(slot->cgroup_name);
    memset(slot, 0, sizeof(*slot));
    slot->cgroup_fd = slot->spawn.cgroup_procs_fd = -1;
    if (out) {
        out->memory_exceeded = cg.oom_killed;
        out->tasks_exceeded = cg.tasks_denied;
    }
}

char *sandbox_limits_memory_text(const struct sandbox_limits *l)
{
    if (!l || !l->cfg.memory_max)
        return NULL;
    char *size = size_text(l->cfg.memory_max);
    char *text = xasprintf("sandbox.memory_max (%s%s)", size,
                           l->backend == LIMITS_RLIMIT ? " per process" : "");
    free(size);
    return text;
}

char *sandbox_limits_tasks_text(const struct sandbox_limits *l)
{
    if (!l || !l->cfg.tasks_max || (l->backend == LIMITS_RLIMIT && !l->nproc))
        return NULL;
    return xasprintf("sandbox.tasks_max (%" PRId64 ")", l->cfg.tasks_max);
}

char *sandbox_limits_describe(const struct sandbox_limits *l)
{
    char *mem = sandbox_limits_memory_text(l);
    char *tasks = sandbox_limits_tasks_text(l);
    char *cpu = l && l->cfg.cpu_max_permille && l->backend == LIMITS_CGROUP
                    ? xasprintf("sandbox.cpu_max (%d.%03d CPU)", l->cfg.cpu_max_permille / 1000,
                                l->cfg.cpu_max_permille % 1000)
                    : NULL;
    char *text = NULL;
    if (mem || tasks || cpu)
        text = xasprintf("%s%s%s%s%s", mem ? mem : "", mem && (tasks || cpu) ? ", " : "",
                         tasks ? tasks : "", tasks && cpu ? ", " : "", cpu ? cpu : "");
    free(mem);
    free(tasks);
    free(cpu);
    return text;
}
