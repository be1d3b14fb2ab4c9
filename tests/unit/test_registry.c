/* Unit tests for runtime/registry: the names of runtimes (row names, runner
 * types, worker.runtimes), finding interpreters on a PATH, wanted versus
 * optional runtimes, picking the runtime for an action (local actions by
 * extension or as executables, native always, ad-hoc code under shell only),
 * and the runtimes and versions the worker advertises. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/util.h"
#include "runtime/registry.h"

static char tmpdir[] = "/tmp/attune-test-registry-XXXXXX";
/* A PATH holding bash and python3 but no node. */
static char *nodeless_path;

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(tmpdir))
        return -1;
    nodeless_path = xasprintf("%s/bin", tmpdir);
    if (mkdir(nodeless_path, 0700) < 0)
        return -1;
    const char *programs[] = {"bash", "python3"};
    for (size_t i = 0; i < ARRAY_SIZE(programs); i++) {
        char *target = runtime_find_program(programs[i], "/usr/bin:/bin");
        if (!target)
            continue;
        char *link = xasprintf("%s/%s", nodeless_path, programs[i]);
        int rc = symlink(target, link);
        free(link);
        free(target);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(nodeless_path);
    return remove_tree(tmpdir) == 0 ? 0 : -1;
}

static bool on_path(const char *program, const char *path)
{
    char *found = runtime_find_program(program, path);
    free(found);
    return found != NULL;
}

static bool has_runtime(const struct registry *reg, const char *name)
{
    for (size_t i = 0; i < reg->count; i++)
        if (strcmp(reg->runtimes[i]->name, name) == 0)
            return true;
    return false;
}

static void check_describe(const struct registry *reg, const char *want)
{
    struct strbuf sb;
    strbuf_init(&sb);
    registry_describe(reg, &sb);
    assert_string_equal(sb.data, want);
    strbuf_free(&sb);
}

