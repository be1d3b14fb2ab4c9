/* Unit tests for runtime/execution_config: template expansion, env_vars and
 * their operations, and the launch a runtime definition gives (interpreter
 * found on the actions' PATH or in the pack's environment, its arguments
 * before each runtime's wrapper), with the built-in launch unchanged when
 * the action carries no definition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"
#include "runtime/execution_config.h"
#include "runtime/registry.h"

static char tmpdir[] = "/tmp/attune-test-execconfig-XXXXXX";

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return remove_tree(tmpdir) == 0 ? 0 : -1;
}

static const struct execution_config_vars all_vars = {
    .pack_dir = "/packs/demo",
    .env_dir = "/envs/demo/python",
    .interpreter = "/usr/bin/python3",
    .manifest_path = "/packs/demo/requirements.txt",
    .action_file = "/packs/demo/actions/run.py",
};

static void check_expand(const char *tmpl, const struct execution_config_vars *vars,
                         const char *want)
{
    char *got = execution_config_expand(tmpl, vars);
    assert_string_equal(got, want);
    free(got);
}

static void test_expand(void **state)
{
    (void)state;
    check_expand("{pack_dir}/lib", &all_vars, "/packs/demo/lib");
    check_expand("{env_dir}/bin:{interpreter} {manifest_path} {action_file}", &all_vars,
                 "/envs/demo/python/bin:/usr/bin/python3 /packs/demo/requirements.txt "
                 "/packs/demo/actions/run.py");
    check_expand("{pack_dir}{pack_dir}", &all_vars, "/packs/demo/packs/demo");
    check_expand("", &all_vars, "");
    check_expand("no templates {here} {pack_dir {} }{", &all_vars,
                 "no templates {here} {pack_dir {} }{");
    check_expand("{PACK_DIR}", &all_vars, "{PACK_DIR}");
    /* Variables without a value stay as written, as in Attune. */
    struct execution_config_vars some = {.pack_dir = "/p"};
    check_expand("{env_dir}/x {pack_dir} {manifest_path}", &some, "{env_dir}/x /p {manifest_path}");
    /* One pass: a value's own braces are not expanded again. */
    struct execution_config_vars odd = {.pack_dir = "/p/{env_dir}", .env_dir = "/e"};
    check_expand("{pack_dir}", &odd, "/p/{env_dir}");
}

static void check_env(const char *json, const char *current_path, const char *name,
                      const char *want)
{
    json_t *vars = json_loads(json, 0, NULL);
    assert_non_null(vars);
    struct strv current, out;
    strv_init(&current);
    strv_init(&out);
    if (current_path)
        strv_setenv(&current, "PATH", current_path);
    execution_config_env(vars, &all_vars, &current, &out);
    const char *got = strv_getenv(&out, name);
    if (want)
        assert_string_equal(got, want);
    else
        assert_null(got);
    strv_free(&current);
    strv_free(&out);
    json_decref(vars);
}

