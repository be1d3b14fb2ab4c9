/* The floors under the sandbox's userns mode on this machine: the worker's own
 * spawn (spawn_process) of /bin/true timed without namespaces, with each new
 * namespace alone, with all four and only a /proc, with the execution's whole
 * mount plan (sandbox_ns_prepare), and through attune-sandbox-init; split into
 * the spawn (clone to exec) and the rest (exec to reaped, where the kernel
 * tears the namespaces down). Run by bench/ns-floor, as a user that is not root. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "exec/sandbox_ns.h"
#include "exec/spawn.h"

#define TRUE_PATH "/bin/true"

/* What is timed of each run: clone to exec, exec to reaped, and under the
 * init, from its status to its reaping (its exit, the namespaces' tear-down). */
enum { T_SPAWN, T_REST, T_EXIT, N_TIMES };

enum plan { PLAN_NONE, PLAN_MAPS, PLAN_PROC, PLAN_PROC_INIT, PLAN_SANDBOX, PLAN_SANDBOX_INIT };

struct variant {
    const char *name;
    int clone_flags; /* 0 with PLAN_NONE: no namespaces */
    enum plan plan;
    double *ms[N_TIMES]; /* per run */
};

struct floor_env {
    struct sandbox_ns_conf conf;
    char *dir;             /* {root}/bench/{id}, with files/ and home/ */
    struct sandbox_ns *ns; /* the execution's plan */
    char uid_map[32], gid_map[32];
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of n values, which stay in their order (runs pair up by index). */
static double median(const double *values, int n)
{
    double *sorted = xmalloc((size_t)n * sizeof(*sorted));
    memcpy(sorted, values, (size_t)n * sizeof(*sorted));
    qsort(sorted, (size_t)n, sizeof(*sorted), compare_doubles);
    double m = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    free(sorted);
    return m;
}

static const struct spawn_mount proc_only[] = {
    {.target = "/", .flags = MS_REC | MS_PRIVATE},
    {.source = "proc",
     .target = "/proc",
     .fstype = "proc",
     .flags = MS_NOSUID | MS_NODEV | MS_NOEXEC},
};

/* One spawn of /bin/true in the variant's way, and its wait; returns 0. */
static int run_once(struct floor_env *env, const struct variant *v, int run)
{
    static char *const envp[] = {NULL};
    static char true_arg0[] = "true";
    char *true_argv[] = {true_arg0, NULL};
    int status_pipe[2] = {-1, -1};
    struct spawn_fd fds[4] = {{-1, 0}, {-1, 1}, {-1, 2}};
    struct spawn_ns plan = {
        .clone_flags = v->clone_flags, .uid_map = env->uid_map, .gid_map = env->gid_map};
    struct spawn_req req = {.path = TRUE_PATH,
                            .argv = true_argv,
                            .envp = envp,
                            .fds = fds,
                            .n_fds = 3,
                            .close_from = 3,
                            .ns = &plan};
    if (v->plan == PLAN_PROC || v->plan == PLAN_PROC_INIT) {
        plan.mounts = proc_only;
        plan.n_mounts = ARRAY_SIZE(proc_only);
    }
    if (v->plan == PLAN_SANDBOX || v->plan == PLAN_SANDBOX_INIT)
        plan = *sandbox_ns_prepare(env->ns, NULL, TRUE_PATH);
    if (v->plan == PLAN_SANDBOX)
        plan.init_path = NULL; /* /bin/true is the namespace's first process */
    if (v->plan == PLAN_PROC_INIT) {
        plan.init_path = env->conf.init_path;
        plan.status_fd = SANDBOX_NS_STATUS_FD;
    }
    if (v->plan == PLAN_SANDBOX_INIT || v->plan == PLAN_PROC_INIT) {
        if (pipe2(status_pipe, O_CLOEXEC) < 0)
            return -errno;
        fds[3] = (struct spawn_fd){status_pipe[1], SANDBOX_NS_STATUS_FD};
        req.n_fds = 4;
        req.close_from = SANDBOX_NS_STATUS_FD + 1;
    }
    if (v->plan == PLAN_NONE)
        req.ns = NULL;
    pid_t pid;
    double start = now_ms();
    int rc = spawn_process(&req, &pid);
    double spawned = now_ms(), status_at = 0;
    int status;
    if (rc == 0 && status_pipe[0] >= 0 && read(status_pipe[0], &status, sizeof(status)) > 0)
        status_at = now_ms();
    if (rc == 0 && waitpid(pid, NULL, 0) < 0)
        rc = -errno;
    double reaped = now_ms();
    v->ms[T_SPAWN][run] = spawned - start;
    v->ms[T_REST][run] = reaped - spawned;
    v->ms[T_EXIT][run] = status_at ? reaped - status_at : 0;
    if (status_pipe[0] >= 0) {
        close(status_pipe[0]);
        close(status_pipe[1]);
    }
    return rc;
}

static int floor_env_init(struct floor_env *env)
{
    char root[] = "/tmp/attune-ns-floor-XXXXXX";
    if (!mkdtemp(root))
        return -errno;
    memset(env, 0, sizeof(*env));
    env->dir = xasprintf("%s/bench/1", root);
    char *files = xasprintf("%s/files", env->dir), *home = xasprintf("%s/home", env->dir);
    char *worker = xasprintf("%s/bench", root);
    int rc = mkdir(worker, 0700) < 0 || mkdir(env->dir, 0700) < 0 || mkdir(files, 0700) < 0 ||
                     mkdir(home, 0700) < 0
                 ? -errno
                 : 0;
    free(files);
    free(home);
    free(worker);
    if (rc < 0)
        return rc;
    env->conf.init_path = sandbox_ns_find_init();
    if (!env->conf.init_path)
        return -ENOENT;
    env->conf.init_dir = xstrdup(env->conf.init_path);
    *strrchr(env->conf.init_dir, '/') = '\0';
    env->conf.artifacts_dir = xstrdup(root);
    strv_init(&env->conf.hidden);
    snprintf(env->uid_map, sizeof(env->uid_map), "%u %u 1", (unsigned)geteuid(),
             (unsigned)geteuid());
    snprintf(env->gid_map, sizeof(env->gid_map), "%u %u 1", (unsigned)getegid(),
             (unsigned)getegid());
    memcpy(env->conf.uid_map, env->uid_map, sizeof(env->uid_map));
    memcpy(env->conf.gid_map, env->gid_map, sizeof(env->gid_map));
    env->ns = sandbox_ns_new(&env->conf, env->dir);
    return 0;
}

static void floor_env_free(struct floor_env *env)
{
    char *root = xstrdup(env->conf.artifacts_dir);
    char *cmd = xasprintf("rm -rf '%s'", root);
    sandbox_ns_free(env->ns);
    sandbox_ns_conf_free(&env->conf);
    free(env->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "ns-floor: could not remove %s\n", root);
    free(cmd);
    free(root);
}

/* Medians of each part, and of each run's whole against the same run's
 * spawn without namespaces (the first variant). */
static void report(struct variant *variants, int n, int runs)
{
    double *total = xcalloc((size_t)runs, sizeof(double)),
           *cost = xcalloc((size_t)runs, sizeof(double));
    printf("%-38s %8s %8s %8s %10s\n", "/bin/true spawned (medians, ms)", "spawn", "to exit",
           "whole", "vs none");
    for (int i = 0; i < n; i++) {
        for (int r = 0; r < runs; r++) {
            total[r] = variants[i].ms[T_SPAWN][r] + variants[i].ms[T_REST][r];
            cost[r] = total[r] - variants[0].ms[T_SPAWN][r] - variants[0].ms[T_REST][r];
        }
        printf("%-38s %8.3f %8.3f %8.3f %+10.3f\n", variants[i].name,
               median(variants[i].ms[T_SPAWN], runs), median(variants[i].ms[T_REST], runs),
               median(total, runs), median(cost, runs));
    }
    for (int i = 0; i < n; i++)
        if (variants[i].plan == PLAN_SANDBOX_INIT || variants[i].plan == PLAN_PROC_INIT)
            printf("%s: from the init's status written to its reaping (its exit, the "
                   "namespaces' tear-down): %.3f ms\n",
                   variants[i].name, median(variants[i].ms[T_EXIT], runs));
    free(total);
    free(cost);
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 200;
    struct variant variants[] = {
        {"spawn, no namespaces", 0, PLAN_NONE, {NULL}},
        {"new user ns (maps written)", CLONE_NEWUSER, PLAN_MAPS, {NULL}},
        {"user + mount ns", CLONE_NEWUSER | CLONE_NEWNS, PLAN_MAPS, {NULL}},
        {"user + PID ns", CLONE_NEWUSER | CLONE_NEWPID, PLAN_MAPS, {NULL}},
        {"user + IPC ns", CLONE_NEWUSER | CLONE_NEWIPC, PLAN_MAPS, {NULL}},
        {"all four, no mount", SPAWN_NS_FLAGS, PLAN_MAPS, {NULL}},
        {"all four + a /proc", SPAWN_NS_FLAGS, PLAN_PROC, {NULL}},
        {"all four + the execution's mounts", SPAWN_NS_FLAGS, PLAN_SANDBOX, {NULL}},
        {"all four + a /proc, under the init", SPAWN_NS_FLAGS, PLAN_PROC_INIT, {NULL}},
        {"the execution's mounts, under the init", SPAWN_NS_FLAGS, PLAN_SANDBOX_INIT, {NULL}},
    };
    const int n = (int)ARRAY_SIZE(variants);
    struct floor_env env;
    if (runs < 1 || geteuid() == 0) {
        fputs("usage: bench_ns_floor [RUNS] (as a user that is not root)\n", stderr);
        return 2;
    }
    int rc = floor_env_init(&env);
    if (rc < 0) {
        fprintf(stderr, "ns-floor: cannot set up: %s\n", strerror(-rc));
        return 1;
    }
    for (int i = 0; i < n; i++)
        for (int t = 0; t < N_TIMES; t++)
            variants[i].ms[t] = xcalloc((size_t)runs, sizeof(double));
    /* Interleaved, so that the load of the machine falls on every variant. */
    for (int run = 0; run < runs && rc == 0; run++)
        for (int i = 0; i < n && rc == 0; i++)
            rc = run_once(&env, &variants[i], run);
    if (rc < 0)
        fprintf(stderr, "ns-floor: spawn failed: %s\n", strerror(-rc));
    else
        report(variants, n, runs);
    for (int i = 0; i < n; i++)
        for (int t = 0; t < N_TIMES; t++)
            free(variants[i].ms[t]);
    floor_env_free(&env);
    return rc < 0 ? 1 : 0;
}
