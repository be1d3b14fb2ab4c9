/* Unit tests for exec/action: loading action files from a pack on disk, the
 * checks and their messages, and normalising both forms of parameter schemas. */
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

#include "core/util.h"
#include "exec/action.h"

static char tmpdir[] = "/tmp/attune-test-action-XXXXXX";
static char packs[PATH_MAX];
static char pack_dir_real[PATH_MAX];

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void write_action(const char *file, const char *yaml)
{
    char *path = xasprintf("%s/demo/actions/%s", packs, file);
    write_text(path, yaml);
    free(path);
}

static void check_contains(const char *s, const char *needle)
{
    if (!strstr(s, needle))
        fail_msg("message '%s' does not contain '%s'", s, needle);
}

/* Loads demo.NAME expecting failure; checks the message is one line, names
 * the file (when file is set) and contains the problem. */
static void expect_load_error(const char *ref, const char *file, const char *problem)
{
    struct action *a = (struct action *)1;
    char err[1024] = "";
    int rc = action_load_from_pack(packs, ref, &a, err, sizeof(err));
    assert_true(rc < 0);
    assert_null(a);
    assert_null(strchr(err, '\n'));
    if (file) {
        char *path = xasprintf("%s/demo/actions/%s: ", packs, file);
        if (!str_starts_with(err, path))
            fail_msg("message '%s' does not start with '%s'", err, path);
        free(path);
    }
    check_contains(err, problem);
}

static json_t *load_json(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, 0, &jerr);
    if (!v)
        fail_msg("bad test JSON: %s", jerr.text);
    return v;
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(packs, sizeof(packs), "%s/packs", tmpdir);
    char *actions = xasprintf("%s/demo/actions", packs);
    int rc = mkdir_p(actions, 0755);
    free(actions);
    if (rc < 0)
        return -1;
    char *p = xasprintf("%s/demo/pack.yaml", packs);
    write_text(p, "ref: demo\nlabel: Demo\nversion: 1.0.0\n");
    free(p);
    p = xasprintf("%s/demo/actions/hello.sh", packs);
    write_text(p, "#!/bin/sh\necho hello\n");
    free(p);
    p = xasprintf("%s/demo/actions/lib", packs);
    rc = mkdir_p(p, 0755);
    free(p);
    p = xasprintf("%s/demo/actions/lib/run.py", packs);
    write_text(p, "def run():\n    return 1\n");
    free(p);
    p = xasprintf("%s/demo", packs);
    if (!realpath(p, pack_dir_real))
        rc = -1;
    free(p);
    return rc;
}

static int teardown(void **state)
{
    (void)state;
    return remove_tree(tmpdir);
}

static void test_load_defaults(void **state)
{
    (void)state;
    write_action("minimal.yaml", "runner_type: shell\nentry_point: hello.sh\n");
    struct action *a = NULL;
    char err[512] = "";
    assert_int_equal(action_load_from_pack(packs, "demo.minimal", &a, err, sizeof(err)), 0);
    assert_string_equal(a->ref, "demo.minimal");
    assert_string_equal(a->pack_ref, "demo");
    assert_string_equal(a->name, "minimal");
    assert_null(a->label);
    assert_null(a->description);
    assert_true(a->enabled);
    assert_string_equal(a->runner_type, "shell");
    assert_string_equal(a->entry_point, "hello.sh");
    assert_string_equal(a->pack_dir, pack_dir_real);
    char *entry = xasprintf("%s/actions/hello.sh", pack_dir_real);
    assert_string_equal(a->entry_path, entry);
    free(entry);
    assert_int_equal(a->parameter_delivery, PARAM_DELIVERY_STDIN);
    assert_int_equal(a->parameter_format, PARAM_FORMAT_JSON);
    assert_int_equal(a->output_format, OUTPUT_FORMAT_TEXT);
    assert_int_equal(a->timeout_seconds, 0);
    json_t *empty = load_json("{\"type\":\"object\",\"properties\":{},\"required\":[]}");
    assert_true(json_equal(a->param_schema, empty));
    json_decref(empty);
    action_free(a);
}

