/* Unit tests for core/config: defaults, the YAML file, ATTUNE__ environment
 * overrides, config_set, validation messages and the masked print. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/config.h"
#include "core/util.h"
#include "core/yaml.h"

static char tmpdir[] = "/tmp/attune-test-config-XXXXXX";
static char old_cwd[PATH_MAX];

static void check_contains(const char *s, const char *needle)
{
    if (!strstr(s, needle))
        fail_msg("'%s' does not contain '%s'", s, needle);
}

static void check_lacks(const char *s, const char *needle)
{
    if (strstr(s, needle))
        fail_msg("'%s' contains '%s'", s, needle);
}

/* Writes NAME in the temporary directory; returns its path (free it). */
static char *write_config(const char *name, const char *text)
{
    char *path = xasprintf("%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    return path;
}

/* Every test starts from an environment without ATTUNE_ variables, so the
 * machine running the tests cannot change their outcome. */
static void clear_attune_env(void)
{
    for (;;) {
        char *name = NULL;
        for (char **e = environ; *e && !name; e++)
            if (strncasecmp(*e, "ATTUNE_", 7) == 0 && strchr(*e, '='))
                name = xstrndup(*e, (size_t)(strchr(*e, '=') - *e));
        if (!name)
            return;
        unsetenv(name);
        free(name);
    }
}

static int group_setup(void **state)
{
    (void)state;
    if (!mkdtemp(tmpdir) || !getcwd(old_cwd, sizeof(old_cwd)))
        return -1;
    /* config_load falls back to ./config.yaml: run where there is none. */
    return chdir(tmpdir);
}

static int group_teardown(void **state)
{
    (void)state;
    if (chdir(old_cwd) != 0)
        return -1;
    return remove_tree(tmpdir);
}

static int test_setup(void **state)
{
    (void)state;
    clear_attune_env();
    return 0;
}

/* Loads path (NULL: the usual search) over the defaults, expecting success. */
static void load_ok(struct config *cfg, const char *path)
{
    char err[512] = "";
    config_init_defaults(cfg);
    int rc = config_load(cfg, path, err, sizeof(err));
    if (rc != 0)
        fail_msg("config_load failed: %s", err);
}

/* Loads a file with the given text expecting failure; returns the message. */
static void load_fails(const char *text, char *err, size_t errlen)
{
    struct config cfg;
    char *path = write_config("bad.yaml", text);
    config_init_defaults(&cfg);
    assert_int_equal(config_load(&cfg, path, err, errlen), -EINVAL);
    assert_null(strchr(err, '\n'));
    if (!str_starts_with(err, path))
        fail_msg("message '%s' does not name the file %s", err, path);
    config_free(&cfg);
    unlink(path);
    free(path);
}

static void test_defaults(void **state)
{
    (void)state;
    struct config cfg;
    char host[256] = "", err[512] = "";
    config_init_defaults(&cfg);
    assert_string_equal(cfg.database_url, "postgresql://postgres:postgres@localhost:5432/attune");
    assert_int_equal(cfg.database_connect_timeout, 10);
    assert_string_equal(cfg.message_queue_url, "amqp://guest:guest@localhost:5672/%2f");
    assert_null(cfg.encryption_key);
    assert_null(cfg.jwt_secret);
    assert_true(cfg.secrets_keystore);
    assert_string_equal(cfg.packs_base_dir, "/opt/attune/packs");
    assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
    char *name = xasprintf("worker-%s", host);
    assert_string_equal(cfg.worker_name, name);
    free(name);
    assert_string_equal(cfg.worker_type, "local");
    assert_int_equal(cfg.max_concurrent_tasks, 10);
    assert_int_equal(cfg.heartbeat_interval, 30);
    assert_int_equal(cfg.task_timeout, 300);
    assert_int_equal(cfg.kill_grace_seconds, 5);
    assert_int_equal(cfg.cancel_grace_seconds, 10);
    assert_int_equal(cfg.shutdown_timeout, 30);
    assert_int_equal(cfg.max_stdout_bytes, 10485760);
    assert_int_equal(cfg.max_stderr_bytes, 10485760);
    assert_string_equal(cfg.artifacts_dir, "/var/lib/attune/artifacts");
    assert_int_equal(cfg.artifact_retention_days, 7);
    assert_string_equal(cfg.log_retention_policy, "days");
    assert_int_equal(cfg.log_retention_limit, 7);
    assert_true(cfg.log_rows);
    assert_string_equal(cfg.runtime_envs_dir, "/opt/attune/runtime_envs");
    assert_string_equal(cfg.api_url, "http://127.0.0.1:8080");
    assert_null(cfg.runtimes);
    assert_int_equal(cfg.n_action_env, 0);
    assert_int_equal(cfg.log_level, LOG_LEVEL_INFO);
    assert_int_equal(cfg.log_format, LOG_FORMAT_TEXT);
    assert_null(cfg.source_path);
    if (config_validate(&cfg, err, sizeof(err)) != 0)
        fail_msg("defaults do not validate: %s", err);
    config_free(&cfg);
}

static void test_no_file_then_cwd_file(void **state)
{
    (void)state;
    struct config cfg;
    load_ok(&cfg, NULL);
    assert_null(cfg.source_path);
    assert_int_equal(cfg.max_concurrent_tasks, 10);
    config_free(&cfg);

    char *path = write_config("config.yaml", "worker:\n  max_concurrent_tasks: 4\n");
    load_ok(&cfg, NULL);
    assert_string_equal(cfg.source_path, "config.yaml");
    assert_int_equal(cfg.max_concurrent_tasks, 4);
    config_free(&cfg);
    unlink(path);
    free(path);
}

static const char full_yaml[] = "database:\n"
                                "  url: postgres://app:pw@db.example:5433/attune\n"
                                "  connect_timeout: 20\n"
                                "message_queue:\n"
                                "  url: amqp://app:pw@mq.example/vhost\n"
                                "security:\n"
                                "  encryption_key: 0123456789abcdef0123456789abcdef\n"
                                "  jwt_secret: jwt-from-file\n"
                                "packs_base_dir: /srv/packs\n"
                                "runtime_envs_dir: /srv/envs\n"
                                "worker:\n"
                                "  name: w-1.example_A\n"
                                "  worker_type: container\n"
                                "  max_concurrent_tasks: 25\n"
                                "  heartbeat_interval: \"15\"\n"
                                "  task_timeout: 600\n"
                                "  shutdown_timeout: 0\n"
                                "  max_stdout_bytes: 2M\n"
                                "  max_stderr_bytes: 4096\n"
                                "  artifacts_dir: /srv/artifacts\n"
                                "  artifact_retention_days: 30\n"
                                "  api_url: https://attune.example:8443/api\n"
                                "  runtimes: [shell, python]\n"
                                "  env:\n"
                                "    HTTP_PROXY: http://proxy:3128\n"
                                "    RETRIES: 3\n"
                                "log:\n"
                                "  level: debug\n"
                                "  format: json\n";

static void test_file_every_key(void **state)
{
    (void)state;
    struct config cfg;
    char err[512] = "";
    char *path = write_config("full.yaml", full_yaml);
    load_ok(&cfg, path);
    assert_string_equal(cfg.source_path, path);
    assert_string_equal(cfg.database_url, "postgres://app:pw@db.example:5433/attune");
    assert_int_equal(cfg.database_connect_timeout, 20);
    assert_string_equal(cfg.message_queue_url, "amqp://app:pw@mq.example/vhost");
    assert_string_equal(cfg.encryption_key, "0123456789abcdef0123456789abcdef");
    assert_string_equal(cfg.jwt_secret, "jwt-from-file");
    assert_string_equal(cfg.packs_base_dir, "/srv/packs");
    assert_string_equal(cfg.worker_name, "w-1.example_A");
    assert_string_equal(cfg.worker_type, "container");
    assert_int_equal(cfg.max_concurrent_tasks, 25);
    assert_int_equal(cfg.heartbeat_interval, 15);
    assert_int_equal(cfg.task_timeout, 600);
    assert_int_equal(cfg.shutdown_timeout, 0);
    assert_int_equal(cfg.max_stdout_bytes, 2 * 1024 * 1024);
    assert_int_equal(cfg.max_stderr_bytes, 4096);
    assert_string_equal(cfg.artifacts_dir, "/srv/artifacts");
    assert_int_equal(cfg.artifact_retention_days, 30);
    assert_string_equal(cfg.runtime_envs_dir, "/srv/envs");
    assert_string_equal(cfg.api_url, "https://attune.example:8443/api");
    assert_non_null(cfg.runtimes);
    assert_string_equal(cfg.runtimes[0], "shell");
    assert_string_equal(cfg.runtimes[1], "python");
    assert_null(cfg.runtimes[2]);
    assert_int_equal(cfg.n_action_env, 2);
    assert_string_equal(cfg.action_env[0].name, "HTTP_PROXY");
    assert_string_equal(cfg.action_env[0].value, "http://proxy:3128");
    assert_string_equal(cfg.action_env[1].name, "RETRIES");
    assert_string_equal(cfg.action_env[1].value, "3");
    assert_int_equal(cfg.log_level, LOG_LEVEL_DEBUG);
    assert_int_equal(cfg.log_format, LOG_FORMAT_JSON);
    if (config_validate(&cfg, err, sizeof(err)) != 0)
        fail_msg("full file does not validate: %s", err);
    config_free(&cfg);
    unlink(path);
    free(path);
}

static void test_file_forms(void **state)
{
    (void)state;
    struct config cfg;
    char *path = write_config("forms.yaml", "worker:\n  runtimes: \"node , local\"\n"
                                            "security:\n  encryption_key:\nlog:\n");
    load_ok(&cfg, path);
    assert_string_equal(cfg.runtimes[0], "node");
    assert_string_equal(cfg.runtimes[1], "local");
    assert_null(cfg.runtimes[2]);
    assert_null(cfg.encryption_key);
    config_free(&cfg);
    unlink(path);
    free(path);

    path = write_config("empty.yaml", "");
    load_ok(&cfg, path);
    assert_string_equal(cfg.source_path, path);
    assert_int_equal(cfg.task_timeout, 300);
    config_free(&cfg);
    unlink(path);
    free(path);
}

/* runtimes.python.*: three levels deep in the file, a list or a string. */
static void test_python_runtime_keys(void **state)
{
    (void)state;
    struct config cfg;
    char err[512];
    load_ok(&cfg, NULL);
    assert_true(cfg.python_fork_server);
    assert_null(cfg.python_preload);
    config_free(&cfg);
    char *path = write_config("python.yaml", "runtimes:\n  python:\n    fork_server: false\n"
                                             "    preload: [json, yaml]\n");
    load_ok(&cfg, path);
    assert_false(cfg.python_fork_server);
    assert_string_equal(cfg.python_preload[0], "json");
    assert_string_equal(cfg.python_preload[1], "yaml");
    assert_null(cfg.python_preload[2]);
    config_free(&cfg);
    setenv("ATTUNE__RUNTIMES__PYTHON__PRELOAD", " a , b.c ", 1);
    load_ok(&cfg, path);
    assert_string_equal(cfg.python_preload[0], "a");
    assert_string_equal(cfg.python_preload[1], "b.c");
    assert_null(cfg.python_preload[2]);
    config_free(&cfg);
    unsetenv("ATTUNE__RUNTIMES__PYTHON__PRELOAD");
    unlink(path);
    free(path);
    load_fails("runtimes:\n  python:\n    nope: 1\n", err, sizeof(err));
    assert_non_null(strstr(err, "runtimes.python.nope"));
    load_fails("runtimes:\n  python:\n    preload: [1, {a: b}]\n", err, sizeof(err));
    assert_non_null(strstr(err, "runtimes.python.preload"));
}

static void test_env_overrides_file(void **state)
{
    (void)state;
    struct config cfg;
    char *path = write_config("full.yaml", full_yaml);
    setenv("ATTUNE__DATABASE__URL", "postgresql://env@db/env", 1);
    setenv("attune__worker__max_concurrent_tasks", "12", 1);
    setenv("ATTUNE__PACKS_BASE_DIR", "/env/packs", 1);
    setenv("ATTUNE__Worker__Runtimes", "node", 1);
    setenv("ATTUNE__LOG__LEVEL", "warn", 1);
    setenv("ATTUNE__WORKER__KILL_GRACE_SECONDS", "20", 1);
    setenv("ATTUNE__SECURITY__JWT_SECRET", "jwt-from-env", 1);
    load_ok(&cfg, path);
    assert_string_equal(cfg.database_url, "postgresql://env@db/env");
    assert_int_equal(cfg.max_concurrent_tasks, 12);
    assert_string_equal(cfg.packs_base_dir, "/env/packs");
    assert_string_equal(cfg.runtimes[0], "node");
    assert_null(cfg.runtimes[1]);
    assert_int_equal(cfg.log_level, LOG_LEVEL_WARN);
    assert_int_equal(cfg.kill_grace_seconds, 20);
    assert_string_equal(cfg.jwt_secret, "jwt-from-env");
    /* Keys the environment does not name keep the file's value. */
    assert_int_equal(cfg.task_timeout, 600);
    config_free(&cfg);
    unlink(path);
    free(path);
}

static void test_env_action_env(void **state)
{
    (void)state;
    struct config cfg;
    char *path = write_config("full.yaml", full_yaml);
    setenv("ATTUNE__WORKER__ENV__MyVar", "bar", 1);
    setenv("ATTUNE__WORKER__ENV__RETRIES", "5", 1);
    load_ok(&cfg, path);
    assert_int_equal(cfg.n_action_env, 3);
    bool seen = false;
    for (size_t i = 0; i < cfg.n_action_env; i++) {
        if (strcmp(cfg.action_env[i].name, "MyVar") == 0) {
            assert_string_equal(cfg.action_env[i].value, "bar");
            seen = true;
        }
        if (strcmp(cfg.action_env[i].name, "RETRIES") == 0)
            assert_string_equal(cfg.action_env[i].value, "5");
    }
    assert_true(seen);
    config_free(&cfg);
    unlink(path);
    free(path);
}

/* ATTUNE_API_URL, the name Attune's services read, wins over the file and
 * over ATTUNE__WORKER__API_URL; set but empty, it is not there. */
static void test_api_url_variable(void **state)
{
    (void)state;
    struct config cfg;
    char err[512] = "";
    char *path = write_config("full.yaml", full_yaml);
    setenv("ATTUNE__WORKER__API_URL", "http://from-key:1", 1);
    load_ok(&cfg, path);
    assert_string_equal(cfg.api_url, "http://from-key:1");
    config_free(&cfg);
    setenv("ATTUNE_API_URL", "http://0.0.0.0:9000", 1);
    load_ok(&cfg, path);
    assert_string_equal(cfg.api_url, "http://0.0.0.0:9000");
    config_free(&cfg);
    unsetenv("ATTUNE__WORKER__API_URL");
    setenv("ATTUNE_API_URL", "", 1);
    load_ok(&cfg, path);
    assert_string_equal(cfg.api_url, "https://attune.example:8443/api");
    config_free(&cfg);
    setenv("ATTUNE_API_URL", "api:8080", 1);
    load_ok(&cfg, path);
    assert_int_equal(config_validate(&cfg, err, sizeof(err)), -EINVAL);
    check_contains(err, "worker.api_url (or ATTUNE_API_URL): must start with http:// or https://");
    config_free(&cfg);
    unsetenv("ATTUNE_API_URL");
    unlink(path);
    free(path);
}

static void test_attune_config_variable(void **state)
{
    (void)state;
    struct config cfg;
    char err[512] = "";
    char *path = write_config("viaenv.yaml", "worker:\n  task_timeout: 42\n");
    /* ATTUNE_CONFIG names the file; it is not itself an override. */
    setenv("ATTUNE_CONFIG", path, 1);
    load_ok(&cfg, NULL);
    assert_string_equal(cfg.source_path, path);
    assert_int_equal(cfg.task_timeout, 42);
    config_free(&cfg);

    char *missing = xasprintf("%s/missing.yaml", tmpdir);
    setenv("ATTUNE_CONFIG", missing, 1);
    config_init_defaults(&cfg);
    assert_int_equal(config_load(&cfg, NULL, err, sizeof(err)), -ENOENT);
    char *want = xasprintf("cannot read %s: %s", missing, strerror(ENOENT));
    assert_string_equal(err, want);
    config_free(&cfg);
    free(want);
    free(missing);
    unlink(path);
    free(path);
}

static void test_explicit_path_must_exist(void **state)
{
    (void)state;
    struct config cfg;
    char err[512] = "";
    char *missing = xasprintf("%s/nope.yaml", tmpdir);
    config_init_defaults(&cfg);
    assert_int_equal(config_load(&cfg, missing, err, sizeof(err)), -ENOENT);
    char *want = xasprintf("cannot read %s: %s", missing, strerror(ENOENT));
    assert_string_equal(err, want);
    config_free(&cfg);
    free(want);
    free(missing);
}

static void test_unknown_key(void **state)
{
    (void)state;
    char err[512] = "";
    load_fails("worker:\n  max_concurrent: 3\n", err, sizeof(err));
    check_contains(err, ": unknown key 'worker.max_concurrent'");
    load_fails("databse:\n  url: postgresql://x\n", err, sizeof(err));
    check_contains(err, ": unknown key 'databse'");
    load_fails("worker:\n  env.FOO: x\n", err, sizeof(err));
    check_contains(err, "unknown key 'worker.env.FOO'");
    load_fails("name: x\n", err, sizeof(err));
    check_contains(err, "unknown key 'name'");
}

static void test_env_unknown_key(void **state)
{
    (void)state;
    struct config cfg;
    char err[512] = "";
    /* Other Attune services share ATTUNE__ variables: unknown ones are skipped
     * (with a warning), while a known key with a bad value still fails. */
    setenv("ATTUNE__WORKER__MAX_CONCURENT", "4", 1);
    setenv("ATTUNE__API__PORT", "8080", 1);
    config_init_defaults(&cfg);
    assert_int_equal(config_load(&cfg, NULL, err, sizeof(err)), 0);
    assert_int_equal(cfg.max_concurrent_tasks, 10);
    config_free(&cfg);
    setenv("ATTUNE__WORKER__MAX_CONCURRENT_TASKS", "four", 1);
    config_init_defaults(&cfg);
    assert_int_equal(config_load(&cfg, NULL, err, sizeof(err)), -EINVAL);
    check_contains(err, "ATTUNE__WORKER__MAX_CONCURRENT_TASKS");
    config_free(&cfg);
    unsetenv("ATTUNE__WORKER__MAX_CONCURRENT_TASKS");
    unsetenv("ATTUNE__API__PORT");
}

static void test_wrong_type(void **state)
{
    (void)state;
    char err[512] = "";
    load_fails("worker:\n  max_concurrent_tasks: ten\n", err, sizeof(err));
    check_contains(err, ": worker.max_concurrent_tasks: expected an integer, got \"ten\"");
    load_fails("worker:\n  task_timeout: 1.5\n", err, sizeof(err));
    check_contains(err, "worker.task_timeout: expected an integer");
    load_fails("worker:\n  name: [a, b]\n", err, sizeof(err));
    check_contains(err, "worker.name: expected a string, got a list");
    load_fails("worker:\n  env: [A]\n", err, sizeof(err));
    check_contains(err, "worker.env: expected a mapping");
    load_fails("worker:\n  runtimes: [shell, {a: b}]\n", err, sizeof(err));
    check_contains(err, "worker.runtimes: item 2");
    load_fails("database: postgresql://x\n", err, sizeof(err));
    check_contains(err, "database: expected a mapping");
    load_fails("log:\n  level: loud\n", err, sizeof(err));
    check_contains(err, "log.level: expected one of error, warn, info, debug, got \"loud\"");
    load_fails("- a\n- b\n", err, sizeof(err));
    check_contains(err, "the top level must be a mapping");

    struct config cfg;
    config_init_defaults(&cfg);
    setenv("ATTUNE__WORKER__HEARTBEAT_INTERVAL", "soon", 1);
    assert_int_equal(config_load(&cfg, NULL, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "ATTUNE__WORKER__HEARTBEAT_INTERVAL: worker.heartbeat_interval: "
                             "expected an integer, got \"soon\"");
    config_free(&cfg);
}

static void test_yaml_syntax_error(void **state)
{
    (void)state;
    char err[512] = "";
    load_fails("database:\n  url: postgresql://x\nworker:\n  name: [a\n  x: 1\n", err, sizeof(err));
    check_contains(err, ": line 5 column ");
    load_fails("worker:\n\tname: x\n", err, sizeof(err));
    check_contains(err, ": line 2 column 1: ");
}

static void test_config_set(void **state)
{
    (void)state;
    struct config cfg;
    char err[512] = "";
    config_init_defaults(&cfg);
    assert_int_equal(config_set(&cfg, "worker.max_concurrent_tasks", "12", err, sizeof(err)), 0);
    assert_int_equal(cfg.max_concurrent_tasks, 12);
    assert_int_equal(config_set(&cfg, "worker.name", "n1", err, sizeof(err)), 0);
    assert_string_equal(cfg.worker_name, "n1");
    assert_int_equal(config_set(&cfg, "worker.env.A", "1", err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "worker.env.A", "2", err, sizeof(err)), 0);
    assert_int_equal(cfg.n_action_env, 1);
    assert_string_equal(cfg.action_env[0].value, "2");
    assert_int_equal(config_set(&cfg, "worker.runtimes", "shell,python", err, sizeof(err)), 0);
    assert_string_equal(cfg.runtimes[1], "python");
    assert_int_equal(config_set(&cfg, "worker.runtimes", "all", err, sizeof(err)), 0);
    assert_null(cfg.runtimes);
    assert_int_equal(config_set(&cfg, "log.format", "json", err, sizeof(err)), 0);
    assert_int_equal(cfg.log_format, LOG_FORMAT_JSON);
    assert_int_equal(config_set(&cfg, "secrets.keystore", "false", err, sizeof(err)), 0);
    assert_false(cfg.secrets_keystore);
    assert_int_equal(config_set(&cfg, "secrets.keystore", "True", err, sizeof(err)), 0);
    assert_true(cfg.secrets_keystore);
    assert_int_equal(config_set(&cfg, "artifacts.log_rows", "false", err, sizeof(err)), 0);
    assert_false(cfg.log_rows);
    assert_int_equal(
        config_set(&cfg, "worker.execution_log_retention_policy", "hours", err, sizeof(err)), 0);
    assert_string_equal(cfg.log_retention_policy, "hours");

    assert_int_equal(config_set(&cfg, "secrets.keystore", "no", err, sizeof(err)), -EINVAL);
    check_contains(err, "secrets.keystore: expected true or false");
    assert_int_equal(config_set(&cfg, "worker.bogus", "1", err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "unknown key 'worker.bogus'");
    assert_int_equal(config_set(&cfg, "worker.task_timeout", "99999999999", err, sizeof(err)),
                     -EINVAL);
    check_contains(err, "worker.task_timeout: must be between 1 and 604800");
    assert_int_equal(config_set(&cfg, "log.format", "xml", err, sizeof(err)), -EINVAL);
    check_contains(err, "log.format: expected text or json");
    assert_int_equal(config_set(&cfg, "worker.env", "x", err, sizeof(err)), -EINVAL);
    check_contains(err, "worker.env");
    config_free(&cfg);
}

static void test_size_suffixes(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t bytes;
    } ok[] = {
        {"2048", 2048},    {"1K", 1024},       {"512k", 512 * 1024},    {"1M", 1024 * 1024},
        {"10m", 10485760}, {"1G", 1073741824}, {"3M", 3 * 1024 * 1024},
    };
    struct config cfg;
    char err[512] = "";
    config_init_defaults(&cfg);
    for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
        assert_int_equal(config_set(&cfg, "worker.max_stdout_bytes", ok[i].text, err, sizeof(err)),
                         0);
        assert_int_equal(cfg.max_stdout_bytes, ok[i].bytes);
        assert_int_equal(config_set(&cfg, "worker.max_stderr_bytes", ok[i].text, err, sizeof(err)),
                         0);
        assert_int_equal(cfg.max_stderr_bytes, ok[i].bytes);
    }
    static const char *const bad[] = {"", "M", "1T", "1.5M", "ten", "1 M", "99999999999G"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        assert_int_equal(config_set(&cfg, "worker.max_stdout_bytes", bad[i], err, sizeof(err)),
                         -EINVAL);
        check_contains(err, "worker.max_stdout_bytes: expected a size in bytes");
    }
    assert_int_equal(config_set(&cfg, "worker.max_stdout_bytes", "2G", err, sizeof(err)), 0);
    assert_int_equal(config_validate(&cfg, err, sizeof(err)), -EINVAL);
    check_contains(err, "worker.max_stdout_bytes: must be between 1024 and 1073741824");
    config_free(&cfg);
}

static void test_encryption_key_too_short(void **state)
{
    (void)state;
    struct config cfg;
    char err[512] = "";
    config_init_defaults(&cfg);
    assert_int_equal(config_set(&cfg, "security.encryption_key", "abcdefghijkl", err, sizeof(err)),
                     0);
    assert_int_equal(config_validate(&cfg, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "security.encryption_key: must be at least 32 characters (got 12)");
    check_lacks(err, "abcdefghijkl");

    assert_int_equal(config_set(&cfg, "security.encryption_key", "0123456789abcdef0123456789abcdef",
                                err, sizeof(err)),
                     0);
    assert_int_equal(config_validate(&cfg, err, sizeof(err)), 0);
    /* An empty value unsets the key, which is valid (run-action needs none). */
    assert_int_equal(config_set(&cfg, "security.encryption_key", "", err, sizeof(err)), 0);
    assert_null(cfg.encryption_key);
    assert_int_equal(config_validate(&cfg, err, sizeof(err)), 0);
    config_free(&cfg);
}

/* Attune sets no minimum length for its JWT secret; empty unsets it. */
static void test_jwt_secret_any_length(void **state)
{
    (void)state;
    struct config cfg;
    char err[512] = "";
    config_init_defaults(&cfg);
    assert_int_equal(config_set(&cfg, "security.jwt_secret", "short", err, sizeof(err)), 0);
    assert_string_equal(cfg.jwt_secret, "short");
    assert_int_equal(config_validate(&cfg, err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "security.jwt_secret", "", err, sizeof(err)), 0);
    assert_null(cfg.jwt_secret);
    assert_int_equal(config_validate(&cfg, err, sizeof(err)), 0);
    config_free(&cfg);
}

/* Each row sets one key to a bad value; validation must fail naming it. */
static void test_validate_each_key(void **state)
{
    (void)state;
    static const struct {
        const char *key, *value, *message;
    } rows[] = {
        {"database.url", "mysql://u:hunter2@db/x", "database.url: must start with postgresql://"},
        {"message_queue.url", "http://mq", "message_queue.url: must start with amqp://"},
        {"message_queue.url", "amqps://mq", "message_queue.url: amqps:// (TLS) is not supported"},
        {"database.connect_timeout", "0", "database.connect_timeout: must be between 1 and 600"},
        {"database.schema", "", "database.schema: must not be empty"},
        {"database.schema", "a;drop", "database.schema: must be 1 to 63 letters, digits or '_'"},
        {"database.connect_timeout", "601", "database.connect_timeout: must be between"},
        {"worker.max_concurrent_tasks", "0", "worker.max_concurrent_tasks: must be between 1 and"},
        {"worker.max_concurrent_tasks", "1001", "worker.max_concurrent_tasks: must be between"},
        {"worker.heartbeat_interval", "3601", "worker.heartbeat_interval: must be between"},
        {"worker.task_timeout", "604801", "worker.task_timeout: must be between 1 and 604800"},
        {"worker.kill_grace_seconds", "0", "worker.kill_grace_seconds: must be between 1 and 3600"},
        {"worker.kill_grace_seconds", "3601", "worker.kill_grace_seconds: must be between 1 and"},
        {"worker.cancel_grace_seconds", "0", "worker.cancel_grace_seconds: must be between 1 and"},
        {"worker.shutdown_timeout", "-1", "worker.shutdown_timeout: must be between 0 and"},
        {"worker.max_stderr_bytes", "1023", "worker.max_stderr_bytes: must be between 1024"},
        {"worker.artifact_retention_days", "3651", "worker.artifact_retention_days: must be"},
        {"worker.execution_log_retention_policy", "weeks",
         "worker.execution_log_retention_policy: must be one of versions, days"},
        {"worker.execution_log_retention_limit", "0",
         "worker.execution_log_retention_limit: must be between 1 and"},
        {"worker.name", "", "worker.name: must not be empty"},
        {"worker.name", "bad name", "worker.name: may hold only"},
        {"worker.worker_type", "cloud", "worker.worker_type: must be one of local, remote"},
        {"worker.runtimes", ",", "worker.runtimes: must name at least one runtime"},
        {"worker.env.1BAD", "x", "worker.env: \"1BAD\" is not a valid environment"},
        {"worker.env.A-B", "x", "worker.env: \"A-B\" is not a valid environment"},
        {"worker.env.BASH_ENV", "/tmp/x", "worker.env: BASH_ENV is not allowed: bash runs the"},
        {"worker.env.LD_PRELOAD", "/tmp/x.so",
         "worker.env: LD_PRELOAD is not allowed: the dynamic"},
        {"worker.env.PYTHONPATH", "/tmp", "worker.env: PYTHONPATH is not allowed: Python"},
        {"worker.env.NODE_OPTIONS", "--require=/tmp/x", "worker.env: NODE_OPTIONS is not allowed"},
        {"worker.env.PARAM_MODE", "fast", "worker.env: PARAM_MODE is not allowed"},
        {"packs_base_dir", "", "packs_base_dir: must not be empty"},
        {"runtime_envs_dir", "", "runtime_envs_dir: must not be empty"},
        {"worker.api_url", "", "worker.api_url: must not be empty"},
        {"worker.api_url", "ftp://files", "worker.api_url (or ATTUNE_API_URL): must start with"},
        {"sandbox.mode", "chroot", "sandbox.mode: must be one of auto, uid, userns, none"},
        {"sandbox.mode", "", "sandbox.mode: must not be empty"},
        {"sandbox.uid_range", "0-100", "sandbox.uid_range: expected FIRST-LAST or FIRST+COUNT"},
        {"sandbox.uid_range", "5000", "sandbox.uid_range: expected FIRST-LAST"},
        {"sandbox.uid_range", "5000-4999", "sandbox.uid_range: expected FIRST-LAST"},
        {"sandbox.uid_range", "5000-5004",
         "sandbox.uid_range: holds 5 uids, fewer than "
         "worker.max_concurrent_tasks (10)"},
        {"sandbox.uid_range", "4294967290+10", "sandbox.uid_range: expected FIRST-LAST"},
    };
    char err[512];
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct config cfg;
        config_init_defaults(&cfg);
        assert_int_equal(config_set(&cfg, rows[i].key, rows[i].value, err, sizeof(err)), 0);
        err[0] = '\0';
        if (config_validate(&cfg, err, sizeof(err)) != -EINVAL)
            fail_msg("%s=%s validated", rows[i].key, rows[i].value);
        check_contains(err, rows[i].message);
        check_lacks(err, "hunter2");
        config_free(&cfg);
    }

    struct config cfg;
    config_init_defaults(&cfg);
    /* Harmless look-alikes of denied names are accepted. */
    static const char *const fine[] = {"PYTHONUNBUFFERED", "LDFLAGS", "ENVIRONMENT", "MY_ENV"};
    for (size_t i = 0; i < ARRAY_SIZE(fine); i++) {
        char *key = xasprintf("worker.env.%s", fine[i]);
        assert_int_equal(config_set(&cfg, key, "1", err, sizeof(err)), 0);
        free(key);
    }
    assert_int_equal(config_validate(&cfg, err, sizeof(err)), 0);
    char *long_name = xmalloc(130);
    memset(long_name, 'a', 129);
    long_name[129] = '\0';
    assert_int_equal(config_set(&cfg, "worker.name", long_name + 1, err, sizeof(err)), 0);
    assert_int_equal(config_validate(&cfg, err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "worker.name", long_name, err, sizeof(err)), 0);
    assert_int_equal(config_validate(&cfg, err, sizeof(err)), -EINVAL);
    check_contains(err, "worker.name: must be at most 128 characters (got 129)");
    free(long_name);
    config_free(&cfg);
}

static void test_sandbox_keys(void **state)
{
    (void)state;
    struct config cfg;
    char err[256];
    uint32_t first, count;
    config_init_defaults(&cfg);
    assert_string_equal(cfg.sandbox_mode, "auto");
    assert_int_equal(config_sandbox_mode(&cfg), SANDBOX_MODE_AUTO);
    assert_true(config_parse_uid_range(cfg.sandbox_uid_range, &first, &count));
    assert_int_equal(first, 200000);
    assert_int_equal(count, 1000);
    assert_true(config_parse_uid_range("70000+16", &first, &count));
    assert_int_equal(first, 70000);
    assert_int_equal(count, 16);
    assert_true(config_parse_uid_range("4294967293-4294967294", &first, &count));
    assert_int_equal(count, 2);
    static const char *const bad[] = {"",    "-5-9", "5 - 9", "5-",           "+5",
                                      "5+0", "1-x",  "0+4",   "1-4294967295", "99999999999-1"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        if (config_parse_uid_range(bad[i], &first, &count))
            fail_msg("\"%s\" parsed as a uid range", bad[i]);
    static const char *const modes[] = {"none", "auto", "uid", "userns"};
    for (size_t i = 0; i < ARRAY_SIZE(modes); i++) {
        assert_int_equal(config_set(&cfg, "sandbox.mode", modes[i], err, sizeof(err)), 0);
        assert_int_equal(config_validate(&cfg, err, sizeof(err)), 0);
        assert_int_equal((int)config_sandbox_mode(&cfg), (int)i);
    }
    config_free(&cfg);
}

static char *print_to_string(const struct config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    config_print_masked(cfg, f);
    assert_int_equal(fclose(f), 0);
    return text;
}

static void test_print_masked(void **state)
{
    (void)state;
    struct config cfg;
    char err[512] = "";
    config_init_defaults(&cfg);
    assert_int_equal(config_set(&cfg, "database.url",
                                "postgresql://alice:dbpass123@db:5432/attune?password=qpass789",
                                err, sizeof(err)),
                     0);
    assert_int_equal(
        config_set(&cfg, "message_queue.url", "amqp://bob:mqpass456@mq:5672/%2f", err, sizeof(err)),
        0);
    assert_int_equal(config_set(&cfg, "security.encryption_key",
                                "supersecretencryptionkey-0123456789", err, sizeof(err)),
                     0);
    assert_int_equal(
        config_set(&cfg, "security.jwt_secret", "jwtsigningsecret-42", err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "worker.env.PROXY", "http://proxy:3128", err, sizeof(err)),
                     0);
    assert_int_equal(config_set(&cfg, "worker.runtimes", "shell", err, sizeof(err)), 0);
    char *text = print_to_string(&cfg);
    check_contains(text, "# no configuration file");
    check_lacks(text, "supersecret");
    check_lacks(text, "jwtsigningsecret");
    check_lacks(text, "dbpass123");
    check_lacks(text, "qpass789");
    check_lacks(text, "mqpass456");
    check_contains(text, "postgresql://alice:********@db:5432/attune");
    check_contains(text, "amqp://bob:********@mq:5672/%2f");
    check_contains(text, "http://proxy:3128");

    /* The print is YAML with the file's layout and every key present. */
    json_t *root = NULL;
    assert_int_equal(yaml_parse(text, strlen(text), &root, err, sizeof(err)), 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(root, "security"), "encryption_key")),
        "********");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(root, "security"), "jwt_secret")),
        "********");
    json_t *worker = json_object_get(root, "worker");
    assert_int_equal(json_integer_value(json_object_get(worker, "max_concurrent_tasks")), 10);
    assert_int_equal(json_integer_value(json_object_get(worker, "max_stdout_bytes")), 10485760);
    assert_string_equal(json_string_value(json_array_get(json_object_get(worker, "runtimes"), 0)),
                        "shell");
    assert_string_equal(json_string_value(json_object_get(json_object_get(worker, "env"), "PROXY")),
                        "http://proxy:3128");
    assert_int_equal(json_integer_value(json_object_get(worker, "kill_grace_seconds")), 5);
    assert_int_equal(json_integer_value(json_object_get(worker, "cancel_grace_seconds")), 10);
    assert_int_equal(json_integer_value(json_object_get(worker, "spare_processes")), 2);
    assert_int_equal(json_object_size(worker), 18);
    assert_string_equal(
        json_string_value(json_object_get(worker, "execution_log_retention_policy")), "days");
    assert_true(json_is_true(json_object_get(json_object_get(root, "artifacts"), "log_rows")));
    assert_string_equal(json_string_value(json_object_get(worker, "api_url")),
                        "http://127.0.0.1:8080");
    assert_string_equal(json_string_value(json_object_get(root, "runtime_envs_dir")),
                        "/opt/attune/runtime_envs");
    assert_int_equal(json_object_size(json_object_get(root, "database")), 4);
    assert_true(
        json_is_true(json_object_get(json_object_get(root, "database"), "prepared_statements")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(root, "database"), "schema")), "attune");
    assert_non_null(json_object_get(json_object_get(root, "message_queue"), "url"));
    assert_non_null(json_object_get(root, "packs_base_dir"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(root, "log"), "level")),
                        "info");
    json_decref(root);
    free(text);

    assert_int_equal(config_set(&cfg, "security.encryption_key", "", err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "worker.runtimes", "", err, sizeof(err)), 0);
    text = print_to_string(&cfg);
    check_contains(text, "(unset)");
    check_contains(text, "all");
    free(text);
    config_free(&cfg);
}

