/* Unit tests for exec/params: typed NAME=VALUE assignment, validation
 * messages, defaults, the json/yaml/dotenv formats and PARAM_ variables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "core/yaml.h"
#include "exec/params.h"

static const char schema_text[] = "{\"type\":\"object\",\"properties\":{"
                                  "\"name\":{\"type\":\"string\"},"
                                  "\"count\":{\"type\":\"integer\",\"default\":3},"
                                  "\"ratio\":{\"type\":\"number\"},"
                                  "\"flag\":{\"type\":\"boolean\"},"
                                  "\"tags\":{\"type\":\"array\",\"default\":[\"a\"]},"
                                  "\"opts\":{\"type\":\"object\"},"
                                  "\"color\":{\"type\":\"string\",\"enum\":[\"red\",\"green\"]},"
                                  "\"size\":{\"enum\":[1,\"big\"]},"
                                  "\"free\":{}},"
                                  "\"required\":[\"name\"]}";

static json_t *load_json(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (!v)
        fail_msg("bad test JSON '%s': %s", text, jerr.text);
    return v;
}

/* Assigns and returns the compact JSON of the resulting value (caller frees). */
static char *assign_ok(const char *assignment)
{
    json_t *schema = load_json(schema_text);
    json_t *params = json_object();
    char err[256] = "";
    int rc = params_assign(params, schema, assignment, err, sizeof(err));
    if (rc < 0)
        fail_msg("params_assign('%s') failed: %s", assignment, err);
    const char *eq = strchr(assignment, '=');
    char *name = xstrndup(assignment, (size_t)(eq - assignment));
    char *text = json_dumps(json_object_get(params, name), JSON_COMPACT | JSON_ENCODE_ANY);
    free(name);
    json_decref(params);
    json_decref(schema);
    return text;
}

static void expect_assign(const char *assignment, const char *json)
{
    char *got = assign_ok(assignment);
    if (strcmp(got, json) != 0)
        fail_msg("'%s' gave %s, expected %s", assignment, got, json);
    free(got);
}

static void expect_assign_error(const char *assignment, const char *message)
{
    json_t *schema = load_json(schema_text);
    json_t *params = json_object();
    char err[256] = "";
    assert_int_equal(params_assign(params, schema, assignment, err, sizeof(err)), -EINVAL);
    if (!strstr(err, message))
        fail_msg("'%s' gave message '%s', expected '%s'", assignment, err, message);
    assert_int_equal(json_object_size(params), 0);
    json_decref(params);
    json_decref(schema);
}

static void test_assign_types(void **state)
{
    (void)state;
    expect_assign("count=3", "3");
    expect_assign("count=-42", "-42");
    expect_assign("ratio=2.5", "2.5");
    expect_assign("ratio=7", "7");
    expect_assign("ratio=-1e3", "-1000.0");
    expect_assign("flag=true", "true");
    expect_assign("flag=YES", "true");
    expect_assign("flag=1", "true");
    expect_assign("flag=False", "false");
    expect_assign("flag=no", "false");
    expect_assign("flag=0", "false");
    expect_assign("tags=[\"x\",1]", "[\"x\",1]");
    expect_assign("opts={\"a\":{\"b\":null}}", "{\"a\":{\"b\":null}}");
    expect_assign("name=a=b c", "\"a=b c\"");
    expect_assign("name=", "\"\"");
    expect_assign("name=42", "\"42\"");
    expect_assign("free=42", "\"42\"");
    expect_assign("unknown=true", "\"true\"");
    expect_assign("size=1", "\"1\"");
}

static void test_assign_errors(void **state)
{
    (void)state;
    expect_assign_error("count", "-p expects NAME=VALUE, got 'count'");
    expect_assign_error("=3", "-p expects NAME=VALUE, got '=3'");
    expect_assign_error("count=x", "parameter 'count' must be an integer, got 'x'");
    expect_assign_error("count=3.5", "parameter 'count' must be an integer, got '3.5'");
    expect_assign_error("count= 3", "parameter 'count' must be an integer");
    expect_assign_error("count=", "parameter 'count' must be an integer, got ''");
    expect_assign_error("count=99999999999999999999", "parameter 'count' must be an integer");
    expect_assign_error("ratio=abc", "parameter 'ratio' must be a number, got 'abc'");
    expect_assign_error("ratio=inf", "parameter 'ratio' must be a number");
    expect_assign_error("ratio=0x10", "parameter 'ratio' must be a number");
    expect_assign_error("flag=maybe", "parameter 'flag' must be a boolean");
    expect_assign_error("tags={\"a\":1}", "parameter 'tags' must be a JSON array, got object");
    expect_assign_error("tags=[1,", "parameter 'tags' must be a JSON array, got '[1,'");
    expect_assign_error("opts=[1]", "parameter 'opts' must be a JSON object, got array");
}

