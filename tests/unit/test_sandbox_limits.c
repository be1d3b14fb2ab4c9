/* Unit tests for the per-execution limits: the sandbox.memory_max, tasks_max
 * and cpu_max values and check-config's messages, the cgroup v2 texts
 * (/proc/self/cgroup, cgroup.controllers, memory.events), the rlimits a
 * spawned child sets on itself, and the result's error over a limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <linux/magic.h>

#include "core/config.h"
#include "core/util.h"
#include "exec/sandbox_cgroup.h"
#include "exec/sandbox_limits.h"
#include "exec/spawn.h"
#include "executor/result_limits.h"

#define MIB (INT64_C(1) << 20)

static void test_memory_max_values(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t bytes;
    } good[] = {
        {"unlimited", 0},      {"max", 0},          {"256M", 256 * MIB},  {"2G", 2048 * MIB},
        {"512MiB", 512 * MIB}, {"1gb", 1024 * MIB}, {"65536K", 64 * MIB}, {"1T", 1024 * 1024 * MIB},
        {"16777216", 16 * MIB}};
    for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
        int64_t v = -1;
        if (!config_parse_memory_max(good[i].text, &v) || v != good[i].bytes)
            fail_msg("\"%s\": got %lld", good[i].text, (long long)v);
    }
    static const char *const bad[] = {"", "-1M", "0", "256X", "M", "1.5G", "256 M", "99999999T"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        int64_t v;
        if (config_parse_memory_max(bad[i], &v))
            fail_msg("\"%s\" parsed as a memory limit", bad[i]);
    }
}

static void test_tasks_and_cpu_values(void **state)
{
    (void)state;
    int64_t tasks;
    int cpu;
    assert_true(config_parse_tasks_max("20", &tasks) && tasks == 20);
    assert_true(config_parse_tasks_max("unlimited", &tasks) && tasks == 0);
    assert_false(config_parse_tasks_max("0", &tasks));
    assert_false(config_parse_tasks_max("-3", &tasks));
    assert_false(config_parse_tasks_max("20x", &tasks));
    static const struct {
        const char *text;
        int permille;
    } good[] = {
        {"0.5", 500}, {"50%", 500},    {"2", 2000}, {"150%", 1500}, {"0.10000000000000001", 100},
        {".25", 250}, {"unlimited", 0}};
    for (size_t i = 0; i < ARRAY_SIZE(good); i++)
        if (!config_parse_cpu_max(good[i].text, &cpu) || cpu != good[i].permille)
            fail_msg("\"%s\": got %d", good[i].text, cpu);
    static const char *const bad[] = {"",    "0",   "-0.5",  "half", "50%%",
                                      "nan", "inf", "1e400", "0x10"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        if (config_parse_cpu_max(bad[i], &cpu))
            fail_msg("\"%s\" parsed as a cpu limit", bad[i]);
}

/* check-config (config_validate) names the key and what it takes. */
static void test_check_config_messages(void **state)
{
    (void)state;
    static const struct {
        const char *key, *value, *message;
    } rows[] = {
        {"sandbox.memory_max", "lots", "sandbox.memory_max: expected unlimited or a size"},
        {"sandbox.memory_max", "1M", "sandbox.memory_max: must be at least 16M"},
        {"sandbox.tasks_max", "0", "sandbox.tasks_max: expected unlimited or a number"},
        {"sandbox.tasks_max", "5000000", "sandbox.tasks_max: expected unlimited or a number"},
        {"sandbox.cpu_max", "0.001", "sandbox.cpu_max: expected unlimited, a number of CPUs"},
        {"sandbox.cpu_max", "fast", "sandbox.cpu_max: expected unlimited, a number of CPUs"},
    };
    char err[512];
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct config cfg;
        config_init_defaults(&cfg);
        assert_int_equal(config_set(&cfg, rows[i].key, rows[i].value, err, sizeof(err)), 0);
        err[0] = '\0';
        if (config_validate(&cfg, err, sizeof(err)) != -EINVAL)
            fail_msg("%s=%s validated", rows[i].key, rows[i].value);
        if (!strstr(err, rows[i].message))
            fail_msg("%s=%s: \"%s\" lacks \"%s\"", rows[i].key, rows[i].value, err,
                     rows[i].message);
        config_free(&cfg);
    }
    struct config cfg;
    struct config_limits lim;
    config_init_defaults(&cfg);
    config_sandbox_limits(&cfg, &lim);
    assert_true(lim.memory_max == 0 && lim.tasks_max == 0 && lim.cpu_max_permille == 0);
    assert_int_equal(config_set(&cfg, "sandbox.memory_max", "256M", err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "sandbox.tasks_max", "20", err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "sandbox.cpu_max", "50%", err, sizeof(err)), 0);
    assert_int_equal(config_validate(&cfg, err, sizeof(err)), 0);
    config_sandbox_limits(&cfg, &lim);
    assert_true(lim.memory_max == 256 * MIB && lim.tasks_max == 20 && lim.cpu_max_permille == 500);
    config_free(&cfg);
}