static void test_env_vars(void **state)
{
    (void)state;
    check_env("{\"PYTHONPATH\": \"{pack_dir}/lib\"}", NULL, "PYTHONPATH", "/packs/demo/lib");
    check_env("{\"PATH\": {\"value\": \"{env_dir}/bin\"}}", "/usr/bin", "PATH",
              "/envs/demo/python/bin");
    check_env("{\"PATH\": {\"value\": \"{env_dir}/bin\", \"operation\": \"set\"}}", "/usr/bin",
              "PATH", "/envs/demo/python/bin");
    check_env("{\"PATH\": {\"value\": \"{env_dir}/bin\", \"operation\": \"prepend\"}}",
              "/usr/bin:/bin", "PATH", "/envs/demo/python/bin:/usr/bin:/bin");
    check_env("{\"PATH\": {\"value\": \"/opt/bin\", \"operation\": \"append\"}}", "/usr/bin",
              "PATH", "/usr/bin:/opt/bin");
    check_env("{\"PATH\": {\"value\": \"/opt/bin\", \"operation\": \"append\", "
              "\"separator\": \";\"}}",
              "/usr/bin", "PATH", "/usr/bin;/opt/bin");
    /* Nothing to join with: just the value, no separator. */
    check_env("{\"PYTHONPATH\": {\"value\": \"/lib\", \"operation\": \"prepend\"}}", NULL,
              "PYTHONPATH", "/lib");
    check_env("{\"PATH\": {\"value\": \"\", \"operation\": \"append\"}}", "/usr/bin", "PATH",
              "/usr/bin");
    check_env("{\"PATH\": {\"value\": \"/opt/bin\", \"operation\": \"prepend\"}}", "", "PATH",
              "/opt/bin");
    /* Reserved, malformed or of an unknown operation: left out. */
    check_env("{\"ATTUNE_X\": \"no\"}", NULL, "ATTUNE_X", NULL);
    check_env("{\"ATTUNE_EXEC_ID\": {\"value\": \"1\"}}", NULL, "ATTUNE_EXEC_ID", NULL);
    check_env("{\"N\": 5}", NULL, "N", NULL);
    check_env("{\"N\": {\"operation\": \"set\"}}", NULL, "N", NULL);
    check_env("{\"N\": {\"value\": \"x\", \"operation\": \"replace\"}}", NULL, "N", NULL);
    check_env("{\"N\": {\"value\": \"x\", \"separator\": 1}}", NULL, "N", NULL);
    check_env("{\"A=B\": \"x\"}", NULL, "A", NULL);
    check_env("{\"attune_lower\": \"yes\"}", NULL, "attune_lower", "yes");
}

/* An executable file (its content does not matter: nothing runs it). */
static char *make_program(const char *dir, const char *name)
{
    assert_int_equal(mkdir_p(dir, 0755), 0);
    char *path = xasprintf("%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0755);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(chmod(path, 0755), 0);
    return path;
}

struct fixture {
    struct action action;
    struct strv base_env;
    json_t *empty;
    struct launch_input in;
    struct launch out;
    char err[512];
};

static void fixture_init(struct fixture *f, const char *config_json)
{
    memset(f, 0, sizeof(*f));
    f->action.ref = (char *)"demo.run";
    f->action.pack_ref = (char *)"demo";
    f->action.runner_type = (char *)"python";
    f->action.pack_dir = tmpdir;
    f->action.entry_path = (char *)"/packs/demo/actions/run.py";
    f->action.runtime_config = config_json ? json_loads(config_json, 0, NULL) : NULL;
    strv_init(&f->base_env);
    char *bin = xasprintf("%s/bin", tmpdir);
    strv_setenv(&f->base_env, "PATH", bin);
    free(bin);
    f->empty = json_object();
    f->in.action = &f->action;
    f->in.base_env = &f->base_env;
    f->in.params = f->empty;
    f->in.secrets = f->empty;
    launch_init(&f->out);
}

static void fixture_free(struct fixture *f)
{
    json_decref(f->empty);
    json_decref(f->action.runtime_config);
    strv_free(&f->base_env);
    launch_free(&f->out);
}

/* The launch of the definition alone, or of a runtime's whole prepare. */
static int launch(struct fixture *f)
{
    return execution_config_launch(&runtime_python, &f->in, &f->out, f->err, sizeof(f->err));
}

static int prepare(struct fixture *f, const struct runtime *rt)
{
    return rt->prepare(rt, &f->in, &f->out, f->err, sizeof(f->err));
}

static void check_argv(const struct launch *l, const char *const *want)
{
    size_t n = 0;
    for (; want[n]; n++) {
        assert_true(n < l->argv.len);
        assert_string_equal(l->argv.items[n], want[n]);
    }
    assert_int_equal(l->argv.len, n);
}

static void test_launch_binary_on_path(void **state)
{
    (void)state;
    char *bin = xasprintf("%s/bin", tmpdir);
    char *python = make_program(bin, "mypython");
    struct fixture f;
    fixture_init(&f, "{\"interpreter\": {\"binary\": \"mypython\", \"args\": [\"-u\", "
                     "\"-X\", \"{pack_dir}:{action_file}\"]}, "
                     "\"env_vars\": {\"PATH\": {\"value\": \"/opt/x\", \"operation\": "
                     "\"prepend\"}, \"ATTUNE_X\": \"no\"}}");
    assert_int_equal(launch(&f), 0);
    assert_string_equal(f.out.path, python);
    char *third = xasprintf("%s:/packs/demo/actions/run.py", tmpdir);
    check_argv(&f.out, (const char *const[]){python, "-u", "-X", third, NULL});
    char *path = xasprintf("/opt/x:%s", bin);
    assert_string_equal(strv_getenv(&f.out.config_env, "PATH"), path);
    assert_null(strv_getenv(&f.out.config_env, "ATTUNE_X"));
    free(path);
    free(third);
    fixture_free(&f);
    free(python);
    free(bin);
}

static void test_launch_missing_binary(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, "{\"interpreter\": {\"binary\": \"python3.99\"}}");
    assert_int_equal(launch(&f), -ENOENT);
    assert_string_equal(f.err, "runtime python: interpreter python3.99 not found");
    fixture_free(&f);
    fixture_init(&f, "{\"interpreter\": {\"binary\": \"/nonexistent/python3\"}}");
    assert_int_equal(launch(&f), -ENOENT);
    assert_string_equal(f.err, "runtime python: interpreter /nonexistent/python3 not found");
    fixture_free(&f);
}