static void test_load_full(void **state)
{
    (void)state;
    write_action("full.yaml", "ref: demo.full\n"
                              "pack: demo\n"
                              "label: Full\n"
                              "description: Every setting\n"
                              "enabled: false\n"
                              "runner_type: python\n"
                              "entry_point: lib/run.py\n"
                              "parameter_delivery: file\n"
                              "parameter_format: dotenv\n"
                              "output_format: jsonl\n"
                              "timeout: 30\n"
                              "tags: [a, b]\n"
                              "notify: {on-complete: {routes: [slack]}}\n"
                              "output_schema: {type: object}\n"
                              "something_else: 1\n"
                              "parameters:\n"
                              "  who: {type: string, required: true, default: world}\n");
    struct action *a = NULL;
    char err[512] = "";
    assert_int_equal(action_load_from_pack(packs, "demo.full", &a, err, sizeof(err)), 0);
    assert_string_equal(a->ref, "demo.full");
    assert_string_equal(a->label, "Full");
    assert_string_equal(a->description, "Every setting");
    assert_false(a->enabled);
    assert_string_equal(a->runner_type, "python");
    assert_string_equal(a->entry_point, "lib/run.py");
    assert_true(str_ends_with(a->entry_path, "/demo/actions/lib/run.py"));
    assert_int_equal(a->parameter_delivery, PARAM_DELIVERY_FILE);
    assert_int_equal(a->parameter_format, PARAM_FORMAT_DOTENV);
    assert_int_equal(a->output_format, OUTPUT_FORMAT_JSONL);
    assert_int_equal(a->timeout_seconds, 30);
    json_t *want = load_json("{\"type\":\"object\",\"properties\":{\"who\":{\"type\":\"string\","
                             "\"default\":\"world\"}},\"required\":[\"who\"]}");
    assert_true(json_equal(a->param_schema, want));
    json_decref(want);
    action_free(a);
}

static void test_load_yml_and_name_key(void **state)
{
    (void)state;
    write_action("other.yml", "name: other\nrunner_type: local\nentry_point: hello.sh\n");
    struct action *a = NULL;
    char err[512] = "";
    assert_int_equal(action_load_from_pack(packs, "demo.other", &a, err, sizeof(err)), 0);
    assert_string_equal(a->ref, "demo.other");
    assert_string_equal(a->runner_type, "local");
    action_free(a);
    /* ref without the pack part */
    write_action("short.yaml", "ref: short\nrunner_type: shell\nentry_point: hello.sh\n");
    assert_int_equal(action_load_from_pack(packs, "demo.short", &a, err, sizeof(err)), 0);
    assert_string_equal(a->ref, "demo.short");
    action_free(a);
}

static void test_schema_forms_agree(void **state)
{
    (void)state;
    write_action("mapform.yaml", "runner_type: shell\nentry_point: hello.sh\nparameters:\n"
                                 "  name: {type: string, description: Who, required: true}\n"
                                 "  count: {type: integer, default: 3}\n"
                                 "  color: {type: string, enum: [red, green], default: red}\n"
                                 "  token: {type: string, secret: true, required: true}\n"
                                 "  anything: {}\n");
    write_action("schemaform.yaml", "runner_type: shell\nentry_point: hello.sh\nparameters:\n"
                                    "  type: object\n"
                                    "  required: [token, name]\n"
                                    "  additionalProperties: false\n"
                                    "  properties:\n"
                                    "    name: {type: string, description: Who}\n"
                                    "    count: {type: integer, default: 3, minimum: 1}\n"
                                    "    color: {type: string, enum: [red, green], default: red}\n"
                                    "    token: {type: string, secret: true}\n"
                                    "    anything: {}\n");
    struct action *m = NULL, *s = NULL;
    char err[512] = "";
    assert_int_equal(action_load_from_pack(packs, "demo.mapform", &m, err, sizeof(err)), 0);
    assert_int_equal(action_load_from_pack(packs, "demo.schemaform", &s, err, sizeof(err)), 0);
    json_t *want = load_json("{\"type\":\"object\",\"properties\":{"
                             "\"name\":{\"type\":\"string\",\"description\":\"Who\"},"
                             "\"count\":{\"type\":\"integer\",\"default\":3},"
                             "\"color\":{\"type\":\"string\",\"default\":\"red\","
                             "\"enum\":[\"red\",\"green\"]},"
                             "\"token\":{\"type\":\"string\",\"secret\":true},"
                             "\"anything\":{}},"
                             "\"required\":[\"name\",\"token\"]}");
    assert_true(json_equal(m->param_schema, want));
    assert_true(json_equal(s->param_schema, want));
    char *a = json_dumps(m->param_schema, JSON_COMPACT);
    char *b = json_dumps(s->param_schema, JSON_COMPACT);
    assert_string_equal(a, b);
    free(a);
    free(b);
    json_decref(want);
    action_free(m);
    action_free(s);
}

