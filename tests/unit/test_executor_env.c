/* Unit tests for executor/env: ATTUNE_CONTEXT_ names and values, the check
 * and the filtering of execution.env_vars, the ATTUNE_* variables an action
 * is told, and the API URL made reachable (executor/settings). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "executor/env.h"
#include "executor/settings.h"

static json_t *load_json(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (!v)
        fail_msg("bad test JSON %s: %s", text, jerr.text);
    return v;
}

static void check_name(const char *key, const char *want)
{
    char *got = execution_env_context_name(key);
    assert_string_equal(got, want);
    free(got);
}

static void test_context_names(void **state)
{
    (void)state;
    check_name("user", "ATTUNE_CONTEXT_USER");
    check_name("event_id", "ATTUNE_CONTEXT_EVENT_ID");
    check_name("Rule2", "ATTUNE_CONTEXT_RULE2");
    /* Attune upper-cases the key and keeps everything else. */
    check_name("source-ip.v4", "ATTUNE_CONTEXT_SOURCE-IP.V4");
    check_name("with space", "ATTUNE_CONTEXT_WITH SPACE");
    check_name("caf\xC3\xA9", "ATTUNE_CONTEXT_CAF\xC3\xA9");
    check_name("", "ATTUNE_CONTEXT_");
    /* Only '=' cannot be part of a name. */
    check_name("a=b", "ATTUNE_CONTEXT_A_B");
}

static void check_value(const char *json, const char *want)
{
    json_t *v = load_json(json);
    char *got = execution_env_context_value(v);
    if (strcmp(got, want) != 0)
        fail_msg("%s gave '%s', want '%s'", json, got, want);
    free(got);
    json_decref(v);
}

static void test_context_values(void **state)
{
    (void)state;
    /* Strings as they are, no quotes or escapes. */
    check_value("\"plain\"", "plain");
    check_value("\"it's \\\"q\\\"\\n\\u00e9\"", "it's \"q\"\n\xC3\xA9");
    check_value("\"\"", "");
    /* Numbers as serde_json writes them. */
    check_value("42", "42");
    check_value("-7", "-7");
    check_value("9223372036854775807", "9223372036854775807");
    check_value("1.5", "1.5");
    check_value("0.1", "0.1");
    check_value("3.0", "3.0");
    check_value("100.0", "100.0");
    check_value("-0.0", "-0.0");
    check_value("123456.789", "123456.789");
    check_value("0.001", "0.001");
    check_value("0.00001", "0.00001");
    check_value("0.000001", "1e-6");
    check_value("1e-7", "1e-7");
    check_value("-2.5e-10", "-2.5e-10");
    check_value("1e16", "1e16");
    check_value("1e15", "1000000000000000.0");
    check_value("1e21", "1e21");
    check_value("1.2345678901234568e17", "1.2345678901234568e17");
    /* Booleans as text; null and containers as compact JSON, keys sorted. */
    check_value("true", "true");
    check_value("false", "false");
    check_value("null", "null");
    check_value("{\"b\": 1, \"a\": [1, \"x y\", null], \"c\": {}}",
                "{\"a\":[1,\"x y\",null],\"b\":1,\"c\":{}}");
    check_value("[]", "[]");
}

static void check_vars(const char *json, bool ok)
{
    char err[256] = "";
    json_t *v = json ? load_json(json) : NULL;
    int rc = execution_env_vars_check(v, err, sizeof(err));
    if (ok) {
        assert_int_equal(rc, 0);
    } else {
        assert_int_equal(rc, -EINVAL);
        assert_string_equal(err, "Failed to prepare execution context: Validation error: "
                                 "Execution env_vars must be an object with string values");
    }
    json_decref(v);
}

static void test_env_vars_check(void **state)
{
    (void)state;
    check_vars(NULL, true);
    check_vars("{}", true);
    check_vars("{\"A\": \"1\", \"ATTUNE_X\": \"\", \"b\": \"two words\"}", true);
    check_vars("{\"A\": 1}", false);
    check_vars("{\"A\": \"1\", \"B\": null}", false);
    check_vars("{\"A\": {\"nested\": \"x\"}}", false);
    check_vars("[\"A=1\"]", false);
    check_vars("\"A=1\"", false);
    check_vars("null", false);
}

