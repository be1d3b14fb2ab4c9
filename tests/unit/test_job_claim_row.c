/* Unit tests for worker/job: a claim whose row carries the action and its
 * keys (read in the claim's own round trip) starts the action with no
 * further load; without the keys the job loads them; without the action
 * (no action has its ref) it fails. */
#include "job_fakes.h"

static const struct key_row claim_keys[] = {
    {.name = "api_token", .owner_type = "system", .value = "\"from-the-claim\""},
};

/* The claim's row as the database module hands it out: the action found
 * and, with keys_read, its keys. */
static void claim_carries(struct world *w, const struct action_row *action, bool keys_read)
{
    w->execution.action = action;
    w->execution.keys_read = keys_read;
    w->execution.keys = keys_read ? claim_keys : NULL;
    w->execution.n_keys = keys_read ? ARRAY_SIZE(claim_keys) : 0;
}

/* One answer, then the process: no action or key load. */
static void test_claim_with_action_and_keys_starts_at_once(void **state)
{
    (void)state;
    struct world w;
    world_open(&w, valid_request);
    claim_carries(&w, &w.action, true);
    send(&w, JOB_EVENT_ROW);
    assert_int_equal(job_state(w.job), JOB_RUNNING);
    assert_int_equal(w.io.fx.key_loads, 0);
    assert_int_equal(w.io.fx.starts, 1);
    assert_int_equal(w.io.fx.acks, 1);
    assert_string_equal(w.io.got.entry_point, "echo.sh");
    assert_string_equal(json_string_value(json_object_get(w.io.got.secrets, "api_token")),
                        "from-the-claim");
    send(&w, JOB_EVENT_EXITED);
    send(&w, JOB_EVENT_ROW);
    assert_int_equal(job_state(w.job), JOB_DONE);
    assert_string_equal(w.io.fx.completed_status, "completed");
    assert_int_equal(w.io.fx.completed_action_id, 5);
    world_close(&w);
}

/* The claim looked for the action and found none: failed at once. */
static void test_claim_without_the_action_fails(void **state)
{
    (void)state;
    struct world w;
    world_open(&w, valid_request);
    claim_carries(&w, NULL, false);
    send(&w, JOB_EVENT_ROW);
    assert_int_equal(job_state(w.job), JOB_RECORDING);
    assert_string_equal(w.io.fx.finished_status, "failed");
    assert_string_equal(w.io.fx.finished_error, "action 'testpack.echo' is not registered");
    world_close(&w);
}

/* Keys that could not be read fail the execution as a failed key load does. */
static void test_claim_keys_error_fails(void **state)
{
    (void)state;
    struct world w;
    world_open(&w, valid_request);
    claim_carries(&w, &w.action, true);
    w.execution.keys_error = "the keys cannot be read";
    send(&w, JOB_EVENT_ROW);
    assert_int_equal(job_state(w.job), JOB_RECORDING);
    assert_int_equal(w.io.fx.starts + w.io.fx.key_loads, 0);
    assert_string_equal(w.io.fx.finished_error, "cannot read secrets: the keys cannot be read");
    world_close(&w);
}

/* The action came without its keys (the key store was not asked): the keys
 * are loaded for that action. */
static void test_claim_without_keys_loads_them(void **state)
{
    (void)state;
    struct world w;
    world_open(&w, valid_request);
    claim_carries(&w, &w.action, false);
    send(&w, JOB_EVENT_ROW);
    assert_int_equal(job_state(w.job), JOB_LOADING_KEYS);
    assert_int_equal(w.io.fx.key_loads, 1);
    world_close(&w);
}

/* With secrets.keystore off, keys in the row are never used. */
static void test_keystore_off_ignores_claim_keys(void **state)
{
    (void)state;
    struct world w;
    world_open(&w, valid_request);
    w.cfg.secrets_keystore = false;
    claim_carries(&w, &w.action, true);
    send(&w, JOB_EVENT_ROW);
    assert_int_equal(job_state(w.job), JOB_RUNNING);
    assert_int_equal(w.io.fx.key_loads, 0);
    assert_null(json_object_get(w.io.got.secrets, "api_token"));
    world_close(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claim_with_action_and_keys_starts_at_once),
        cmocka_unit_test(test_claim_without_the_action_fails),
        cmocka_unit_test(test_claim_keys_error_fails),
        cmocka_unit_test(test_claim_without_keys_loads_them),
        cmocka_unit_test(test_keystore_off_ignores_claim_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
