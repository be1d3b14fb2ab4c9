/* Unit tests for worker/api_token: the claims of an execution's API token as
 * Attune's worker writes them (order, types, lifetime, standard access refs),
 * no token without permission sets, Attune's error without an executor, and
 * the signature under the configured secret or Attune's default. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/jwt.h"
#include "worker/api_token.h"

#define NOW INT64_C(1700000000)

static struct api_token_request base_request(json_t *refs)
{
    return (struct api_token_request){
        .execution_id = 12345,
        .action_ref = "core.echo",
        .identity = 9,
        .permission_set_refs = refs,
        .timeout_seconds = 300,
        .now = NOW,
        .secret = "unit-test-jwt-secret",
    };
}

static void check_claims(const struct api_token_request *req, const char *want)
{
    json_t *claims = api_token_claims(req);
    char *text = json_dumps(claims, JSON_COMPACT);
    assert_string_equal(text, want);
    free(text);
    json_decref(claims);
}

static void test_claims_as_attune_writes_them(void **state)
{
    (void)state;
    json_t *refs = json_pack("[s,s]", "standard", "ops.readers");
    struct api_token_request req = base_request(refs);
    req.parent_action_ref = "wf.main";
    check_claims(&req, "{\"sub\":\"9\",\"login\":\"execution:12345\",\"iat\":1700000000,"
                       "\"exp\":1700000360,\"token_type\":\"execution\",\"scope\":\"execution\","
                       "\"metadata\":{\"execution_id\":12345,\"action_ref\":\"core.echo\","
                       "\"permission_set_refs\":[\"standard\",\"ops.readers\"],"
                       "\"standard_access_action_refs\":[\"core.echo\",\"wf.main\"],"
                       "\"standard_access_pack_refs\":[\"core\",\"wf\"]}}");
    json_decref(refs);
}

static json_t *metadata_list(const struct api_token_request *req, const char *key)
{
    json_t *claims = api_token_claims(req);
    json_t *list = json_incref(json_object_get(json_object_get(claims, "metadata"), key));
    json_decref(claims);
    return list;
}

static void check_list(const struct api_token_request *req, const char *key, const char *want)
{
    json_t *list = metadata_list(req, key);
    char *text = json_dumps(list, JSON_COMPACT);
    assert_string_equal(text, want);
    free(text);
    json_decref(list);
}

/* Sorted by bytes, without duplicates; packs before the first '.', none
 * for a ref without one, and a pack twice for two of its actions. */
static void test_standard_access_refs(void **state)
{
    (void)state;
    json_t *refs = json_pack("[s]", "standard");
    struct api_token_request req = base_request(refs);
    check_list(&req, "standard_access_action_refs", "[\"core.echo\"]");
    req.parent_action_ref = "core.echo";
    check_list(&req, "standard_access_action_refs", "[\"core.echo\"]");
    req.parent_action_ref = "Core.flow";
    check_list(&req, "standard_access_action_refs", "[\"Core.flow\",\"core.echo\"]");
    req.parent_action_ref = "core.flow.v2";
    check_list(&req, "standard_access_pack_refs", "[\"core\",\"core\"]");
    req.action_ref = "nodot";
    req.parent_action_ref = NULL;
    check_list(&req, "standard_access_action_refs", "[\"nodot\"]");
    check_list(&req, "standard_access_pack_refs", "[]");
    json_decref(refs);
}

static void test_no_permission_sets_no_token(void **state)
{
    (void)state;
    char err[256] = "", *token = (char *)"untouched";
    json_t *empty = json_array();
    struct api_token_request req = base_request(empty);
    assert_int_equal(api_token_issue(&req, &token, err, sizeof(err)), 0);
    assert_null(token);
    req.permission_set_refs = NULL;
    req.identity = 0; /* no identity needed without permission sets */
    assert_int_equal(api_token_issue(&req, &token, err, sizeof(err)), 0);
    assert_null(token);
    json_decref(empty);
}

static void test_no_executor_fails(void **state)
{
    (void)state;
    char err[256] = "", *token = NULL;
    json_t *refs = json_pack("[s]", "standard");
    struct api_token_request req = base_request(refs);
    req.identity = 0;
    assert_int_equal(api_token_issue(&req, &token, err, sizeof(err)), -EPERM);
    assert_null(token);
    assert_string_equal(err, "Failed to prepare execution context: Permission denied: Execution "
                             "12345 has no executor identity for API access");
    json_decref(refs);
}

/* The token is the claims signed under the secret (jwt_sign_hs256 is
 * checked against independent vectors in test_jwt). */
static void check_signed_with(const struct api_token_request *req, const char *secret)
{
    char err[256] = "", *token = NULL;
    assert_int_equal(api_token_issue(req, &token, err, sizeof(err)), 0);
    assert_non_null(token);
    json_t *claims = api_token_claims(req);
    char *want = jwt_sign_hs256(claims, secret, strlen(secret));
    assert_string_equal(token, want);
    jwt_free(want);
    jwt_free(token);
    json_decref(claims);
}

static void test_signed_with_secret_or_default(void **state)
{
    (void)state;
    json_t *refs = json_pack("[s]", "standard");
    struct api_token_request req = base_request(refs);
    check_signed_with(&req, "unit-test-jwt-secret");
    req.secret = NULL;
    check_signed_with(&req, "insecure_default_secret_change_in_production");
    json_decref(refs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claims_as_attune_writes_them),
        cmocka_unit_test(test_standard_access_refs),
        cmocka_unit_test(test_no_permission_sets_no_token),
        cmocka_unit_test(test_no_executor_fails),
        cmocka_unit_test(test_signed_with_secret_or_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