static void test_env_vars_set(void **state)
{
    (void)state;
    struct strv env;
    strv_init(&env);
    strv_setenv(&env, "PATH", "/usr/bin");
    strv_setenv(&env, "HOME", "/home/w");
    json_t *vars = load_json("{\"PATH\": \"/opt/bin\", \"ATTUNE_EXEC_ID\": \"forged\","
                             " \"ATTUNE_\": \"x\", \"attune_lower\": \"kept\", \"\": \"v\","
                             " \"A=B\": \"c\", \"GREETING\": \"hi there\"}");
    execution_env_set_vars(&env, vars);
    assert_string_equal(strv_getenv(&env, "PATH"), "/opt/bin");
    assert_string_equal(strv_getenv(&env, "HOME"), "/home/w");
    assert_string_equal(strv_getenv(&env, "attune_lower"), "kept");
    assert_string_equal(strv_getenv(&env, "GREETING"), "hi there");
    assert_null(strv_getenv(&env, "ATTUNE_EXEC_ID"));
    assert_null(strv_getenv(&env, "ATTUNE_"));
    assert_null(strv_getenv(&env, "A"));
    assert_int_equal(env.len, 4);
    for (size_t i = 0; i < env.len; i++)
        assert_true(env.items[i][0] != '=');
    execution_env_set_vars(&env, NULL);
    assert_int_equal(env.len, 4);
    json_decref(vars);
    strv_free(&env);
}

static void test_env_vars_denied(void **state)
{
    (void)state;
    json_t *vars = load_json("{\"BASH_ENV\": \"$(id)\", \"LD_PRELOAD\": \"/tmp/x.so\","
                             " \"GREETING\": \"hi\", \"PYTHONPATH\": \"/tmp\","
                             " \"PYTHONUNBUFFERED\": \"1\", \"BASH_FUNC_ls%%\": \"() { id; }\","
                             " \"PATH\": \"/opt/bin\", \"PARAM_MODE\": \"fast\", \"IFS\": \"x\"}");
    struct strbuf dropped;
    strbuf_init(&dropped);
    json_t *allowed = execution_env_vars_allowed(vars, &dropped);
    assert_string_equal(dropped.data,
                        "BASH_ENV, LD_PRELOAD, PYTHONPATH, BASH_FUNC_ls%%, PARAM_MODE, IFS");
    assert_int_equal(json_object_size(allowed), 3);
    assert_non_null(json_object_get(allowed, "GREETING"));
    assert_non_null(json_object_get(allowed, "PYTHONUNBUFFERED"));
    assert_non_null(json_object_get(allowed, "PATH"));
    /* execution_env_set_vars refuses them too, whoever calls it. */
    struct strv env;
    strv_init(&env);
    execution_env_set_vars(&env, vars);
    assert_null(strv_getenv(&env, "BASH_ENV"));
    assert_null(strv_getenv(&env, "LD_PRELOAD"));
    assert_string_equal(strv_getenv(&env, "GREETING"), "hi");
    assert_int_equal(env.len, 3);
    strv_free(&env);
    json_decref(allowed);
    json_decref(vars);
    /* A value that is not a string stays for the check to refuse. */
    vars = load_json("{\"LD_PRELOAD\": 1}");
    strbuf_reset(&dropped);
    allowed = execution_env_vars_allowed(vars, &dropped);
    assert_int_equal(dropped.len, 0);
    char err[256];
    assert_int_equal(execution_env_vars_check(allowed, err, sizeof(err)), -EINVAL);
    json_decref(allowed);
    json_decref(vars);
    allowed = execution_env_vars_allowed(NULL, &dropped);
    assert_null(allowed);
    strbuf_free(&dropped);
}

struct fixture {
    struct action action;
    struct executor_settings settings;
    struct execution_request req;
    struct strv env;
};

static void fixture_init(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    f->action.ref = (char *)"mypack.deploy.now";
    f->action.pack_ref = (char *)"mypack";
    f->settings.api_url = (char *)"http://127.0.0.1:8080";
    f->settings.runtime_envs_dir = (char *)"/opt/attune/runtime_envs";
    f->req.exec_id = "42";
    f->req.action = &f->action;
    strv_init(&f->env);
}

