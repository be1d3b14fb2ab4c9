/* Unit tests for worker/job's API token: an execution with permission sets
 * hands the executor a token for its executor identity and effective
 * timeout; one without gets none; one with permission sets but no executor
 * fails before anything starts, as Attune's worker fails it. */
#include "job_fakes.h"

#include <openssl/evp.h>
#include <time.h>

/* The token's payload, decoded (the signature is test_jwt's and
 * test_api_token's business). */
static json_t *token_payload(const char *token)
{
    const char *start = strchr(token, '.') + 1;
    size_t len = strcspn(start, ".");
    char *b64 = xcalloc(len + 4, 1);
    memcpy(b64, start, len);
    for (char *p = b64; *p; p++)
        *p = *p == '-' ? '+' : *p == '_' ? '/' : *p;
    while (strlen(b64) % 4)
        strcat(b64, "=");
    unsigned char *raw = xcalloc(len + 4, 1);
    int n = EVP_DecodeBlock(raw, (unsigned char *)b64, (int)strlen(b64));
    assert_true(n > 0);
    /* Padding decodes to trailing NULs, which strlen leaves out. */
    json_t *payload = json_loads((const char *)raw, 0, NULL);
    assert_non_null(payload);
    free(raw);
    free(b64);
    return payload;
}

/* Claim with the action row, keys (none): the job is running or has failed. */
static void run_through(struct world *w)
{
    send(w, JOB_EVENT_ROW);
    if (job_state(w->job) == JOB_LOADING_KEYS)
        send(w, JOB_EVENT_NO_ROW);
}

static void test_token_for_the_executor(void **state)
{
    (void)state;
    struct world w;
    world_open(&w, valid_request);
    json_t *refs = json_pack("[s]", "standard");
    w.execution.permission_set_refs = refs;
    w.execution.executor = 17;
    w.execution.workflow_parent_action_ref = "flows.main";
    int64_t before = (int64_t)time(NULL);
    run_through(&w);
    assert_int_equal(job_state(w.job), JOB_RUNNING);
    assert_non_null(w.io.got.api_token);
    json_t *claims = token_payload(w.io.got.api_token);
    assert_string_equal(json_string_value(json_object_get(claims, "sub")), "17");
    assert_string_equal(json_string_value(json_object_get(claims, "login")), "execution:42");
    json_int_t iat = json_integer_value(json_object_get(claims, "iat"));
    assert_true(iat >= before && iat <= (int64_t)time(NULL));
    /* The action's 30 s (job_fakes) and a minute's grace. */
    assert_int_equal(json_integer_value(json_object_get(claims, "exp")) - iat, 30 + 60);
    assert_int_equal(w.io.fx.start_timeout, 30);
    json_t *actions =
        json_object_get(json_object_get(claims, "metadata"), "standard_access_action_refs");
    assert_int_equal(json_array_size(actions), 2);
    assert_string_equal(json_string_value(json_array_get(actions, 0)), "flows.main");
    assert_string_equal(json_string_value(json_array_get(actions, 1)), "testpack.echo");
    json_decref(claims);
    json_decref(refs);
    world_close(&w);
}

static void test_no_permission_sets_no_token(void **state)
{
    (void)state;
    struct world w;
    world_open(&w, valid_request);
    w.execution.executor = 17;
    run_through(&w);
    assert_int_equal(job_state(w.job), JOB_RUNNING);
    assert_null(w.io.got.api_token);
    world_close(&w);
}

static void test_permission_sets_without_executor_fail(void **state)
{
    (void)state;
    struct world w;
    world_open(&w, valid_request);
    json_t *refs = json_pack("[s]", "standard");
    w.execution.permission_set_refs = refs;
    run_through(&w);
    assert_int_equal(job_state(w.job), JOB_RECORDING);
    assert_int_equal(w.io.fx.starts, 0);
    assert_string_equal(w.io.fx.finished_status, "failed");
    assert_string_equal(w.io.fx.finished_error,
                        "Failed to prepare execution context: Permission denied: Execution 42 "
                        "has no executor identity for API access");
    json_decref(refs);
    world_close(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_for_the_executor),
        cmocka_unit_test(test_no_permission_sets_no_token),
        cmocka_unit_test(test_permission_sets_without_executor_fail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