static void test_normalise_schema(void **state)
{
    (void)state;
    json_t *out = NULL;
    char err[256] = "";
    json_t *empty = load_json("{\"type\":\"object\",\"properties\":{},\"required\":[]}");
    assert_int_equal(action_normalise_schema(NULL, &out, err, sizeof(err)), 0);
    assert_true(json_equal(out, empty));
    json_decref(out);
    json_t *null = json_null();
    assert_int_equal(action_normalise_schema(null, &out, err, sizeof(err)), 0);
    assert_true(json_equal(out, empty));
    json_decref(out);
    json_decref(empty);

    json_t *bad = load_json("{\"count\":{\"type\":\"int\"}}");
    assert_int_equal(action_normalise_schema(bad, &out, err, sizeof(err)), -EINVAL);
    assert_null(out);
    assert_string_equal(err, "parameter 'count': unknown type 'int'");
    json_decref(bad);

    bad = load_json("{\"color\":{\"type\":\"string\",\"enum\":\"red\"}}");
    assert_int_equal(action_normalise_schema(bad, &out, err, sizeof(err)), -EINVAL);
    check_contains(err, "parameter 'color': enum must be a list");
    json_decref(bad);

    bad = load_json("{\"properties\":{\"x\":{\"type\":\"float\"}},\"required\":[]}");
    assert_int_equal(action_normalise_schema(bad, &out, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "parameter 'x': unknown type 'float'");
    json_decref(bad);

    bad = load_json("[1]");
    assert_int_equal(action_normalise_schema(bad, &out, err, sizeof(err)), -EINVAL);
    check_contains(err, "parameters must be a mapping");
    json_decref(bad);

    /* A map-form parameter that happens to be called "properties". */
    json_t *odd = load_json("{\"properties\":{\"type\":\"object\"}}");
    assert_int_equal(action_normalise_schema(odd, &out, err, sizeof(err)), 0);
    json_t *props = json_object_get(out, "properties");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(props, "properties"), "type")), "object");
    json_decref(out);
    json_decref(odd);
}

static void test_error_not_found(void **state)
{
    (void)state;
    char *msg = xasprintf("action 'demo.nope' not found: no file %s/demo/actions/nope.yaml", packs);
    struct action *a = NULL;
    char err[1024] = "";
    assert_int_equal(action_load_from_pack(packs, "demo.nope", &a, err, sizeof(err)), -ENOENT);
    assert_string_equal(err, msg);
    free(msg);
    expect_load_error("nopack.x", NULL, "action 'nopack.x' not found");
}

static void test_error_bad_ref(void **state)
{
    (void)state;
    const char *bad[] = {"demo",     "demo.",   ".x",        "../demo.x", "demo./x",
                         "demo.a/b", "demo..x", "demo.a..b", "de/mo.x",   ""};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        expect_load_error(bad[i], NULL, "invalid action reference");
}

static void test_error_malformed_yaml(void **state)
{
    (void)state;
    write_action("broken.yaml", "runner_type: shell\nentry_point: hello.sh\n  oops: [\n");
    expect_load_error("demo.broken", "broken.yaml", "line 3");
    write_action("list.yaml", "- runner_type: shell\n");
    expect_load_error("demo.list", "list.yaml",
                      "expected a mapping of action settings, got a list");
    write_action("empty.yaml", "");
    expect_load_error("demo.empty", "empty.yaml", "expected a mapping");
}