/* A relative path with a slash is the pack's own; no binary: the built-in. */
static void test_launch_relative_and_builtin(void **state)
{
    (void)state;
    char *dir = xasprintf("%s/tools", tmpdir);
    char *tool = make_program(dir, "py");
    struct fixture f;
    fixture_init(&f, "{\"interpreter\": {\"binary\": \"tools/py\"}}");
    assert_int_equal(launch(&f), 0);
    assert_string_equal(f.out.path, tool);
    fixture_free(&f);

    fixture_init(&f, "{\"interpreter\": {\"args\": [\"-u\"]}}");
    char *saved = runtime_python.interpreter;
    runtime_python.interpreter = (char *)"/usr/bin/python3";
    int rc = launch(&f);
    runtime_python.interpreter = saved;
    assert_int_equal(rc, 0);
    check_argv(&f.out, (const char *const[]){"/usr/bin/python3", "-u", NULL});
    fixture_free(&f);
    free(tool);
    free(dir);
}

/* The environment's interpreter when the environment exists, else the binary. */
static void test_launch_environment(void **state)
{
    (void)state;
    char *bin = xasprintf("%s/bin", tmpdir);
    char *system = make_program(bin, "python3");
    char *envs = xasprintf("%s/envs", tmpdir);
    const char *config = "{\"interpreter\": {\"binary\": \"python3\"}, \"environment\": "
                         "{\"env_type\": \"virtualenv\", \"interpreter_path\": "
                         "\"{env_dir}/bin/python3\"}, \"dependencies\": {\"manifest_file\": "
                         "\"requirements.txt\"}, \"env_vars\": {\"VIRTUAL_ENV\": \"{env_dir}\", "
                         "\"REQS\": \"{manifest_path}\", \"I\": \"{interpreter}\"}}";
    struct fixture f;
    fixture_init(&f, config);
    f.in.runtime_envs_dir = envs;
    assert_int_equal(launch(&f), 0);
    assert_string_equal(f.out.path, system);
    char *env_dir = xasprintf("%s/demo/python", envs);
    char *reqs = xasprintf("%s/requirements.txt", tmpdir);
    assert_string_equal(strv_getenv(&f.out.config_env, "VIRTUAL_ENV"), env_dir);
    assert_string_equal(strv_getenv(&f.out.config_env, "REQS"), reqs);
    assert_string_equal(strv_getenv(&f.out.config_env, "I"), system);
    fixture_free(&f);

    char *env_bin = xasprintf("%s/bin", env_dir);
    char *venv = make_program(env_bin, "python3");
    fixture_init(&f, config);
    f.in.runtime_envs_dir = envs;
    assert_int_equal(launch(&f), 0);
    assert_string_equal(f.out.path, venv);
    assert_string_equal(strv_getenv(&f.out.config_env, "I"), venv);
    fixture_free(&f);
    free(venv);
    free(env_bin);
    free(reqs);
    free(env_dir);
    free(envs);
    free(system);
    free(bin);
}