static void test_print_names_file(void **state)
{
    (void)state;
    struct config cfg;
    char *path = write_config("full.yaml", full_yaml);
    load_ok(&cfg, path);
    char *text = print_to_string(&cfg);
    char *first = xasprintf("# configuration file: %s\n", path);
    assert_true(str_starts_with(text, first));
    check_lacks(text, "0123456789abcdef0123456789abcdef");
    check_lacks(text, ":pw@");
    check_contains(text, "postgres://app:********@db.example:5433/attune");
    free(first);
    free(text);
    config_free(&cfg);
    unlink(path);
    free(path);
}

static void test_free_is_null_safe(void **state)
{
    (void)state;
    struct config cfg;
    memset(&cfg, 0, sizeof(cfg));
    config_free(&cfg);
    config_free(NULL);
    config_init_defaults(&cfg);
    config_free(&cfg);
    config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, test_setup),
        cmocka_unit_test_setup(test_no_file_then_cwd_file, test_setup),
        cmocka_unit_test_setup(test_file_every_key, test_setup),
        cmocka_unit_test_setup(test_file_forms, test_setup),
        cmocka_unit_test_setup(test_python_runtime_keys, test_setup),
        cmocka_unit_test_setup(test_env_overrides_file, test_setup),
        cmocka_unit_test_setup(test_env_action_env, test_setup),
        cmocka_unit_test_setup(test_api_url_variable, test_setup),
        cmocka_unit_test_setup(test_attune_config_variable, test_setup),
        cmocka_unit_test_setup(test_explicit_path_must_exist, test_setup),
        cmocka_unit_test_setup(test_unknown_key, test_setup),
        cmocka_unit_test_setup(test_env_unknown_key, test_setup),
        cmocka_unit_test_setup(test_wrong_type, test_setup),
        cmocka_unit_test_setup(test_yaml_syntax_error, test_setup),
        cmocka_unit_test_setup(test_config_set, test_setup),
        cmocka_unit_test_setup(test_size_suffixes, test_setup),
        cmocka_unit_test_setup(test_encryption_key_too_short, test_setup),
        cmocka_unit_test_setup(test_jwt_secret_any_length, test_setup),
        cmocka_unit_test_setup(test_validate_each_key, test_setup),
        cmocka_unit_test_setup(test_sandbox_keys, test_setup),
        cmocka_unit_test_setup(test_print_masked, test_setup),
        cmocka_unit_test_setup(test_print_names_file, test_setup),
        cmocka_unit_test_setup(test_free_is_null_safe, test_setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