/* Which runner types exist is the registry's to say (test_registry). */
static void test_error_runner_type(void **state)
{
    (void)state;
    write_action("ruby.yaml", "runner_type: ruby\nentry_point: hello.sh\n");
    struct action *a = NULL;
    char err[1024] = "";
    assert_int_equal(action_load_from_pack(packs, "demo.ruby", &a, err, sizeof(err)), 0);
    assert_string_equal(a->runner_type, "ruby");
    char *path = xasprintf("%s/demo/actions/ruby.yaml", packs);
    assert_string_equal(a->source_path, path);
    free(path);
    action_free(a);
    write_action("norunner.yaml", "entry_point: hello.sh\n");
    expect_load_error("demo.norunner", "norunner.yaml", "runner_type is missing");
}

static void test_error_entry_point(void **state)
{
    (void)state;
    write_action("noentry.yaml", "runner_type: shell\n");
    expect_load_error("demo.noentry", "noentry.yaml", "entry_point is missing");

    write_action("gone.yaml", "runner_type: python\nentry_point: x.py\n");
    char *want =
        xasprintf("entry_point 'x.py' does not exist (looked for %s/actions/x.py)", pack_dir_real);
    expect_load_error("demo.gone", "gone.yaml", want);
    free(want);

    write_action("escape.yaml", "runner_type: shell\nentry_point: ../pack.yaml\n");
    expect_load_error("demo.escape", "escape.yaml", "entry_point '../pack.yaml' must be");
    write_action("escape2.yaml", "runner_type: shell\nentry_point: lib/../../pack.yaml\n");
    expect_load_error("demo.escape2", "escape2.yaml", "no '..'");
    write_action("abs.yaml", "runner_type: shell\nentry_point: /bin/sh\n");
    expect_load_error("demo.abs", "abs.yaml", "entry_point '/bin/sh' must be a relative path");
    write_action("dir.yaml", "runner_type: shell\nentry_point: lib\n");
    expect_load_error("demo.dir", "dir.yaml", "entry_point 'lib' is not a regular file");
    write_action("numentry.yaml", "runner_type: shell\nentry_point: 5\n");
    expect_load_error("demo.numentry", "numentry.yaml", "entry_point must be a string");
}

static void test_error_enums(void **state)
{
    (void)state;
    write_action("fmt.yaml", "runner_type: shell\nentry_point: hello.sh\nparameter_format: toml\n");
    expect_load_error("demo.fmt", "fmt.yaml",
                      "unknown parameter_format 'toml' (expected json, yaml or dotenv)");
    write_action("dlv.yaml", "runner_type: shell\nentry_point: hello.sh\n"
                             "parameter_delivery: argv\n");
    expect_load_error("demo.dlv", "dlv.yaml",
                      "unknown parameter_delivery 'argv' (expected stdin or file)");
    write_action("out.yaml", "runner_type: shell\nentry_point: hello.sh\noutput_format: xml\n");
    expect_load_error("demo.out", "out.yaml", "unknown output_format 'xml'");
}

static void test_error_wrong_types(void **state)
{
    (void)state;
    write_action("soon.yaml", "runner_type: shell\nentry_point: hello.sh\ntimeout: \"soon\"\n");
    expect_load_error("demo.soon", "soon.yaml", "timeout must be a positive whole number");
    write_action("zero.yaml", "runner_type: shell\nentry_point: hello.sh\ntimeout: 0\n");
    expect_load_error("demo.zero", "zero.yaml", "timeout");
    write_action("frac.yaml", "runner_type: shell\nentry_point: hello.sh\ntimeout: 1.5\n");
    expect_load_error("demo.frac", "frac.yaml", "timeout");
    write_action("en.yaml", "runner_type: shell\nentry_point: hello.sh\nenabled: \"yes\"\n");
    expect_load_error("demo.en", "en.yaml", "enabled must be true or false");
    write_action("lbl.yaml", "runner_type: shell\nentry_point: hello.sh\nlabel: [x]\n");
    expect_load_error("demo.lbl", "lbl.yaml", "label must be a string");
    write_action("ptype.yaml", "runner_type: shell\nentry_point: hello.sh\n"
                               "parameters: {count: {type: int}}\n");
    expect_load_error("demo.ptype", "ptype.yaml", "parameter 'count': unknown type 'int'");
}