/* Each runtime puts its wrapper after the definition's interpreter and args. */
static void test_runtimes_follow_definition(void **state)
{
    (void)state;
    char *bin = xasprintf("%s/bin", tmpdir);
    char *py = make_program(bin, "py3");
    char *nd = make_program(bin, "nd");
    struct fixture f;
    fixture_init(&f, "{\"interpreter\": {\"binary\": \"py3\", \"args\": [\"-u\"]}}");
    assert_int_equal(prepare(&f, &runtime_python), 0);
    assert_int_equal(f.out.argv.len, 6);
    assert_string_equal(f.out.argv.items[0], py);
    assert_string_equal(f.out.argv.items[1], "-u");
    assert_string_equal(f.out.argv.items[2], "-s"); /* no user site packages */
    assert_string_equal(f.out.argv.items[3], "-c");
    assert_string_equal(f.out.argv.items[5], f.action.entry_path);
    fixture_free(&f);

    fixture_init(&f, "{\"interpreter\": {\"binary\": \"nd\", \"args\": [\"--no-warnings\"]}}");
    assert_int_equal(prepare(&f, &runtime_node), 0);
    assert_string_equal(f.out.argv.items[0], nd);
    assert_string_equal(f.out.argv.items[1], "--no-warnings");
    assert_string_equal(f.out.argv.items[2], "-e");
    fixture_free(&f);

    /* The shell wrapper needs bash: another shell is refused up front. */
    fixture_init(&f, "{\"interpreter\": {\"binary\": \"nd\"}}");
    assert_int_equal(prepare(&f, &runtime_shell), -EINVAL);
    assert_non_null(strstr(f.err, "is not bash"));
    fixture_free(&f);
    free(nd);
    free(py);
    free(bin);
}

/* Without a definition ({} counts as none) the built-in launch is unchanged. */
static void test_builtin_unchanged(void **state)
{
    (void)state;
    const char *configs[] = {NULL, "{}"};
    for (size_t i = 0; i < ARRAY_SIZE(configs); i++) {
        struct fixture f;
        fixture_init(&f, configs[i]);
        runtime_python.interpreter = (char *)"/usr/bin/python3";
        int rc = prepare(&f, &runtime_python);
        runtime_python.interpreter = NULL;
        assert_int_equal(rc, 0);
        assert_string_equal(f.out.path, "/usr/bin/python3");
        assert_string_equal(f.out.argv.items[0], "python3");
        assert_string_equal(f.out.argv.items[1], "-s");
        assert_string_equal(f.out.argv.items[2], "-c");
        assert_int_equal(f.out.config_env.len, 0);
        fixture_free(&f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expand),
        cmocka_unit_test(test_env_vars),
        cmocka_unit_test(test_launch_binary_on_path),
        cmocka_unit_test(test_launch_missing_binary),
        cmocka_unit_test(test_launch_relative_and_builtin),
        cmocka_unit_test(test_launch_environment),
        cmocka_unit_test(test_runtimes_follow_definition),
        cmocka_unit_test(test_builtin_unchanged),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