static void test_attune_minimal(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    execution_env_set_attune(&f.env, &f.settings, &f.req);
    assert_string_equal(strv_getenv(&f.env, "ATTUNE_EXEC_ID"), "42");
    assert_string_equal(strv_getenv(&f.env, "ATTUNE_ACTION"), "mypack.deploy.now");
    assert_string_equal(strv_getenv(&f.env, "ATTUNE_PACK_REF"), "mypack");
    assert_string_equal(strv_getenv(&f.env, "ATTUNE_PACK"), "mypack");
    assert_string_equal(strv_getenv(&f.env, "ATTUNE_API_URL"), "http://127.0.0.1:8080");
    assert_string_equal(strv_getenv(&f.env, "ATTUNE_RUNTIME_ENVS_DIR"), "/opt/attune/runtime_envs");
    /* What the execution does not have is not set at all. */
    assert_int_equal(f.env.len, 6);
    strv_free(&f.env);
}

static void test_attune_full(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    json_t *context = load_json("{\"user\": \"ada\", \"count\": 3, \"event\": {\"id\": 7},"
                                " \"a\": \"lower\", \"A\": \"upper\", \"none\": null}");
    f.req.context = context;
    f.req.pack_release_digest = "sha256:abc";
    f.req.trace_tag = "trace-1";
    f.req.rule_ref = "mypack.on_push";
    f.req.trigger_ref = "core.webhook";
    execution_env_set_attune(&f.env, &f.settings, &f.req);
    assert_string_equal(strv_getenv(&f.env, "ATTUNE_PACK_RELEASE_DIGEST"), "sha256:abc");
    assert_string_equal(strv_getenv(&f.env, "ATTUNE_TRACE_TAG"), "trace-1");
    assert_string_equal(strv_getenv(&f.env, "ATTUNE_RULE"), "mypack.on_push");
    assert_string_equal(strv_getenv(&f.env, "ATTUNE_TRIGGER"), "core.webhook");
    assert_string_equal(strv_getenv(&f.env, "ATTUNE_CONTEXT_USER"), "ada");
    assert_string_equal(strv_getenv(&f.env, "ATTUNE_CONTEXT_COUNT"), "3");
    assert_string_equal(strv_getenv(&f.env, "ATTUNE_CONTEXT_EVENT"), "{\"id\":7}");
    assert_string_equal(strv_getenv(&f.env, "ATTUNE_CONTEXT_NONE"), "null");
    /* "A" sorts before "a": Attune's walk in key order leaves a's value. */
    assert_string_equal(strv_getenv(&f.env, "ATTUNE_CONTEXT_A"), "lower");
    assert_int_equal(f.env.len, 6 + 4 + 5);
    strv_free(&f.env);
    json_decref(context);

    /* A context that is not an object adds nothing. */
    fixture_init(&f);
    context = load_json("[\"user\"]");
    f.req.context = context;
    execution_env_set_attune(&f.env, &f.settings, &f.req);
    assert_int_equal(f.env.len, 6);
    strv_free(&f.env);
    json_decref(context);
}

static void check_url(const char *url, const char *want)
{
    char *got = executor_api_url(url);
    assert_string_equal(got, want);
    free(got);
}

static void test_api_url(void **state)
{
    (void)state;
    check_url("http://0.0.0.0:8080", "http://127.0.0.1:8080");
    check_url("https://[::]:8443/api", "https://127.0.0.1:8443/api");
    check_url("http://api.internal:8080", "http://api.internal:8080");
    check_url("http://10.0.0.0:80", "http://10.0.0.0:80");
    check_url("http://127.0.0.1:8080", "http://127.0.0.1:8080");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_context_names),   cmocka_unit_test(test_context_values),
        cmocka_unit_test(test_env_vars_check),  cmocka_unit_test(test_env_vars_set),
        cmocka_unit_test(test_env_vars_denied), cmocka_unit_test(test_attune_minimal),
        cmocka_unit_test(test_attune_full),     cmocka_unit_test(test_api_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