static void test_cgroup_texts(void **state)
{
    (void)state;
    char *path = cgroup_parse_self("12:pids:/x\n4:memory:/y\n0::/system.slice/attune.service\n");
    assert_string_equal(path, "/system.slice/attune.service");
    free(path);
    path = cgroup_parse_self("0::/\n");
    assert_string_equal(path, "/");
    free(path);
    assert_null(cgroup_parse_self("9:name=systemd:/\n1:cpu:/\n"));
    assert_null(cgroup_parse_self(""));

    assert_true(
        cgroup_has_controllers("cpuset cpu io memory hugetlb pids rdma\n", "memory pids cpu"));
    assert_true(cgroup_has_controllers("hugetlb\n", ""));
    assert_false(cgroup_has_controllers("hugetlb\n", "memory"));
    assert_false(cgroup_has_controllers("cpuset io memory\n", "memory cpu"));
    assert_false(cgroup_has_controllers("memoryx\n", "memory"));

    const char *events = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n";
    assert_int_equal(cgroup_event_count(events, "oom_kill"), 1);
    assert_int_equal(cgroup_event_count(events, "oom"), 2);
    assert_int_equal(cgroup_event_count(events, "max"), 12);
    assert_int_equal(cgroup_event_count(events, "swap"), 0);

    char want[32];
    struct config_limits lim = {.memory_max = MIB << 8, .tasks_max = 0, .cpu_max_permille = 500};
    cgroup_wanted_controllers(&lim, want, sizeof(want));
    assert_string_equal(want, "memory cpu");
    lim.tasks_max = 20;
    cgroup_wanted_controllers(&lim, want, sizeof(want));
    assert_string_equal(want, "memory pids cpu");
}

