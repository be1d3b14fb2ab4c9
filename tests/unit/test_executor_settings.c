/* Unit tests for executor/settings: the base environment actions start from,
 * the caps taken from the configuration, the runtimes looked up on the
 * actions' PATH, and spawn hooks left alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/util.h"
#include "executor/settings.h"

static void on_spawn(pid_t pgid, void *userdata)
{
    (void)pgid;
    (void)userdata;
}

static void test_from_defaults(void **state)
{
    (void)state;
    struct config cfg;
    config_init_defaults(&cfg);
    struct executor_settings s = {.on_spawn = on_spawn, .hook_userdata = &cfg};
    struct registry reg;
    char err[512] = "";
    char *local[] = {(char *)"local", NULL};
    assert_int_equal(executor_settings_init(&s, &reg, &cfg, local, err, sizeof(err)), 0);
    assert_string_equal(strv_getenv(&s.base_env, "PATH"), RUNTIME_DEFAULT_PATH);
    assert_non_null(strv_getenv(&s.base_env, "HOME"));
    assert_non_null(strv_getenv(&s.base_env, "LANG"));
    assert_int_equal(s.max_stdout_bytes, cfg.max_stdout_bytes);
    assert_int_equal(s.max_stderr_bytes, cfg.max_stderr_bytes);
    assert_int_equal(s.kill_grace_ms, 5000);
    assert_string_equal(s.api_url, "http://127.0.0.1:8080");
    assert_string_equal(s.runtime_envs_dir, "/opt/attune/runtime_envs");
    assert_ptr_equal(s.registry, &reg);
    assert_int_equal(reg.count, 1);
    assert_string_equal(reg.runtimes[0]->name, "local");
    assert_ptr_equal(s.on_spawn, on_spawn);
    assert_ptr_equal(s.hook_userdata, &cfg);
    registry_free(&reg);
    executor_settings_free(&s);
    assert_null(s.base_env.items);
    assert_null(s.api_url);
    config_free(&cfg);
}

/* worker.env comes last, so it may replace PATH, and interpreters are then
 * looked up on that PATH. */
static void test_worker_env_path(void **state)
{
    (void)state;
    struct config cfg;
    char err[512] = "";
    config_init_defaults(&cfg);
    assert_int_equal(config_set(&cfg, "worker.env.PATH", "/nonexistent", err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "worker.env.EXTRA", "yes", err, sizeof(err)), 0);
    struct executor_settings s = {0};
    struct registry reg;
    char *shell[] = {(char *)"shell", NULL};
    int rc = executor_settings_init(&s, &reg, &cfg, shell, err, sizeof(err));
    assert_true(rc < 0);
    assert_non_null(strstr(err, "/nonexistent"));
    assert_string_equal(strv_getenv(&s.base_env, "PATH"), "/nonexistent");
    assert_string_equal(strv_getenv(&s.base_env, "EXTRA"), "yes");
    registry_free(&reg);
    executor_settings_free(&s);
    config_free(&cfg);
}

/* worker.kill_grace_seconds is the grace the executor gives a process group
 * between SIGTERM and SIGKILL. */
static void test_kill_grace_from_config(void **state)
{
    (void)state;
    struct config cfg;
    char err[512] = "";
    config_init_defaults(&cfg);
    assert_int_equal(config_set(&cfg, "worker.kill_grace_seconds", "2", err, sizeof(err)), 0);
    struct executor_settings s = {0};
    struct registry reg;
    char *local[] = {(char *)"local", NULL};
    assert_int_equal(executor_settings_init(&s, &reg, &cfg, local, err, sizeof(err)), 0);
    assert_int_equal(s.kill_grace_ms, 2000);
    registry_free(&reg);
    executor_settings_free(&s);
    config_free(&cfg);
}

/* An API URL that names a listening address is made one actions can reach. */
static void test_api_url_made_reachable(void **state)
{
    (void)state;
    struct config cfg;
    char err[512] = "";
    config_init_defaults(&cfg);
    assert_int_equal(config_set(&cfg, "worker.api_url", "http://0.0.0.0:8080", err, sizeof(err)),
                     0);
    struct executor_settings s = {0};
    struct registry reg;
    char *local[] = {(char *)"local", NULL};
    assert_int_equal(executor_settings_init(&s, &reg, &cfg, local, err, sizeof(err)), 0);
    assert_string_equal(s.api_url, "http://127.0.0.1:8080");
    registry_free(&reg);
    executor_settings_free(&s);
    config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_defaults),
        cmocka_unit_test(test_worker_env_path),
        cmocka_unit_test(test_kill_grace_from_config),
        cmocka_unit_test(test_api_url_made_reachable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
