/* Unit tests for worker/job with an action whose out_schema marks output
 * fields secret: the result the job records and reports holds the marker,
 * the finish carries the sealed values (and a failure replacing a refused
 * result none), secret parameters make the captured outputs secret too, and
 * without an encryption key the execution fails, naming the path and never
 * the value. */
#include "job_fakes.h"

#include "worker/secrets.h"

#define KEY "unit-test-encryption-key-0123456789-abcdefgh"
#define SECRET "s3cr3t-8a2c6b"

/* A world whose action row marks data.password secret, the key set or not. */
static void open_secret_output(struct world *w, const char *key)
{
    world_open(w, valid_request);
    set_encryption_key(&w->cfg, key);
    w->action.out_schema = json_pack("{s:{s:s, s:b}, s:{s:s}}", "password", "type", "string",
                                     "secret", 1, "user", "type", "string");
}

static void close_secret_output(struct world *w)
{
    json_decref(w->action.out_schema);
    world_close(w);
}

/* Claim, action row, no keys, then the action's end with this data. */
static void run_to_end(struct world *w)
{
    send(w, JOB_EVENT_ROW);
    send(w, JOB_EVENT_ROW);
    send(w, JOB_EVENT_NO_ROW);
    assert_int_equal(job_state(w->job), JOB_RUNNING);
    send_result(w, JOB_EVENT_EXITED,
                json_pack("{s:b, s:i, s:{s:s, s:s}}", "succeeded", 1, "exit_code", 0, "data",
                          "user", "ada", "password", SECRET));
    assert_int_equal(job_state(w->job), JOB_RECORDING);
}

static void assert_no_secret(const json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_null(strstr(text, SECRET));
    free(text);
}

static void test_recorded_masked_with_its_rows(void **state)
{
    (void)state;
    struct world w;
    open_secret_output(&w, KEY);
    run_to_end(&w);
    assert_string_equal(w.io.fx.finished_status, "completed");
    const json_t *data = json_object_get(w.io.finished_result, "data");
    assert_string_equal(json_string_value(json_object_get(data, "user")), "ada");
    assert_true(json_is_true(json_object_get(json_object_get(data, "password"), "redacted")));
    assert_no_secret(w.io.finished_result);
    assert_int_equal(w.io.fx.finished_secrets, 1);
    const json_t *row = json_array_get(w.io.finished_rows, 0);
    assert_string_equal(json_string_value(json_object_get(row, "json_path")), "/data/password");
    json_t *plain = NULL;
    char err[256];
    assert_int_equal(secrets_decrypt_json(KEY, json_object_get(row, "encrypted_value"), &plain, err,
                                          sizeof(err)),
                     0);
    assert_string_equal(json_string_value(plain), SECRET);
    json_decref(plain);
    send(&w, JOB_EVENT_ROW);
    assert_int_equal(w.io.fx.completed_msgs, 1);
    assert_string_equal(w.io.fx.completed_status, "completed");
    close_secret_output(&w);
}

/* A refused result is replaced by a failure that carries no secret value. */
static void test_refusal_carries_no_rows(void **state)
{
    (void)state;
    struct world w;
    open_secret_output(&w, KEY);
    run_to_end(&w);
    send(&w, JOB_EVENT_DB_ERROR);
    assert_int_equal(job_state(w.job), JOB_RECORDING_REFUSAL);
    assert_int_equal(w.io.fx.finishes, 2);
    assert_int_equal(w.io.fx.finished_secrets, 0);
    assert_null(w.io.finished_rows);
    close_secret_output(&w);
}

static void test_no_key_fails(void **state)
{
    (void)state;
    struct world w;
    open_secret_output(&w, NULL);
    run_to_end(&w);
    assert_string_equal(w.io.fx.finished_status, "failed");
    assert_non_null(strstr(w.io.fx.finished_error, "/data/password"));
    assert_non_null(strstr(w.io.fx.finished_error, "security.encryption_key"));
    assert_int_equal(w.io.fx.finished_secrets, 0);
    assert_no_secret(w.io.finished_result);
    send(&w, JOB_EVENT_ROW);
    assert_string_equal(w.io.fx.completed_status, "failed");
    close_secret_output(&w);
}

/* An action whose schema marks nothing keeps its result as it is. */
static void test_nothing_secret(void **state)
{
    (void)state;
    struct world w;
    world_open(&w, valid_request);
    send(&w, JOB_EVENT_ROW);
    send(&w, JOB_EVENT_ROW);
    send(&w, JOB_EVENT_NO_ROW);
    send_result(&w, JOB_EVENT_EXITED,
                json_pack("{s:b, s:s, s:{s:s}}", "succeeded", 1, "stdout", "out", "data",
                          "password", SECRET));
    assert_string_equal(w.io.fx.finished_status, "completed");
    assert_int_equal(w.io.fx.finished_secrets, 0);
    assert_string_equal(json_string_value(json_object_get(w.io.finished_result, "stdout")), "out");
    world_close(&w);
}

/* With a secret parameter (restored from the claim's row), the captured
 * outputs are secret too, and their provenance names the parameter. */
static void test_secret_parameter_masks_outputs(void **state)
{
    (void)state;
    struct world w;
    world_open(&w, valid_request);
    set_encryption_key(&w.cfg, KEY);
    json_t *plain = json_string(SECRET), *stored = NULL;
    assert_int_equal(secrets_encrypt_json(KEY, plain, &stored), 0);
    json_decref(plain);
    char hash[65];
    secrets_key_hash(KEY, hash);
    struct secret_value_row row = {"/token", stored, hash};
    json_decref(w.config);
    w.config = json_pack("{s:{s:b, s:b}}", "token", "$attune_secret", 1, "redacted", 1);
    w.execution.secret_values = &row;
    w.execution.n_secret_values = 1;
    send(&w, JOB_EVENT_ROW);
    send(&w, JOB_EVENT_ROW);
    send(&w, JOB_EVENT_NO_ROW);
    send_result(
        &w, JOB_EVENT_EXITED,
        json_pack("{s:b, s:s, s:s}", "succeeded", 1, "stdout", "token=" SECRET, "stderr", ""));
    assert_string_equal(w.io.fx.finished_status, "completed");
    assert_no_secret(w.io.finished_result);
    assert_int_equal(w.io.fx.finished_secrets, 1);
    const json_t *sealed = json_array_get(w.io.finished_rows, 0);
    assert_string_equal(json_string_value(json_object_get(sealed, "json_path")), "/stdout");
    assert_non_null(strstr(json_string_value(json_object_get(sealed, "source_ref")),
                           "\"entity_type\":\"execution_config\",\"entity_id\":42,"
                           "\"path\":\"/token\""));
    world_close(&w);
    json_decref(stored);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recorded_masked_with_its_rows),
        cmocka_unit_test(test_refusal_carries_no_rows),
        cmocka_unit_test(test_no_key_fails),
        cmocka_unit_test(test_nothing_secret),
        cmocka_unit_test(test_secret_parameter_masks_outputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
