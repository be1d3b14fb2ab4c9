/* Unit tests for worker/job's parameter document: the execution's config is
 * the parameter map itself (undeclared keys kept), its context and the
 * execution's release, trace tag and enforcement reach the executor; secret
 * parameters are restored from execution_secret_value before validation (a
 * wrong key fails the execution, naming the path, never the value); the
 * key store's values join the document and stay get_secret's, unless
 * secrets.keystore is off (then no key is read). */
#include "job_fakes.h"

#include "worker/secrets.h"

#define KEY "unit-test-encryption-key-0123456789-abcdefgh"
#define OTHER_KEY "another-unit-test-encryption-key-0123456789"
#define SECRET "s3cr3t-b7e1c0"

/* Claim with the action row, keys (none): the job is running or has failed. */
static void run_through(struct world *w)
{
    send(w, JOB_EVENT_ROW);
    if (job_state(w->job) == JOB_LOADING_KEYS)
        send(w, JOB_EVENT_NO_ROW);
}

static void test_flat_config_and_attune_inputs(void **state)
{
    (void)state;
    struct world w;
    world_open(&w, valid_request);
    json_decref(w.config);
    w.config = json_pack("{s:s, s:b, s:{s:s}}", "name", "x", "extra", 1, "context", "user", "u1");
    w.execution.trace_tag = "trace-1";
    w.execution.rule_ref = "core.on_push";
    w.execution.trigger_ref = "git.push";
    run_through(&w);
    assert_int_equal(job_state(w.job), JOB_RUNNING);
    assert_string_equal(json_string_value(json_object_get(w.io.got.params, "name")), "x");
    assert_true(json_is_true(json_object_get(w.io.got.params, "extra")));
    assert_non_null(json_object_get(w.io.got.params, "context"));
    assert_string_equal(json_string_value(json_object_get(w.io.got.context, "user")), "u1");
    assert_string_equal(w.io.got.trace_tag, "trace-1");
    assert_string_equal(w.io.got.rule_ref, "core.on_push");
    assert_string_equal(w.io.got.trigger_ref, "git.push");
    assert_null(w.io.got.digest);
    world_close(&w);
}

/* A world whose execution holds SECRET at /token, encrypted with enc_key and
 * the hash of hash_key. */
struct sealed {
    json_t *stored;
    char hash[65];
    struct secret_value_row row;
};

static void open_with_secret(struct world *w, struct sealed *s, const char *enc_key,
                             const char *hash_key)
{
    world_open(w, valid_request);
    set_encryption_key(&w->cfg, KEY);
    json_t *plain = json_string(SECRET);
    assert_int_equal(secrets_encrypt_json(enc_key, plain, &s->stored), 0);
    json_decref(plain);
    secrets_key_hash(hash_key, s->hash);
    s->row = (struct secret_value_row){"/token", s->stored, s->hash};
    json_decref(w->config);
    w->config =
        json_pack("{s:s, s:{s:b, s:b}}", "user", "u", "token", "$attune_secret", 1, "redacted", 1);
    w->execution.secret_values = &s->row;
    w->execution.n_secret_values = 1;
}

static void test_secret_parameters_restored(void **state)
{
    (void)state;
    struct world w;
    struct sealed s;
    open_with_secret(&w, &s, KEY, KEY);
    run_through(&w);
    assert_int_equal(job_state(w.job), JOB_RUNNING);
    assert_string_equal(json_string_value(json_object_get(w.io.got.params, "token")), SECRET);
    assert_string_equal(json_string_value(json_object_get(w.io.got.params, "user")), "u");
    world_close(&w);
    json_decref(s.stored);
}

