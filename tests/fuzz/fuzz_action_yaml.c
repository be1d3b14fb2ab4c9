/* libFuzzer target: action definitions as a pack author writes them (YAML
 * through yaml_parse, action_from_definition against a fixed pack directory,
 * action_normalise_schema), then parameters checked and formatted against the
 * schema that came out. The normalised schema must be stable: stored as JSON
 * (attunectl pack load) and normalised again (the worker), it is unchanged. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "core/util.h"
#include "core/yaml.h"
#include "exec/action.h"
#include "exec/params.h"

#define PACK_REF "fuzzpack"
#define MAX_ASSIGNED 8

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char pack_dir[64];
static char *pack_dir_real;

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_action_yaml: %s: %s\n", what, detail);
    abort();
}

static void put_file(const char *rel, const char *text)
{
    char *path = xasprintf("%s/%s", pack_dir, rel);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        fail("cannot write", path);
    free(path);
}

static void remove_pack_dir(void)
{
    remove_tree(pack_dir);
    free(pack_dir_real);
}

/* A pack whose actions/ holds the entry points the seeds name, a subfolder
 * and a directory where a file is expected. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(pack_dir, sizeof(pack_dir), "/tmp/attune-fuzz-pack-XXXXXX");
    if (!mkdtemp(pack_dir))
        fail("mkdtemp", pack_dir);
    char *sub = xasprintf("%s/actions/lib", pack_dir);
    char *dir = xasprintf("%s/actions/adir", pack_dir);
    if (mkdir_p(sub, 0700) < 0 || mkdir_p(dir, 0700) < 0)
        fail("mkdir", sub);
    free(sub);
    free(dir);
    put_file("actions/run.sh", "#!/bin/sh\necho hi\n");
    put_file("actions/main.py", "def run(**kw):\n    return kw\n");
    put_file("actions/lib/tool.js", "module.exports.run = async (p) => p;\n");
    pack_dir_real = realpath(pack_dir, NULL);
    if (!pack_dir_real)
        fail("realpath", pack_dir);
    atexit(remove_pack_dir);
    return 0;
}

static void check_schema_shape(const json_t *schema)
{
    const char *type = json_string_value(json_object_get(schema, "type"));
    const json_t *props = json_object_get(schema, "properties");
    const json_t *req = json_object_get(schema, "required");
    if (!type || strcmp(type, "object") != 0 || !json_is_object(props) || !json_is_array(req))
        fail("normalised schema has the wrong shape", "");
    const char *name;
    const json_t *prop;
    json_object_foreach((json_t *)props, name, prop)
    {
        if (!name[0] || !json_is_object(prop))
            fail("normalised property is not a mapping", name);
    }
    size_t i;
    const json_t *r;
    json_array_foreach(req, i, r)
    {
        if (!json_is_string(r))
            fail("required holds a non-string", "");
    }
}

/* The schema goes to the database as compact JSON and comes back through
 * action_normalise_schema when the worker builds the action. */
static void check_schema_stable(const json_t *schema)
{
    char *text = json_dumps(schema, JSON_COMPACT);
    if (!text)
        fail("normalised schema cannot be written as JSON", "");
    json_error_t jerr;
    json_t *stored = json_loads(text, 0, &jerr);
    if (!stored)
        fail("normalised schema does not read back as JSON", jerr.text);
    json_t *again = NULL;
    char err[1024] = "";
    if (action_normalise_schema(stored, &again, err, sizeof(err)) != 0)
        fail("stored schema is rejected when normalised again", err);
    if (!json_equal(again, schema))
        fail("schema changes when normalised again", text);
    json_decref(again);
    json_decref(stored);
    free(text);
}

static void normalise(const json_t *parameters)
{
    json_t *schema = NULL;
    char err[1024] = "";
    if (action_normalise_schema(parameters, &schema, err, sizeof(err)) != 0) {
        if (!err[0] || schema)
            fail("bad failure from action_normalise_schema", err);
        return;
    }
    check_schema_shape(schema);
    check_schema_stable(schema);
    json_decref(schema);
}

static bool has_dotdot(const char *path)
{
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return true;
        p += n;
        p += *p == '/';
    }
    return false;
}

static void check_action(const struct action *a)
{
    char *prefix = xasprintf("%s/actions/", pack_dir_real);
    if (!a->entry_point || a->entry_point[0] == '/' || has_dotdot(a->entry_point) ||
        !a->entry_path || !str_starts_with(a->entry_path, prefix))
        fail("entry point outside the pack's actions/", a->entry_path ? a->entry_path : "");
    free(prefix);
    struct stat st;
    if (stat(a->entry_path, &st) != 0 || !S_ISREG(st.st_mode))
        fail("entry point is not a regular file", a->entry_path);
    char *ref = xasprintf("%s.%s", PACK_REF, a->name);
    if (strcmp(ref, a->ref) != 0 || strcmp(a->pack_ref, PACK_REF) != 0)
        fail("ref does not match pack and name", a->ref);
    free(ref);
    if (!a->name[0] || a->name[0] == '.' || strstr(a->name, "..") ||
        a->name[strspn(a->name,
                       "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")])
        fail("invalid action name accepted", a->name);
    if (a->timeout_seconds < 0)
        fail("negative timeout", a->ref);
    check_schema_shape(a->param_schema);
}

/* Parameters as a user gives them on the command line, then checked against
 * the action's schema and delivered in the action's own format. */
static void use_parameters(const struct action *a)
{
    static const char *const samples[] = {"1", "true", "[1,\"x\"]", "{\"k\":null}", "x'y", "2.5"};
    json_t *params = json_object();
    const char *name;
    const json_t *prop;
    size_t n = 0;
    char err[1024];
    json_object_foreach(json_object_get(a->param_schema, "properties"), name, prop)
    {
        if (n >= MAX_ASSIGNED)
            break;
        char *assignment = xasprintf("%s=%s", name, samples[n % ARRAY_SIZE(samples)]);
        params_assign(params, a->param_schema, assignment, err, sizeof(err));
        free(assignment);
        n++;
    }
    params_validate(params, a->param_schema, err, sizeof(err));
    struct strbuf out;
    strbuf_init(&out);
    params_format(params, a->parameter_format, &out);
    strbuf_free(&out);
    struct strv env;
    strv_init(&env);
    params_to_env(params, NULL, NULL, &env);
    strv_free(&env);
    json_decref(params);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *doc = NULL;
    char err[1024] = "";
    if (yaml_parse((const char *)data, size, &doc, err, sizeof(err)) != 0) {
        if (doc || !err[0])
            fail("bad failure from yaml_parse", err);
        return 0;
    }
    normalise(json_object_get(doc, "parameters"));
    normalise(doc); /* the top level reaches both schema forms more often */
    struct action *a = NULL;
    if (action_from_definition(doc, PACK_REF, pack_dir, &a, err, sizeof(err)) == 0) {
        check_action(a);
        use_parameters(a);
        action_free(a);
    } else if (a || !err[0]) {
        fail("bad failure from action_from_definition", err);
    }
    json_decref(doc);
    return 0;
}
