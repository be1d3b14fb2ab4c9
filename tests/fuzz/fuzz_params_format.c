/* libFuzzer target: the parameter formats an action reads (params_format as
 * json, yaml and dotenv, params_to_env, the marshal encoding of the python
 * wrapper) and params_validate/params_assign, on parameters given as JSON.
 * Each format must carry the values exactly: json and yaml read back equal,
 * dotenv lines unquote (as sh does) to the expected text, marshal decodes
 * equal. A difference is a finding: abort. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/util.h"
#include "core/yaml.h"
#include "exec/params.h"
#include "runtime/pymarshal.h"

/* yaml_parse and pymarshal_decode refuse deeper values. */
#define READER_MAX_DEPTH 64
#define MAX_ASSIGNED 16

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char schema_text[] = "{\"type\":\"object\",\"properties\":{"
                                  "\"name\":{\"type\":\"string\"},"
                                  "\"count\":{\"type\":\"integer\",\"default\":3},"
                                  "\"ratio\":{\"type\":\"number\"},"
                                  "\"flag\":{\"type\":\"boolean\"},"
                                  "\"tags\":{\"type\":\"array\",\"default\":[\"a\"]},"
                                  "\"opts\":{\"type\":\"object\"},"
                                  "\"color\":{\"type\":\"string\",\"enum\":[\"red\",\"green\"]},"
                                  "\"size\":{\"enum\":[1,\"big\",null]},"
                                  "\"free\":{}},"
                                  "\"required\":[\"name\",\"other\"]}";

static json_t *schema;

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_params_format: %s:\n%s\n", what, detail);
    abort();
}

static void fail_value(const char *what, const json_t *params, const char *output)
{
    char *text = json_dumps(params, JSON_COMPACT | JSON_ENCODE_ANY);
    fprintf(stderr, "fuzz_params_format: %s\nparams: %s\noutput:\n%s\n", what, text ? text : "?",
            output);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    json_error_t jerr;
    schema = json_loads(schema_text, 0, &jerr);
    if (!schema)
        fail("bad schema", jerr.text);
    return 0;
}

static size_t depth_of(const json_t *v)
{
    size_t deepest = 0, i;
    const char *key;
    json_t *item;
    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, key, item)
        {
            size_t d = 1 + depth_of(item);
            deepest = d > deepest ? d : deepest;
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, item)
        {
            size_t d = 1 + depth_of(item);
            deepest = d > deepest ? d : deepest;
        }
    }
    return deepest;
}

static void check_json(const json_t *params)
{
    struct strbuf out;
    strbuf_init(&out);
    params_format(params, PARAM_FORMAT_JSON, &out);
    if (!out.len || out.data[out.len - 1] != '\n' || memchr(out.data, '\n', out.len - 1))
        fail_value("json format is not one line", params, out.data);
    json_error_t jerr;
    json_t *back = json_loadb(out.data, out.len, 0, &jerr);
    if (!back || !json_equal(back, params))
        fail_value("json format does not read back equal", params, out.data);
    json_decref(back);
    strbuf_free(&out);
}

static void check_yaml(const json_t *params, size_t depth)
{
    struct strbuf out;
    strbuf_init(&out);
    params_format(params, PARAM_FORMAT_YAML, &out);
    if (depth <= READER_MAX_DEPTH) {
        json_t *back = NULL;
        char err[512] = "";
        if (yaml_parse(out.data, out.len, &back, err, sizeof(err)) != 0)
            fail_value(err, params, out.data);
        if (!json_equal(back, params))
            fail_value("yaml format does not read back equal", params, out.data);
        json_decref(back);
    }
    strbuf_free(&out);
}

/* The text a scalar leaf has in dotenv and PARAM_ variables. */
static void scalar_text(const json_t *v, struct strbuf *out)
{
    strbuf_append(out, "", 0);
    if (json_is_string(v)) {
        strbuf_append(out, json_string_value(v), json_string_length(v));
    } else if (!json_is_null(v)) {
        char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        strbuf_puts(out, text);
        free(text);
    }
}

/* Reads KEY='...'('\''...')* and a newline, as sh would; returns the byte
 * after the line, or NULL if the line is not of that form. */