/* The child sets its rlimits before it executes: the shell it runs sees them. */
static void test_spawned_child_rlimits(void **state)
{
    (void)state;
    int out[2];
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    struct spawn_limits lim = {.cgroup_procs_fd = -1, .n_rlimits = 2};
    lim.rlimits[0].resource = RLIMIT_DATA;
    lim.rlimits[0].lim.rlim_cur = lim.rlimits[0].lim.rlim_max = 256 * MIB;
    lim.rlimits[1].resource = RLIMIT_NPROC;
    lim.rlimits[1].lim.rlim_cur = lim.rlimits[1].lim.rlim_max = 20;
    char sh[] = "/bin/bash", c[] = "-c", script[] = "ulimit -d; ulimit -u";
    char path[] = "PATH=/usr/bin:/bin";
    char *const argv[] = {sh, c, script, NULL};
    char *const envp[] = {path, NULL};
    const struct spawn_fd fds[] = {{out[1], 1}};
    struct spawn_req req = {.path = "/bin/bash",
                            .argv = argv,
                            .envp = envp,
                            .fds = fds,
                            .n_fds = 1,
                            .close_from = 3,
                            .limits = &lim};
    pid_t pid;
    assert_int_equal(spawn_process(&req, &pid), 0);
    close(out[1]);
    struct strbuf sb;
    strbuf_init(&sb);
    assert_true(read_fd(out[0], 4096, &sb) >= 0);
    close(out[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    strbuf_putc(&sb, '\0');
    assert_string_equal(sb.data, "262144\n20\n");
    strbuf_free(&sb);
}

static struct sandbox_limits *rlimit_limits(const char *memory, const char *tasks)
{
    struct config cfg;
    struct sandbox_limits *l;
    char err[256];
    config_init_defaults(&cfg);
    assert_int_equal(config_set(&cfg, "sandbox.memory_max", memory, err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "sandbox.tasks_max", tasks, err, sizeof(err)), 0);
    /* Unit tests run in no delegated cgroup: the rlimits are what applies. */
    assert_int_equal(sandbox_limits_new(&cfg, &l, err, sizeof(err)), 0);
    config_free(&cfg);
    return l;
}

static void test_result_error_names_the_limit(void **state)
{
    (void)state;
    struct sandbox_limits *l = rlimit_limits("256M", "unlimited");
    if (sandbox_limits_backend(l) != LIMITS_RLIMIT) {
        sandbox_limits_free(l);
        skip(); /* a delegated cgroup: the rlimit wording does not apply */
    }
    struct limits_outcome none = {0};
    json_t *r =
        json_pack("{s:s, s:s}", "error", "MemoryError", "stderr", "Traceback\nMemoryError\n");
    execution_result_note_limits(r, EXECUTION_FAILED, l, &none);
    assert_string_equal(
        json_string_value(json_object_get(r, "error")),
        "the action exceeded sandbox.memory_max (256 MiB per process): MemoryError");
    json_decref(r);
    /* Killed by a signal: the limits in force, since which one is not known. */
    r = json_pack("{s:s, s:i, s:s}", "error", "Command exited with code -1", "signal", SIGSEGV,
                  "stderr", "");
    execution_result_note_limits(r, EXECUTION_FAILED, l, &none);
    assert_non_null(strstr(json_string_value(json_object_get(r, "error")),
                           "limits in force: sandbox.memory_max (256 MiB per process)"));
    json_decref(r);
    /* An ordinary failure, a success and a timeout keep their words. */
    static const enum execution_status kept[] = {EXECUTION_FAILED, EXECUTION_COMPLETED,
                                                 EXECUTION_TIMEOUT};
    for (size_t i = 0; i < ARRAY_SIZE(kept); i++) {
        r = json_pack("{s:s, s:s}", "error", "boom", "stderr", "boom\n");
        execution_result_note_limits(r, kept[i], l, &none);
        assert_string_equal(json_string_value(json_object_get(r, "error")), "boom");
        json_decref(r);
    }
    sandbox_limits_free(l);
}

/* The cgroup v2 life cycle, on a cgroup2 mount without controllers (as on a
 * hybrid host): a test cgroup stands for the delegated one. Runs in a child
 * process, which moves itself; exit status N says step N failed. */
#define UNIFIED "/sys/fs/cgroup/unified"

static bool in_cgroup(pid_t pid, const char *suffix)
{
    char path[64];
    struct strbuf sb;
    strbuf_init(&sb);
    snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
    bool ok = read_file(path, 4096, &sb) >= 0 && sb.data && strstr(sb.data, suffix);
    strbuf_free(&sb);
    return ok;
}

static pid_t spawn_sleeper(int procs_fd)
{
    char sleep[] = "/bin/sleep", secs[] = "30";
    char *const argv[] = {sleep, secs, NULL};
    char *const envp[] = {NULL};
    struct spawn_limits lim = {.cgroup_procs_fd = procs_fd};
    struct spawn_req req = {
        .path = "/bin/sleep", .argv = argv, .envp = envp, .close_from = 3, .limits = &lim};
    pid_t pid;
    return spawn_process(&req, &pid) == 0 ? pid : -1;
}

static char *parent_cgroup(void)
{
    char path[64];
    struct strbuf sb;
    strbuf_init(&sb);
    snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)getppid());
    char *cg = read_file(path, 4096, &sb) >= 0 && sb.data ? cgroup_parse_self(sb.data) : NULL;
    strbuf_free(&sb);
    return cg;
}

static int move_pid(const char *dir, pid_t pid)
{
    char path[256], num[32];
    snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
    snprintf(num, sizeof(num), "%d", (int)pid);
    int fd = open(path, O_WRONLY);
    int rc = fd >= 0 && write(fd, num, strlen(num)) == (ssize_t)strlen(num) ? 0 : -1;
    if (fd >= 0)
        close(fd);
    return rc;
}