/* Stored under another key, or with another key's hash: failed at once. */
static void test_secret_parameters_wrong_key(void **state)
{
    (void)state;
    const char *keys[][2] = {{OTHER_KEY, OTHER_KEY}, {OTHER_KEY, KEY}};
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
        struct world w;
        struct sealed s;
        open_with_secret(&w, &s, keys[i][0], keys[i][1]);
        send(&w, JOB_EVENT_ROW);
        assert_int_equal(job_state(w.job), JOB_RECORDING);
        assert_string_equal(w.io.fx.finished_status, "failed");
        assert_non_null(strstr(w.io.fx.finished_error, "'/token'"));
        assert_null(strstr(w.io.fx.finished_error, SECRET));
        assert_int_equal(w.io.fx.starts, 0);
        world_close(&w);
        json_decref(s.stored);
    }
}

/* A restored value that the schema refuses is not quoted in the error. */
static void test_restored_value_never_quoted(void **state)
{
    (void)state;
    struct world w;
    struct sealed s;
    open_with_secret(&w, &s, KEY, KEY);
    json_t *schema =
        json_pack("{s:{s:{s:s, s:[s]}}}", "properties", "token", "type", "string", "enum", "a");
    w.action.param_schema = schema;
    run_through(&w);
    assert_string_equal(w.io.fx.finished_status, "failed");
    assert_non_null(strstr(w.io.fx.finished_error, "parameter 'token' must be one of"));
    assert_null(strstr(w.io.fx.finished_error, SECRET));
    world_close(&w);
    json_decref(schema);
    json_decref(s.stored);
}

/* Keys join the document by name over parameters; get_secret keeps them. */
static void test_keys_join_the_parameters(void **state)
{
    (void)state;
    static const struct key_row keys[] = {
        {"name", "system", false, NULL, "\"from-system\""},
        {"name", "action", false, NULL, "\"from-action\""},
        {"conf", "pack", false, NULL, "{\"port\":5432}"},
    };
    struct world w;
    world_open(&w, valid_request);
    json_decref(w.config);
    w.config = json_pack("{s:s, s:i}", "name", "from-config", "n", 1);
    send(&w, JOB_EVENT_ROW);
    assert_int_equal(job_state(w.job), JOB_LOADING_KEYS);
    w.keys = keys;
    w.n_keys = ARRAY_SIZE(keys);
    send(&w, JOB_EVENT_ROW);
    assert_int_equal(job_state(w.job), JOB_RUNNING);
    json_t *p = w.io.got.params, *sec = w.io.got.secrets;
    assert_string_equal(json_string_value(json_object_get(p, "name")), "from-action");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(p, "conf"), "port")), 5432);
    assert_int_equal(json_integer_value(json_object_get(p, "n")), 1);
    assert_string_equal(json_string_value(json_object_get(sec, "name")), "from-action");
    assert_string_equal(json_string_value(json_object_get(sec, "conf")), "{\"port\":5432}");
    world_close(&w);
}

/* secrets.keystore false: no key round trip, nothing for get_secret. */
static void test_keystore_off(void **state)
{
    (void)state;
    struct world w;
    world_open(&w, valid_request);
    w.cfg.secrets_keystore = false;
    send(&w, JOB_EVENT_ROW);
    assert_int_equal(job_state(w.job), JOB_RUNNING);
    assert_int_equal(w.io.fx.key_loads, 0);
    assert_null(w.io.got.secrets);
    world_close(&w);
    /* A shutdown during the claim, its only round trip before the start,
     * still stops it from starting. */
    world_open(&w, valid_request);
    w.cfg.secrets_keystore = false;
    send(&w, JOB_EVENT_SHUTDOWN);
    send(&w, JOB_EVENT_ROW);
    assert_int_equal(job_state(w.job), JOB_RECORDING);
    assert_string_equal(w.io.fx.finished_status, "cancelled");
    assert_int_equal(w.io.fx.starts, 0);
    world_close(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flat_config_and_attune_inputs),
        cmocka_unit_test(test_secret_parameters_restored),
        cmocka_unit_test(test_secret_parameters_wrong_key),
        cmocka_unit_test(test_restored_value_never_quoted),
        cmocka_unit_test(test_keys_join_the_parameters),
        cmocka_unit_test(test_keystore_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