static void expect_validate_error(const char *params_text, const char *message)
{
    json_t *schema = load_json(schema_text);
    json_t *params = load_json(params_text);
    char err[256] = "";
    assert_int_equal(params_validate(params, schema, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, message);
    json_decref(params);
    json_decref(schema);
}

static void test_validate_defaults(void **state)
{
    (void)state;
    json_t *schema = load_json(schema_text);
    json_t *params = load_json("{\"name\":\"n\",\"extra\":[1],\"ratio\":2,\"color\":null}");
    char err[256] = "";
    assert_int_equal(params_validate(params, schema, err, sizeof(err)), 0);
    json_t *want = load_json("{\"name\":\"n\",\"extra\":[1],\"ratio\":2,\"color\":null,"
                             "\"count\":3,\"tags\":[\"a\"]}");
    assert_true(json_equal(params, want));
    /* Defaults are copies: changing one leaves the schema alone. */
    json_array_append_new(json_object_get(params, "tags"), json_string("b"));
    json_t *def =
        json_object_get(json_object_get(json_object_get(schema, "properties"), "tags"), "default");
    assert_int_equal(json_array_size(def), 1);
    json_decref(want);
    json_decref(params);

    /* A given value wins over the default. */
    params = load_json("{\"name\":\"n\",\"count\":7,\"size\":\"big\"}");
    assert_int_equal(params_validate(params, schema, err, sizeof(err)), 0);
    assert_int_equal(json_integer_value(json_object_get(params, "count")), 7);
    json_decref(params);
    json_decref(schema);
}

static void test_validate_errors(void **state)
{
    (void)state;
    expect_validate_error("{}", "missing required parameter 'name'");
    expect_validate_error("{\"name\":null}", "required parameter 'name' is null");
    expect_validate_error("{\"name\":\"n\",\"count\":\"3\"}",
                          "parameter 'count' must be an integer, got string");
    expect_validate_error("{\"name\":\"n\",\"count\":3.0}",
                          "parameter 'count' must be an integer, got number");
    expect_validate_error("{\"name\":\"n\",\"ratio\":true}",
                          "parameter 'ratio' must be a number, got boolean");
    expect_validate_error("{\"name\":\"n\",\"flag\":\"yes\"}",
                          "parameter 'flag' must be a boolean, got string");
    expect_validate_error("{\"name\":\"n\",\"tags\":{}}",
                          "parameter 'tags' must be an array, got object");
    expect_validate_error("{\"name\":\"n\",\"opts\":[]}",
                          "parameter 'opts' must be an object, got array");
    expect_validate_error("{\"name\":1}", "parameter 'name' must be a string, got integer");
    expect_validate_error("{\"name\":\"n\",\"color\":\"blue\"}",
                          "parameter 'color' must be one of: red, green; got 'blue'");
    expect_validate_error("{\"name\":\"n\",\"size\":2}",
                          "parameter 'size' must be one of: 1, big; got 2");
    /* Errors come in property order, whatever the order of the values. */
    expect_validate_error("{\"color\":\"blue\",\"name\":\"n\",\"count\":\"x\"}",
                          "parameter 'count' must be an integer, got string");

    json_t *schema = load_json("{\"type\":\"object\",\"properties\":{},\"required\":[\"ghost\"]}");
    json_t *params = json_object();
    char err[256] = "";
    assert_int_equal(params_validate(params, schema, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "missing required parameter 'ghost'");
    json_decref(params);
    json_decref(schema);
}

static const char sample_text[] = "{\"name\":\"it's \\\"quoted\\\"\",\"count\":3,\"ratio\":1.5,"
                                  "\"flag\":true,\"off\":false,\"none\":null,"
                                  "\"tags\":[\"a\",\"b c\"],"
                                  "\"nested\":{\"x\":\"y\",\"deep\":{\"z\":1}},"
                                  "\"empty\":{},\"text\":\"line1\\nline2 \\u00e9\"}";

static char *format(const char *params_text, enum param_format f)
{
    json_t *params = load_json(params_text);
    struct strbuf sb;
    strbuf_init(&sb);
    params_format(params, f, &sb);
    json_decref(params);
    return strbuf_detach(&sb, NULL);
}

static void test_format_json(void **state)
{
    (void)state;
    char *out = format(sample_text, PARAM_FORMAT_JSON);
    assert_string_equal(out, "{\"name\":\"it's \\\"quoted\\\"\",\"count\":3,\"ratio\":1.5,"
                             "\"flag\":true,\"off\":false,\"none\":null,"
                             "\"tags\":[\"a\",\"b c\"],"
                             "\"nested\":{\"x\":\"y\",\"deep\":{\"z\":1}},"
                             "\"empty\":{},\"text\":\"line1\\nline2 \xc3\xa9\"}\n");
    free(out);
    out = format("{}", PARAM_FORMAT_JSON);
    assert_string_equal(out, "{}\n");
    free(out);
    /* Insertion order is kept, not sorted. */
    json_t *p = json_object();
    json_object_set_new(p, "zeta", json_integer(1));
    json_object_set_new(p, "alpha", json_integer(2));
    struct strbuf sb;
    strbuf_init(&sb);
    params_format(p, PARAM_FORMAT_JSON, &sb);
    assert_string_equal(sb.data, "{\"zeta\":1,\"alpha\":2}\n");
    strbuf_free(&sb);
    json_decref(p);
}

static void test_format_yaml(void **state)
{
    (void)state;
    char *out = format(sample_text, PARAM_FORMAT_YAML);
    /* Plain where that reads back the same; quoted where a reader could take
     * the text for another type (YAML 1.1's off, numbers, true...). */
    assert_string_equal(out, "name: 'it''s \"quoted\"'\n"
                             "count: 3\n"
                             "ratio: 1.5\n"
                             "flag: true\n"
                             "'off': false\n"
                             "none: null\n"
                             "tags:\n"
                             "- a\n"
                             "- b c\n"
                             "nested:\n"
                             "  x: 'y'\n"
                             "  deep:\n"
                             "    z: 1\n"
                             "empty: {}\n"
                             "text: 'line1\n"
                             "\n"
                             "  line2 \xc3\xa9'\n");
    /* And it reads back as the same value. */
    json_t *back = NULL, *orig = load_json(sample_text);
    char err[128];
    assert_int_equal(yaml_parse(out, strlen(out), &back, err, sizeof(err)), 0);
    assert_true(json_equal(back, orig));
    json_decref(back);
    json_decref(orig);
    free(out);
}

static void test_format_dotenv(void **state)
{
    (void)state;
    char *out = format(sample_text, PARAM_FORMAT_DOTENV);
    assert_string_equal(out, "name='it'\\''s \"quoted\"'\n"
                             "count='3'\n"
                             "ratio='1.5'\n"
                             "flag='true'\n"
                             "off='false'\n"
                             "none=''\n"
                             "tags='[\"a\",\"b c\"]'\n"
                             "nested.x='y'\n"
                             "nested.deep.z='1'\n"
                             "empty='{}'\n"
                             "text='line1\nline2 \xc3\xa9'\n");
    free(out);
    out = format("{\"my key=\":\"v\",\"caf\xc3\xa9\":1}", PARAM_FORMAT_DOTENV);
    assert_string_equal(out, "my_key_='v'\ncaf_='1'\n");
    free(out);
    out = format("{}", PARAM_FORMAT_DOTENV);
    assert_string_equal(out, "");
    free(out);
}

/* sh reading the dotenv file must give back exactly the original strings. */
static void test_dotenv_sh_round_trip(void **state)
{
    (void)state;
    const char *value = "first line\nit's \"double\" and 'single'\n$HOME ${PATH} `echo no` $(echo "
                        "no) \\ back\\slash\ttab \xc3\xa9\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 "
                        "'' end\n\n";
    char dir[] = "/tmp/attune-test-params-XXXXXX";
    assert_non_null(mkdtemp(dir));
    json_t *params = json_object();
    json_object_set_new(params, "key", json_string(value));
    json_object_set_new(params, "other", json_string("x'y"));
    json_object_set_new(params, "n", json_integer(5));
    struct strbuf sb;
    strbuf_init(&sb);
    params_format(params, PARAM_FORMAT_DOTENV, &sb);
    char *path = xasprintf("%s/params.env", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(sb.data, 1, sb.len, f), sb.len);
    assert_int_equal(fclose(f), 0);

    char *cmd = xasprintf("cd '%s' && /bin/sh -c 'set -a; . ./params.env; "
                          "printf %%s \"$key\"; printf \"|%%s|%%s\" \"$other\" \"$n\"'",
                          dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    struct strbuf got;
    strbuf_init(&got);
    char buf[256];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
        strbuf_append(&got, buf, n);
    assert_int_equal(pclose(p), 0);
    char *want = xasprintf("%s|x'y|5", value);
    assert_string_equal(got.data, want);

    free(want);
    strbuf_free(&got);
    free(cmd);
    free(path);
    strbuf_free(&sb);
    json_decref(params);
    assert_int_equal(remove_tree(dir), 0);
}

static const char *env_get(const struct strv *env, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < env->len; i++)
        if (strncmp(env->items[i], name, len) == 0 && env->items[i][len] == '=')
            return env->items[i] + len + 1;
    return NULL;
}

static void test_to_env(void **state)
{
    (void)state;
    json_t *params = load_json("{\"my-param\":\"v a l\",\"count\":3,\"ratio\":0.25,"
                               "\"flag\":false,\"none\":null,\"list\":[1,\"a\"],"
                               "\"obj\":{\"k\":\"v\"},\"caf\xc3\xa9.x\":\"c\",\"Mixed_9\":\"m\"}");
    struct strv env;
    strv_init(&env);
    strv_setenv(&env, "PATH", "/usr/bin");
    strv_setenv(&env, "PARAM_COUNT", "old");
    params_to_env(params, NULL, NULL, &env);
    assert_string_equal(env_get(&env, "PATH"), "/usr/bin");
    assert_string_equal(env_get(&env, "PARAM_MY_PARAM"), "v a l");
    assert_string_equal(env_get(&env, "PARAM_COUNT"), "3");
    assert_string_equal(env_get(&env, "PARAM_RATIO"), "0.25");
    assert_string_equal(env_get(&env, "PARAM_FLAG"), "false");
    assert_string_equal(env_get(&env, "PARAM_NONE"), "");
    assert_string_equal(env_get(&env, "PARAM_LIST"), "[1,\"a\"]");
    assert_string_equal(env_get(&env, "PARAM_OBJ"), "{\"k\":\"v\"}");
    assert_string_equal(env_get(&env, "PARAM_CAF__X"), "c");
    assert_string_equal(env_get(&env, "PARAM_MIXED_9"), "m");
    assert_int_equal(env.len, 10);
    assert_null(env.items[env.len]);
    strv_free(&env);

    /* Secret values stay out: listed as hidden, or marked secret in the schema. */
    json_t *schema = load_json("{\"type\":\"object\",\"properties\":{\"count\":"
                               "{\"type\":\"integer\",\"secret\":true}}}");
    json_t *hidden = load_json("[\"my-param\", \"obj\"]");
    strv_init(&env);
    params_to_env(params, schema, hidden, &env);
    assert_null(env_get(&env, "PARAM_MY_PARAM"));
    assert_null(env_get(&env, "PARAM_OBJ"));
    assert_null(env_get(&env, "PARAM_COUNT"));
    assert_string_equal(env_get(&env, "PARAM_RATIO"), "0.25");
    assert_int_equal(env.len, 6);
    strv_free(&env);
    json_decref(schema);
    json_decref(hidden);
    json_decref(params);
}

static const char names_schema[] = "{\"type\":\"object\",\"properties\":{"
                                   "\"mode\":{\"type\":\"string\",\"enum\":[\"safe\"]},"
                                   "\"run-mode\":{\"type\":\"string\"},"
                                   "\"target\":{\"type\":\"object\"}}}";

/* params_check_names on params (JSON text); message NULL: no conflict. */
static void check_names(const char *params_text, enum param_format format, const char *message)
{
    json_t *schema = load_json(names_schema);
    json_t *params = load_json(params_text);
    char err[512] = "";
    int rc = params_check_names(params, schema, format, err, sizeof(err));
    if (!message && rc != 0)
        fail_msg("%s: unexpected conflict: %s", params_text, err);
    if (message && (rc != -EINVAL || strcmp(err, message) != 0))
        fail_msg("%s: got %d '%s', expected '%s'", params_text, rc, err, message);
    json_decref(params);
    json_decref(schema);
}

static void test_name_collisions(void **state)
{
    (void)state;
    check_names("{}", PARAM_FORMAT_JSON, NULL);
    check_names("{\"mode\":\"safe\",\"run-mode\":\"x\",\"other\":1}", PARAM_FORMAT_JSON, NULL);
    /* An undeclared parameter over a declared one, given or not. */
    check_names("{\"MODE\":\"fast\"}", PARAM_FORMAT_JSON,
                "parameters 'mode' and 'MODE' map to the same name PARAM_MODE; rename or "
                "leave out one of them");
    check_names("{\"mode\":\"safe\",\"MODE\":\"fast\"}", PARAM_FORMAT_YAML,
                "parameters 'mode' and 'MODE' map to the same name PARAM_MODE; rename or "
                "leave out one of them");
    check_names("{\"run_mode\":\"x\"}", PARAM_FORMAT_JSON,
                "parameters 'run-mode' and 'run_mode' map to the same name PARAM_RUN_MODE; "
                "rename or leave out one of them");
    check_names("{\"Run.Mode\":\"x\",\"run-mode\":\"y\"}", PARAM_FORMAT_JSON,
                "parameters 'run-mode' and 'Run.Mode' map to the same name PARAM_RUN_MODE; "
                "rename or leave out one of them");
    /* Two undeclared parameters that meet; values are never quoted. */
    check_names("{\"a b\":\"secret-1\",\"a_b\":\"secret-2\"}", PARAM_FORMAT_JSON,
                "parameters 'a b' and 'a_b' map to the same name PARAM_A_B; rename or leave "
                "out one of them");
    /* One multi-byte character is one '_'. */
    check_names("{\"caf\xc3\xa9\":1,\"caf_\":2}", PARAM_FORMAT_JSON,
                "parameters 'caf\xc3\xa9' and 'caf_' map to the same name PARAM_CAF_; rename or "
                "leave out one of them");
    check_names("{\"cafe\":1,\"caf_\":2}", PARAM_FORMAT_JSON, NULL);
    /* dotenv keys keep case, '-' and '.', and flatten nested objects. */
    check_names("{\"target\":{\"host\":\"a\"},\"target.port\":1}", PARAM_FORMAT_JSON, NULL);
    check_names("{\"target\":{\"host\":\"a\"},\"target.host\":\"b\"}", PARAM_FORMAT_DOTENV,
                "parameters 'target.host' and 'target.host' map to the same dotenv key "
                "target.host; rename or leave out one of them");
    check_names("{\"target\":{\"a b\":1,\"a_b\":2}}", PARAM_FORMAT_DOTENV,
                "parameters 'target.a b' and 'target.a_b' map to the same dotenv key "
                "target.a_b; rename or leave out one of them");
    check_names("{\"target\":{\"a\":1,\"A\":2}}", PARAM_FORMAT_DOTENV, NULL);
    /* Without a schema every parameter is undeclared. */
    json_t *params = load_json("{\"x\":1,\"X\":2}");
    char err[256];
    assert_int_equal(params_check_names(params, NULL, PARAM_FORMAT_JSON, err, sizeof(err)),
                     -EINVAL);
    json_decref(params);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_assign_types),
        cmocka_unit_test(test_assign_errors),
        cmocka_unit_test(test_validate_defaults),
        cmocka_unit_test(test_validate_errors),
        cmocka_unit_test(test_format_json),
        cmocka_unit_test(test_format_yaml),
        cmocka_unit_test(test_format_dotenv),
        cmocka_unit_test(test_dotenv_sh_round_trip),
        cmocka_unit_test(test_to_env),
        cmocka_unit_test(test_name_collisions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