static int cgroup_steps(const char *base)
{
    char err[512], path[256];
    struct cgroup_tree t;
    struct config_limits none = {0};
    char *name;
    int fd, status;
    /* A cgroup nobody marked delegated, where another program (here the
     * test runner, our parent) also lives, is left alone. */
    char *home = parent_cgroup();
    snprintf(path, sizeof(path), "%s/plain", base);
    int plain = mkdir(path, 0755) < 0 ? -1 : open(path, O_RDONLY | O_DIRECTORY);
    int plain_procs = plain < 0 ? -1 : openat(plain, "cgroup.procs", O_WRONLY);
    int refused = home && plain_procs >= 0 && write(plain_procs, "0", 1) == 1 &&
                  move_pid(path, getppid()) == 0 &&
                  cgroup_tree_open("", &t, err, sizeof(err)) == -EPERM &&
                  faccessat(plain, CGROUP_WORKER_LEAF, F_OK, 0) < 0;
    snprintf(path, sizeof(path), UNIFIED "%s", home ? home : "/");
    if (home && move_pid(path, getppid()) < 0)
        return 11;
    free(home);
    if (!refused)
        return 10;
    /* The same cgroup with the worker alone in it is the worker's own. */
    if (cgroup_tree_open("", &t, err, sizeof(err)) < 0 ||
        faccessat(plain, CGROUP_WORKER_LEAF, F_OK, 0) < 0)
        return 12;
    cgroup_tree_close(&t);
    snprintf(path, sizeof(path), "%s/cgroup.procs", base);
    int self = open(path, O_WRONLY);
    if (self < 0 || write(self, "0", 1) != 1)
        return 1;
    snprintf(path, sizeof(path), "%s/plain/" CGROUP_WORKER_LEAF, base);
    rmdir(path);
    snprintf(path, sizeof(path), "%s/plain", base);
    rmdir(path);
    /* What a worker killed earlier left: a cgroup with a process in it. */
    snprintf(path, sizeof(path), "%s/" CGROUP_EXEC_PREFIX "7", base);
    if (mkdir(path, 0755) < 0)
        return 2;
    int old_dir = open(path, O_RDONLY | O_DIRECTORY);
    int old_procs = openat(old_dir, "cgroup.procs", O_WRONLY);
    pid_t old = spawn_sleeper(old_procs);
    if (old < 0 || !in_cgroup(old, "/" CGROUP_EXEC_PREFIX "7\n"))
        return 3;
    if (cgroup_tree_open("", &t, err, sizeof(err)) < 0) {
        fprintf(stderr, "cgroup_tree_open: %s\n", err);
        return 4;
    }
    if (!in_cgroup(getpid(), "/" CGROUP_WORKER_LEAF "\n"))
        return 5;
    if (waitpid(old, &status, 0) != old || !WIFSIGNALED(status) || access(path, F_OK) == 0)
        return 6;
    if (cgroup_exec_create(&t, &none, &name, &fd, err, sizeof(err)) < 0)
        return 7;
    pid_t pid = spawn_sleeper(openat(fd, "cgroup.procs", O_WRONLY | O_CLOEXEC));
    snprintf(path, sizeof(path), "/%s\n", name);
    if (pid < 0 || !in_cgroup(pid, path))
        return 8;
    struct cgroup_outcome out;
    cgroup_exec_remove(&t, name, fd, &out);
    snprintf(path, sizeof(path), "%s/%s", base, name);
    if (waitpid(pid, &status, 0) != pid || !WIFSIGNALED(status) || access(path, F_OK) == 0 ||
        out.oom_killed || out.tasks_denied)
        return 9;
    free(name);
    cgroup_tree_close(&t);
    return 0;
}

static void test_cgroup_life_cycle(void **state)
{
    (void)state;
    struct statfs fs;
    char base[128], leaf[160];
    if (geteuid() != 0 || statfs(UNIFIED, &fs) < 0 || fs.f_type != CGROUP2_SUPER_MAGIC ||
        access(UNIFIED "/cgroup.procs", W_OK) < 0) {
        fprintf(stderr, "skipped: needs root and a writable cgroup2 mount at " UNIFIED "\n");
        skip();
    }
    snprintf(base, sizeof(base), UNIFIED "/attune-unit-%d", (int)getpid());
    assert_int_equal(mkdir(base, 0755), 0);
    /* What systemd marks a cgroup it delegates with. */
    assert_int_equal(setxattr(base, "trusted.delegate", "1", 1, 0), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0)
        _exit(cgroup_steps(base));
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    snprintf(leaf, sizeof(leaf), "%s/" CGROUP_WORKER_LEAF, base);
    rmdir(leaf);
    snprintf(leaf, sizeof(leaf), "%s/" CGROUP_EXEC_PREFIX "7", base);
    rmdir(leaf);
    int removed = rmdir(base);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("cgroup step %d failed", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    assert_int_equal(removed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_max_values),
        cmocka_unit_test(test_tasks_and_cpu_values),
        cmocka_unit_test(test_check_config_messages),
        cmocka_unit_test(test_cgroup_texts),
        cmocka_unit_test(test_spawned_child_rlimits),
        cmocka_unit_test(test_result_error_names_the_limit),
        cmocka_unit_test(test_cgroup_life_cycle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