static void test_error_ref_mismatch(void **state)
{
    (void)state;
    write_action("mine.yaml", "ref: demo.theirs\nrunner_type: shell\nentry_point: hello.sh\n");
    expect_load_error("demo.mine", "mine.yaml",
                      "ref 'demo.theirs' does not match the file name (expected 'demo.mine')");
    write_action("foreign.yaml", "ref: other.foreign\nrunner_type: shell\nentry_point: hello.sh\n");
    expect_load_error("demo.foreign", "foreign.yaml", "does not belong to pack 'demo'");
    write_action("named.yaml", "name: unnamed\nrunner_type: shell\nentry_point: hello.sh\n");
    expect_load_error("demo.named", "named.yaml", "name 'unnamed' does not match the file name");
}

static void test_from_definition(void **state)
{
    (void)state;
    char *dir = xasprintf("%s/demo", packs);
    json_t *def = load_json("{\"name\":\"inline\",\"runner_type\":\"node\","
                            "\"entry_point\":\"hello.sh\",\"output_format\":\"json\"}");
    struct action *a = NULL;
    char err[512] = "";
    assert_int_equal(action_from_definition(def, "demo", dir, &a, err, sizeof(err)), 0);
    assert_string_equal(a->ref, "demo.inline");
    assert_string_equal(a->pack_dir, pack_dir_real);
    assert_int_equal(a->output_format, OUTPUT_FORMAT_JSON);
    action_free(a);
    json_decref(def);

    def = load_json("{\"runner_type\":\"node\",\"entry_point\":\"hello.sh\"}");
    assert_int_equal(action_from_definition(def, "demo", dir, &a, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "neither ref nor name is set");
    json_decref(def);
    free(dir);
    action_free(NULL);
}

static void test_enum_names(void **state)
{
    (void)state;
    enum param_delivery d;
    enum param_format f;
    enum output_format o;
    assert_true(param_delivery_parse("file", &d));
    assert_int_equal(d, PARAM_DELIVERY_FILE);
    assert_false(param_delivery_parse("argv", &d));
    assert_true(param_format_parse("dotenv", &f));
    assert_int_equal(f, PARAM_FORMAT_DOTENV);
    assert_false(param_format_parse("JSON", &f));
    assert_true(output_format_parse("jsonl", &o));
    assert_int_equal(o, OUTPUT_FORMAT_JSONL);
    assert_false(output_format_parse(NULL, &o));
    assert_string_equal(param_delivery_name(PARAM_DELIVERY_STDIN), "stdin");
    assert_string_equal(param_format_name(PARAM_FORMAT_YAML), "yaml");
    assert_string_equal(output_format_name(OUTPUT_FORMAT_TEXT), "text");
    assert_string_equal(output_format_name((enum output_format)42), "unknown");
}

/* The execution's own timeout wins, then the action's, then the worker's. */
static void test_timeout_rule(void **state)
{
    (void)state;
    struct action *a = action_new();
    assert_int_equal(action_timeout_seconds(a, 0, 300), 300);
    assert_int_equal(action_timeout_seconds(a, 7, 300), 7);
    a->timeout_seconds = 60;
    assert_int_equal(action_timeout_seconds(a, 0, 300), 60);
    assert_int_equal(action_timeout_seconds(a, -5, 300), 60);
    assert_int_equal(action_timeout_seconds(a, 7, 300), 7);
    action_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_defaults),
        cmocka_unit_test(test_load_full),
        cmocka_unit_test(test_load_yml_and_name_key),
        cmocka_unit_test(test_schema_forms_agree),
        cmocka_unit_test(test_normalise_schema),
        cmocka_unit_test(test_error_not_found),
        cmocka_unit_test(test_error_bad_ref),
        cmocka_unit_test(test_error_malformed_yaml),
        cmocka_unit_test(test_error_runner_type),
        cmocka_unit_test(test_error_entry_point),
        cmocka_unit_test(test_error_enums),
        cmocka_unit_test(test_error_wrong_types),
        cmocka_unit_test(test_error_ref_mismatch),
        cmocka_unit_test(test_from_definition),
        cmocka_unit_test(test_enum_names),
        cmocka_unit_test(test_timeout_rule),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