static const char *read_dotenv_line(const char *p, const char *end, struct strbuf *key,
                                    struct strbuf *value)
{
    strbuf_reset(key);
    strbuf_reset(value);
    strbuf_append(key, "", 0);
    strbuf_append(value, "", 0);
    const char *eq = memchr(p, '=', (size_t)(end - p));
    if (!eq)
        return NULL;
    strbuf_append(key, p, (size_t)(eq - p));
    p = eq + 1;
    for (;;) {
        if (p >= end || *p != '\'')
            return NULL;
        const char *close = memchr(p + 1, '\'', (size_t)(end - p - 1));
        if (!close)
            return NULL;
        strbuf_append(value, p + 1, (size_t)(close - p - 1));
        p = close + 1;
        if (end - p >= 3 && p[0] == '\\' && p[1] == '\'' && p[2] == '\'') {
            strbuf_putc(value, '\'');
            p += 2;
            continue;
        }
        return p < end && *p == '\n' ? p + 1 : NULL;
    }
}

struct dotenv_reader {
    const char *p, *end;
    struct strbuf key, value, want;
    const json_t *params;
    const char *output;
};

/* Walks the leaves in the order params_format writes them. */
static void expect_dotenv(struct dotenv_reader *r, const json_t *v)
{
    if (json_is_object(v) && json_object_size(v) > 0) {
        const char *sub;
        json_t *item;
        json_object_foreach((json_t *)v, sub, item) expect_dotenv(r, item);
        return;
    }
    r->p = read_dotenv_line(r->p, r->end, &r->key, &r->value);
    if (!r->p)
        fail_value("dotenv line is not KEY='VALUE'", r->params, r->output);
    /* An empty key ("") gives an empty name: allowed by the documented rules. */
    if (strspn(r->key.data, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                            "0123456789_.-") != r->key.len)
        fail_value("dotenv key is not shell-safe", r->params, r->output);
    strbuf_reset(&r->want);
    scalar_text(v, &r->want);
    if (r->want.len != r->value.len || memcmp(r->want.data, r->value.data, r->value.len) != 0)
        fail_value("dotenv value does not unquote to the parameter", r->params, r->output);
}

static void check_dotenv(const json_t *params)
{
    struct strbuf out;
    strbuf_init(&out);
    params_format(params, PARAM_FORMAT_DOTENV, &out);
    struct dotenv_reader r = {
        .p = out.data, .end = out.data + out.len, .params = params, .output = out.data};
    strbuf_init(&r.key);
    strbuf_init(&r.value);
    strbuf_init(&r.want);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)params, key, v) expect_dotenv(&r, v);
    if (r.p != r.end)
        fail_value("dotenv output has lines no parameter accounts for", params, out.data);
    strbuf_free(&r.key);
    strbuf_free(&r.value);
    strbuf_free(&r.want);
    strbuf_free(&out);
}

static void check_env(const json_t *params)
{
    struct strv env;
    strv_init(&env);
    params_to_env(params, NULL, NULL, &env);
    if (env.len > json_object_size(params))
        fail_value("more PARAM_ variables than parameters", params, "");
    for (size_t i = 0; i < env.len; i++) {
        const char *e = env.items[i];
        size_t name_len = strcspn(e, "=");
        if (!str_starts_with(e, "PARAM_") || e[name_len] != '=' ||
            strspn(e, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != name_len)
            fail_value("bad PARAM_ variable name", params, e);
    }
    strv_free(&env);
}

static void check_marshal(const json_t *params, size_t depth)
{
    struct strbuf out;
    strbuf_init(&out);
    pymarshal_encode(params, &out);
    if (depth <= READER_MAX_DEPTH) {
        char err[256] = "";
        json_t *back = pymarshal_decode(out.data, out.len, err, sizeof(err));
        if (!back || !json_equal(back, params))
            fail_value(back ? "marshal does not decode equal" : err, params, "");
        json_decref(back);
    }
    strbuf_free(&out);
}

/* -p NAME=VALUE for each short top-level string, then validation. */
static void check_schema(const json_t *params)
{
    json_t *assigned = json_object();
    char err[1024];
    const char *key;
    json_t *v;
    size_t n = 0;
    json_object_foreach((json_t *)params, key, v)
    {
        if (n++ >= MAX_ASSIGNED)
            break;
        if (!json_is_string(v) || memchr(json_string_value(v), '\0', json_string_length(v)))
            continue;
        char *assignment = xasprintf("%s=%s", key, json_string_value(v));
        params_assign(assigned, schema, assignment, err, sizeof(err));
        free(assignment);
    }
    params_validate(assigned, schema, err, sizeof(err));
    json_decref(assigned);
    json_t *copy = json_deep_copy(params);
    params_validate(copy, schema, err, sizeof(err));
    json_decref(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *params = json_loadb((const char *)data, size, 0, NULL);
    if (!json_is_object(params)) {
        json_decref(params);
        return 0;
    }
    size_t depth = depth_of(params);
    check_json(params);
    check_yaml(params, depth);
    check_dotenv(params);
    check_env(params);
    check_marshal(params, depth);
    check_schema(params);
    json_decref(params);
    return 0;
}