static void test_all_runtimes_on_system_path(void **state)
{
    (void)state;
    const char *path = "/usr/bin:/bin";
    struct registry reg;
    char err[256] = "x";
    assert_int_equal(registry_init(&reg, NULL, path, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    bool bash = access("/usr/bin/bash", X_OK) == 0 || access("/bin/bash", X_OK) == 0;
    bool python = access("/usr/bin/python3", X_OK) == 0 || access("/bin/python3", X_OK) == 0;
    bool node = access("/usr/bin/node", X_OK) == 0 || access("/bin/node", X_OK) == 0;
    assert_int_equal(has_runtime(&reg, "shell"), bash);
    assert_int_equal(has_runtime(&reg, "python"), python);
    assert_int_equal(has_runtime(&reg, "node"), node);
    assert_true(has_runtime(&reg, "local")); /* needs no interpreter */
    assert_int_equal(reg.count, (size_t)bash + python + node + 1);
    /* Each usable runtime knows where its interpreter is. */
    for (size_t i = 0; i < reg.count; i++) {
        const struct runtime *rt = reg.runtimes[i];
        assert_true(rt->usable);
        if (rt->interpreter_name) {
            assert_non_null(rt->interpreter);
            assert_true(str_starts_with(rt->interpreter, "/usr/bin/") ||
                        str_starts_with(rt->interpreter, "/bin/"));
            assert_int_equal(access(rt->interpreter, X_OK), 0);
        }
    }
    if (bash && python && node)
        check_describe(&reg, "shell,python,node,local");
    registry_free(&reg);
    assert_int_equal(reg.count, 0);
    check_describe(&reg, "");
}

static void test_missing_interpreter(void **state)
{
    (void)state;
    if (!on_path("bash", nodeless_path) || !on_path("python3", nodeless_path))
        skip();
    struct registry reg;
    char err[256] = "";
    /* Not asked for by name: node is just left out. */
    assert_int_equal(registry_init(&reg, NULL, nodeless_path, err, sizeof(err)), 0);
    assert_false(has_runtime(&reg, "node"));
    assert_true(has_runtime(&reg, "shell"));
    assert_true(has_runtime(&reg, "python"));
    assert_true(has_runtime(&reg, "local"));
    check_describe(&reg, "shell,python,local");
    registry_free(&reg);

    /* Asked for by name: an error naming the runtime and its interpreter. */
    char *wanted[] = {(char *)"shell", (char *)"node", NULL};
    int rc = registry_init(&reg, wanted, nodeless_path, err, sizeof(err));
    assert_true(rc < 0);
    assert_non_null(strstr(err, "node"));
    registry_free(&reg);

    /* Only what is wanted is kept. */
    char *some[] = {(char *)"python", (char *)"local", NULL};
    assert_int_equal(registry_init(&reg, some, nodeless_path, err, sizeof(err)), 0);
    check_describe(&reg, "python,local");
    registry_free(&reg);

    /* An empty PATH leaves only local. */
    assert_int_equal(registry_init(&reg, NULL, "", err, sizeof(err)), 0);
    check_describe(&reg, "local");
    registry_free(&reg);
}

static const char *select_name(const struct registry *reg, const char *runner_type,
                               const char *entry_path)
{
    struct action a;
    memset(&a, 0, sizeof(a));
    a.runner_type = (char *)runner_type;
    a.entry_path = (char *)entry_path;
    const struct runtime *rt = NULL;
    char err[256] = "";
    int rc = registry_select(reg, &a, &rt, err, sizeof(err));
    if (rc != 0)
        fail_msg("registry_select(%s, %s) failed: %s", runner_type, entry_path, err);
    assert_non_null(rt);
    return rt->name;
}

static void test_select(void **state)
{
    (void)state;
    struct registry reg;
    char err[256] = "";
    assert_int_equal(registry_init(&reg, NULL, "/usr/bin:/bin", err, sizeof(err)), 0);
    if (!has_runtime(&reg, "shell") || !has_runtime(&reg, "python") || !has_runtime(&reg, "node")) {
        registry_free(&reg);
        skip();
    }
    /* Local actions go to the runtime of their extension... */
    assert_string_equal(select_name(&reg, "local", "/packs/p/actions/run.sh"), "shell");
    assert_string_equal(select_name(&reg, "local", "/packs/p/actions/run.py"), "python");
    assert_string_equal(select_name(&reg, "local", "/packs/p/actions/run.js"), "node");
    /* ...and an executable without one runs as itself. */
    char *exe = xasprintf("%s/tool", tmpdir);
    int fd = open(exe, O_WRONLY | O_CREAT | O_TRUNC, 0755);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(chmod(exe, 0755), 0);
    assert_string_equal(select_name(&reg, "local", exe), "local");
    free(exe);
    /* Other runner types name their runtime directly. */
    assert_string_equal(select_name(&reg, "shell", "/packs/p/actions/run.sh"), "shell");
    assert_string_equal(select_name(&reg, "python", "/packs/p/actions/run.py"), "python");
    assert_string_equal(select_name(&reg, "node", "/packs/p/actions/run.js"), "node");

    /* An unknown runner type. */
    struct action a;
    memset(&a, 0, sizeof(a));
    a.runner_type = (char *)"perl";
    a.entry_path = (char *)"/packs/p/actions/run.pl";
    const struct runtime *rt = NULL;
    int rc = registry_select(&reg, &a, &rt, err, sizeof(err));
    assert_int_equal(rc, -EINVAL);
    assert_null(rt);
    assert_string_equal(err, "unknown runner type 'perl'");
    registry_free(&reg);
}

static void test_select_unavailable_runtime(void **state)
{
    (void)state;
    if (!on_path("bash", nodeless_path))
        skip();
    struct registry reg;
    char err[256] = "";
    assert_int_equal(registry_init(&reg, NULL, nodeless_path, err, sizeof(err)), 0);
    struct action a;
    memset(&a, 0, sizeof(a));
    a.runner_type = (char *)"local";
    a.entry_path = (char *)"/packs/p/actions/run.js";
    const struct runtime *rt = NULL;
    int rc = registry_select(&reg, &a, &rt, err, sizeof(err));
    assert_true(rc < 0);
    assert_int_not_equal(rc, -EINVAL);
    assert_null(rt);
    assert_non_null(strstr(err, "'node'"));
    assert_non_null(strstr(err, "not available"));
    a.runner_type = (char *)"node";
    rc = registry_select(&reg, &a, &rt, err, sizeof(err));
    assert_true(rc < 0);
    assert_non_null(strstr(err, "not available"));
    /* What is available still works. */
    assert_string_equal(select_name(&reg, "local", "/packs/p/actions/run.sh"), "shell");
    registry_free(&reg);
}

static void write_text(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write_all(fd, text, strlen(text)), 0);
    close(fd);
}

static void test_runner_name(void **state)
{
    (void)state;
    assert_string_equal(registry_runner_name(NULL), "local");
    assert_string_equal(registry_runner_name(""), "local");
    assert_string_equal(registry_runner_name("shell"), "shell");
    assert_string_equal(registry_runner_name("Python"), "python");
    assert_string_equal(registry_runner_name("python3"), "python");
    assert_string_equal(registry_runner_name("NodeJS"), "node");
    assert_string_equal(registry_runner_name("node"), "node");
    assert_string_equal(registry_runner_name("bash"), "shell");
    assert_string_equal(registry_runner_name("SH"), "shell");
    assert_string_equal(registry_runner_name("LOCAL"), "local");
    assert_string_equal(registry_runner_name("ruby"), "ruby");
    /* The names of Attune's own runtime catalog and their aliases. */
    assert_string_equal(registry_runner_name("Shell"), "shell");
    assert_string_equal(registry_runner_name("Node.js"), "node");
    assert_string_equal(registry_runner_name("Native"), "native");
    assert_string_equal(registry_runner_name("builtin"), "native");
    assert_string_equal(registry_runner_name("Standalone"), "native");
}

/* An action file may name any runner type; run-action and pack load refuse
 * one that is not a runtime, naming the file. */
static void test_check_runner(void **state)
{
    (void)state;
    char *packs = xasprintf("%s/packs", tmpdir);
    char *actions = xasprintf("%s/demo/actions", packs);
    assert_int_equal(mkdir_p(actions, 0755), 0);
    char *file = xasprintf("%s/hello.sh", actions);
    write_text(file, "#!/bin/sh\necho hello\n");
    free(file);
    file = xasprintf("%s/ruby.yaml", actions);
    write_text(file, "runner_type: ruby\nentry_point: hello.sh\n");
    free(file);
    char *msg = xasprintf("%s/demo/actions/ruby.yaml: unknown runner_type 'ruby' (expected shell, "
                          "python, node, local or native)",
                          packs);
    struct action *a = NULL;
    char err[1024] = "";
    assert_int_equal(action_load_from_pack(packs, "demo.ruby", &a, err, sizeof(err)), 0);
    assert_int_equal(registry_check_runner(a, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, msg);
    free(msg);
    /* Built from a definition (pack load, the database): the caller says where from. */
    free(a->source_path);
    a->source_path = NULL;
    assert_int_equal(registry_check_runner(a, err, sizeof(err)), -EINVAL);
    assert_string_equal(
        err, "unknown runner_type 'ruby' (expected shell, python, node, local or native)");
    const char *known[] = {"shell", "python", "node", "local", "native"};
    for (size_t i = 0; i < ARRAY_SIZE(known); i++) {
        free(a->runner_type);
        a->runner_type = xstrdup(known[i]);
        assert_int_equal(registry_check_runner(a, err, sizeof(err)), 0);
    }
    action_free(a);
    free(actions);
    free(packs);
}

static void test_check_names(void **state)
{
    (void)state;
    struct config cfg;
    char err[512] = "";
    config_init_defaults(&cfg);
    assert_int_equal(registry_check_names(cfg.runtimes, err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "worker.runtimes", "shell,ruby", err, sizeof(err)), 0);
    assert_int_equal(registry_check_names(cfg.runtimes, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "worker.runtimes: unknown runtime \"ruby\""));
    assert_string_equal(
        err,
        "worker.runtimes: unknown runtime \"ruby\" (known: shell, python, node, local, native)");
    assert_int_equal(
        config_set(&cfg, "worker.runtimes", "local,node,python,shell,native", err, sizeof(err)), 0);
    assert_int_equal(registry_check_names(cfg.runtimes, err, sizeof(err)), 0);
    config_free(&cfg);
}

/* native runs the entry point itself whatever its name, with no interpreter
 * and whatever worker.runtimes chose. */
static void test_native(void **state)
{
    (void)state;
    struct registry reg;
    char err[256] = "";
    char *only_python[] = {(char *)"python", NULL};
    assert_int_equal(registry_init(&reg, only_python, "/usr/bin:/bin", err, sizeof(err)), 0);
    char *exe = xasprintf("%s/tool.py", tmpdir);
    write_text(exe, "#!/bin/sh\necho hi\n");
    assert_int_equal(chmod(exe, 0755), 0);
    struct action a;
    memset(&a, 0, sizeof(a));
    a.runner_type = (char *)"native";
    a.entry_path = exe;
    assert_string_equal(registry_runtime_name(&a), "native");
    const struct runtime *rt = NULL;
    assert_int_equal(registry_select(&reg, &a, &rt, err, sizeof(err)), 0);
    assert_ptr_equal(rt, &runtime_native);
    /* Its launch is the file itself, secrets as JSON on fd 3. */
    json_t *empty = json_object();
    struct launch_input in = {.action = &a, .params = empty, .secrets = empty};
    struct launch l;
    launch_init(&l);
    assert_int_equal(rt->prepare(rt, &in, &l, err, sizeof(err)), 0);
    assert_string_equal(l.path, exe);
    assert_string_equal(l.argv.items[0], "tool.py");
    assert_int_equal(l.control, PROC_CONTROL_PIPE);
    assert_string_equal(l.control_data.data, "{}");
    launch_free(&l);
    /* Not executable: said so, without local's advice on extensions. */
    assert_int_equal(chmod(exe, 0644), 0);
    launch_init(&l);
    assert_int_equal(rt->prepare(rt, &in, &l, err, sizeof(err)), -EACCES);
    assert_null(strstr(err, "give it a"));
    assert_non_null(strstr(err, "not executable"));
    launch_free(&l);
    json_decref(empty);
    free(exe);
    registry_free(&reg);
}

/* Ad-hoc code has no file: only the shell runtime runs it. */
static void test_inline_code(void **state)
{
    (void)state;
    struct registry reg;
    char err[256] = "";
    assert_int_equal(registry_init(&reg, NULL, "/usr/bin:/bin", err, sizeof(err)), 0);
    if (!has_runtime(&reg, "shell")) {
        registry_free(&reg);
        skip();
    }
    struct action a;
    memset(&a, 0, sizeof(a));
    a.inline_code = true;
    a.entry_point = (char *)"echo hi";
    a.runner_type = (char *)"shell";
    const struct runtime *rt = NULL;
    assert_int_equal(registry_select(&reg, &a, &rt, err, sizeof(err)), 0);
    assert_ptr_equal(rt, &runtime_shell);
    assert_true(registry_adhoc_is_inline("shell"));
    const char *others[] = {"python", "local", "native"};
    for (size_t i = 0; i < ARRAY_SIZE(others); i++) {
        assert_false(registry_adhoc_is_inline(others[i]));
        a.runner_type = (char *)others[i];
        rt = NULL;
        assert_int_equal(registry_select(&reg, &a, &rt, err, sizeof(err)), -EINVAL);
        assert_null(rt);
        assert_non_null(strstr(err, "ad-hoc code runs only under the shell runtime"));
        assert_non_null(strstr(err, others[i]));
    }
    registry_free(&reg);
}

static bool json_has_string(const json_t *array, const char *s)
{
    size_t i;
    json_t *item;
    json_array_foreach(array, i, item)
    {
        if (strcmp(json_string_value(item), s) == 0)
            return true;
    }
    return false;
}

/* What the scheduler matches: Attune's names, native always, local never. */
static void test_capabilities(void **state)
{
    (void)state;
    struct registry reg;
    char err[256] = "";
    assert_int_equal(registry_init(&reg, NULL, "", err, sizeof(err)), 0);
    json_t *names = registry_capability_runtimes(&reg);
    assert_int_equal(json_array_size(names), 1);
    assert_true(json_has_string(names, "native"));
    json_decref(names);
    json_t *versions = registry_capability_versions(&reg);
    assert_int_equal(json_object_size(versions), 0);
    json_decref(versions);
    registry_free(&reg);

    assert_int_equal(registry_init(&reg, NULL, "/usr/bin:/bin", err, sizeof(err)), 0);
    names = registry_capability_runtimes(&reg);
    assert_int_equal(json_has_string(names, "shell"), has_runtime(&reg, "shell"));
    assert_int_equal(json_has_string(names, "python"), has_runtime(&reg, "python"));
    assert_int_equal(json_has_string(names, "node"), has_runtime(&reg, "node"));
    assert_int_equal(json_has_string(names, "node.js"), has_runtime(&reg, "node"));
    assert_true(json_has_string(names, "native"));
    assert_false(json_has_string(names, "local"));
    json_decref(names);
    /* Versions only once asked for, then as the interpreters tell them. */
    versions = registry_capability_versions(&reg);
    assert_int_equal(json_object_size(versions), 0);
    json_decref(versions);
    registry_detect_versions(&reg, 5000);
    versions = registry_capability_versions(&reg);
    assert_null(json_object_get(versions, "shell"));
    const char *keys[] = {"python", "node"};
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
        const json_t *list = json_object_get(versions, keys[i]);
        if (!has_runtime(&reg, keys[i])) {
            assert_null(list);
            continue;
        }
        assert_int_equal(json_array_size(list), 1);
        const char *v = json_string_value(json_array_get(list, 0));
        assert_non_null(v);
        assert_true(v[0] >= '0' && v[0] <= '9');
        assert_non_null(strchr(v, '.'));
    }
    json_decref(versions);
    registry_free(&reg);
}

/* The version chosen for an action keeps to what this worker advertises. */
static void test_version_config(void **state)
{
    (void)state;
    struct registry reg = {.runtimes = {&runtime_python}, .count = 1};
    json_t *versions = json_pack("[{s:s, s:{s:s}, s:b, s:b}, {s:s, s:{s:s}, s:b, s:b}]", "version",
                                 "3.11", "execution_config", "name", "three-eleven", "is_default",
                                 0, "available", 1, "version", "3.12", "execution_config", "name",
                                 "three-twelve", "is_default", 1, "available", 1);
    /* No version detected: nothing is advertised, so no version is chosen. */
    assert_null(registry_version_config(&reg, "python", versions, NULL));
    runtime_python.version = xstrdup("3.11.2");
    const json_t *c = registry_version_config(&reg, "python", versions, NULL);
    assert_non_null(c);
    assert_string_equal(json_string_value(json_object_get(c, "name")), "three-eleven");
    assert_null(registry_version_config(&reg, "python", versions, ">=3.12"));
    assert_null(registry_version_config(&reg, "node", versions, NULL));
    free(runtime_python.version);
    runtime_python.version = xstrdup("3.12.7");
    c = registry_version_config(&reg, "python", versions, NULL);
    assert_string_equal(json_string_value(json_object_get(c, "name")), "three-twelve");
    free(runtime_python.version);
    runtime_python.version = NULL;
    json_decref(versions);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_runtimes_on_system_path),
        cmocka_unit_test(test_missing_interpreter),
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_select_unavailable_runtime),
        cmocka_unit_test(test_runner_name),
        cmocka_unit_test(test_check_runner),
        cmocka_unit_test(test_check_names),
        cmocka_unit_test(test_native),
        cmocka_unit_test(test_inline_code),
        cmocka_unit_test(test_capabilities),
        cmocka_unit_test(test_version_config),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
