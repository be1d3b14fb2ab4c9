/* Unit tests for worker/secret_results: the paths an output schema marks
 * secret (flat and JSON-schema forms, nested, escaped as RFC 6901 says), the
 * values taken out of result.data at those paths and replaced by the marker
 * (missing fields and data that is not an object left alone), the captured
 * outputs masked once anything is secret, the provenance Attune records, the
 * rows sealed with encrypt_json, and the failure without a key, whose message
 * names paths but never a value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "worker/secret_results.h"
#include "worker/secrets.h"

#define KEY "unit-test-encryption-key-0123456789-abcdefgh"
#define SECRET "s3cr3t-4f1d9e"
#define MARKER "{\"$attune_secret\":true,\"redacted\":true}"

static json_t *parse(const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    if (!v)
        fail_msg("test input does not parse: %s", text);
    return v;
}

static void assert_json(const json_t *got, const char *want_text)
{
    json_t *want = parse(want_text);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
        fail_msg("got %s, want %s", g, want_text);
    }
    json_decref(want);
}

static void test_schema_paths(void **state)
{
    (void)state;
    static const struct {
        const char *schema, *want;
    } cases[] = {
        /* flat, as Attune stores parameter-style schemas */
        {"{\"user\":{\"type\":\"string\"},\"password\":{\"type\":\"string\",\"secret\":true}}",
         "[\"/password\"]"},
        /* JSON schema */
        {"{\"type\":\"object\",\"properties\":{\"token\":{\"secret\":true},\"n\":{}}}",
         "[\"/token\"]"},
        /* nested, in both forms */
        {"{\"properties\":{\"db\":{\"properties\":{\"pw\":{\"secret\":true},\"host\":{}}}}}",
         "[\"/db/pw\"]"},
        {"{\"db\":{\"type\":\"object\",\"properties\":{\"pw\":{\"secret\":true}}}}",
         "[\"/db/pw\"]"},
        /* a secret definition is one path: nothing below it is read */
        {"{\"a\":{\"secret\":true,\"properties\":{\"b\":{\"secret\":true}}}}", "[\"/a\"]"},
        /* the top of a JSON schema is never a path */
        {"{\"secret\":true,\"properties\":{\"x\":{}}}", "[]"},
        /* only a JSON true counts */
        {"{\"a\":{\"secret\":\"true\"},\"b\":{\"secret\":1},\"c\":{\"secret\":false}}", "[]"},
        /* RFC 6901 escaping, and bytewise order */
        {"{\"z\":{\"secret\":true},\"a/b~c\":{\"secret\":true}}", "[\"/a~1b~0c\",\"/z\"]"},
        /* definitions that are not objects, items of arrays: nothing */
        {"{\"a\":\"string\",\"l\":{\"type\":\"array\",\"items\":{\"secret\":true}}}", "[]"},
        {"null", "[]"},
        {"[{\"secret\":true}]", "[]"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        json_t *schema = parse(cases[i].schema);
        json_t *paths = secret_results_schema_paths(schema);
        assert_json(paths, cases[i].want);
        json_decref(paths);
        json_decref(schema);
    }
    json_t *none = secret_results_schema_paths(NULL);
    assert_json(none, "[]");
    json_decref(none);
}

/* Redacts result_text with schema_text (no secret parameters); checks the
 * masked result and the json_paths taken out. */
static void check_redact(const char *schema_text, const char *result_text, const char *want_result,
                         const char *want_paths)
{
    json_t *schema = parse(schema_text), *result = parse(result_text);
    json_t *taken = secret_results_redact(result, schema, 42, NULL);
    assert_json(result, want_result);
    json_t *paths = json_array();
    size_t i;
    json_t *item;
    json_array_foreach(taken, i, item)
    {
        json_array_append(paths, json_object_get(item, "json_path"));
    }
    assert_json(paths, want_paths);
    json_decref(paths);
    secrets_json_wipe_free(taken);
    json_decref(result);
    json_decref(schema);
}

static void test_redact_data(void **state)
{
    (void)state;
    static const char flat[] = "{\"password\":{\"type\":\"string\",\"secret\":true},"
                               "\"user\":{\"type\":\"string\"}}";
    /* flat: the secret field masked, the other kept */
    check_redact(flat, "{\"succeeded\":true,\"data\":{\"user\":\"ada\",\"password\":\"pw\"}}",
                 "{\"succeeded\":true,\"data\":{\"user\":\"ada\",\"password\":" MARKER "}}",
                 "[\"/data/password\"]");
    /* JSON schema, nested, a secret value that is itself an object */
    check_redact("{\"properties\":{\"db\":{\"properties\":{\"cred\":{\"secret\":true}}}}}",
                 "{\"data\":{\"db\":{\"host\":\"h\",\"cred\":{\"u\":\"a\",\"p\":[1,2]}}}}",
                 "{\"data\":{\"db\":{\"host\":\"h\",\"cred\":" MARKER "}}}", "[\"/data/db/cred\"]");
    /* a missing field, or a path through something that is not an object */
    check_redact(flat, "{\"data\":{\"user\":\"ada\"}}", "{\"data\":{\"user\":\"ada\"}}", "[]");
    check_redact("{\"properties\":{\"a\":{\"properties\":{\"b\":{\"secret\":true}}}}}",
                 "{\"data\":{\"a\":\"text\"}}", "{\"data\":{\"a\":\"text\"}}", "[]");
    /* data that is not an object, or no data at all */
    check_redact(flat, "{\"data\":\"password\"}", "{\"data\":\"password\"}", "[]");
    check_redact(flat, "{\"data\":[\"password\"]}", "{\"data\":[\"password\"]}", "[]");
    check_redact(flat, "{\"succeeded\":true}", "{\"succeeded\":true}", "[]");
    /* a null value is a value: taken out as Attune does */
    check_redact(flat, "{\"data\":{\"password\":null}}", "{\"data\":{\"password\":" MARKER "}}",
                 "[\"/data/password\"]");
    /* ~0 and ~1 in the stored path, the raw key in the data */
    check_redact("{\"a/b~c\":{\"secret\":true}}", "{\"data\":{\"a/b~c\":1,\"a\":{\"b~c\":2}}}",
                 "{\"data\":{\"a/b~c\":" MARKER ",\"a\":{\"b~c\":2}}}", "[\"/data/a~1b~0c\"]");
    /* array elements, read as Attune reads an index (no leading zero) */
    check_redact("{\"l\":{\"properties\":{\"1\":{\"secret\":true},\"01\":{\"secret\":true}}}}",
                 "{\"data\":{\"l\":[\"a\",\"b\"]}}", "{\"data\":{\"l\":[\"a\"," MARKER "]}}",
                 "[\"/data/l/1\"]");
}

static void test_redact_outputs(void **state)
{
    (void)state;
    static const char flat[] = "{\"password\":{\"secret\":true}}";
    /* once the schema marks anything, the captured outputs go too (an empty
     * one stays as it is), whether or not the data held the field */
    check_redact(flat, "{\"stdout\":\"pw\",\"stderr\":\"\",\"error\":\"boom pw\",\"exit_code\":1}",
                 "{\"stdout\":" MARKER ",\"stderr\":\"\",\"error\":" MARKER ",\"exit_code\":1}",
                 "[\"/stdout\",\"/error\"]");
    check_redact(flat, "{\"data\":{\"password\":\"pw\"},\"stdout\":\"x\",\"stderr\":\"y\"}",
                 "{\"data\":{\"password\":" MARKER "},\"stdout\":" MARKER ",\"stderr\":" MARKER "}",
                 "[\"/data/password\",\"/stdout\",\"/stderr\"]");
    /* nothing secret: nothing touched */
    check_redact("{\"user\":{\"type\":\"string\"}}",
                 "{\"data\":{\"user\":\"ada\"},\"stdout\":\"x\",\"error\":\"e\"}",
                 "{\"data\":{\"user\":\"ada\"},\"stdout\":\"x\",\"error\":\"e\"}", "[]");
}

/* The provenance Attune writes into source_ref: the schema path (relative to
 * the data), or the execution's secret parameters when it has some. */
static void test_provenance(void **state)
{
    (void)state;
    json_t *schema = parse("{\"password\":{\"secret\":true}}");
    json_t *result = parse("{\"data\":{\"password\":\"pw\"}}");
    json_t *taken = secret_results_redact(result, schema, 42, NULL);
    assert_int_equal(json_array_size(taken), 1);
    const json_t *item = json_array_get(taken, 0);
    assert_string_equal(json_string_value(json_object_get(item, "json_path")), "/data/password");
    assert_string_equal(json_string_value(json_object_get(item, "value")), "pw");
    assert_string_equal(json_string_value(json_object_get(item, "source_kind")), "provenance");
    assert_string_equal(json_string_value(json_object_get(item, "source_ref")),
                        "{\"origins\":[{\"kind\":\"local\",\"source_kind\":\"parameter_schema\","
                        "\"source_ref\":\"/password\"}],\"templates\":[]}");
    secrets_json_wipe_free(taken);
    json_decref(result);
    json_decref(schema);
}

/* An output's own path is its provenance when no parameter is secret. */
static void test_provenance_of_outputs(void **state)
{
    (void)state;
    json_t *schema = parse("{\"password\":{\"secret\":true}}");
    json_t *result = parse("{\"data\":{\"password\":\"pw\"},\"stdout\":\"o\"}");
    json_t *taken = secret_results_redact(result, schema, 42, NULL);
    assert_int_equal(json_array_size(taken), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(taken, 1), "source_ref")),
                        "{\"origins\":[{\"kind\":\"local\",\"source_kind\":\"parameter_schema\","
                        "\"source_ref\":\"/stdout\"}],\"templates\":[]}");
    secrets_json_wipe_free(taken);
    json_decref(result);
    /* With secret parameters, they are the origin of everything taken out,
     * and the outputs are masked even when the schema marks nothing. */
    struct secret_value_row rows[] = {{"/token", NULL, NULL}, {"/db/pw", NULL, NULL}};
    json_t *config_paths = secret_results_config_paths(rows, 2);
    assert_json(config_paths, "[\"/db/pw\",\"/token\"]");
    result = parse("{\"data\":{\"password\":\"pw\"},\"error\":\"e\"}");
    taken = secret_results_redact(result, NULL, 42, config_paths);
    assert_json(result, "{\"data\":{\"password\":\"pw\"},\"error\":" MARKER "}");
    assert_int_equal(json_array_size(taken), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(taken, 0), "source_ref")),
                        "{\"origins\":[{\"kind\":\"entity\",\"entity_type\":\"execution_config\","
                        "\"entity_id\":42,\"path\":\"/db/pw\"},{\"kind\":\"entity\","
                        "\"entity_type\":\"execution_config\",\"entity_id\":42,\"path\":"
                        "\"/token\"}],\"templates\":[]}");
    secrets_json_wipe_free(taken);
    json_decref(result);
    json_decref(config_paths);
    json_decref(schema);
}

/* result.queue_ack is a copy of data.queue_ack: it follows the mask. */
static void test_queue_ack_follows(void **state)
{
    (void)state;
    check_redact("{\"queue_ack\":{\"properties\":{\"token\":{\"secret\":true}}}}",
                 "{\"data\":{\"queue_ack\":{\"token\":\"t\",\"v\":1}},"
                 "\"queue_ack\":{\"token\":\"t\",\"v\":1}}",
                 "{\"data\":{\"queue_ack\":{\"token\":" MARKER ",\"v\":1}},"
                 "\"queue_ack\":{\"token\":" MARKER ",\"v\":1}}",
                 "[\"/data/queue_ack/token\"]");
    check_redact("{\"queue_ack\":{\"secret\":true}}",
                 "{\"data\":{\"queue_ack\":{\"v\":1}},\"queue_ack\":{\"v\":1}}",
                 "{\"data\":{\"queue_ack\":" MARKER "},\"queue_ack\":" MARKER "}",
                 "[\"/data/queue_ack\"]");
}

/* Each row holds encrypt_json of its value under KEY and KEY's hash. */
static void test_seal(void **state)
{
    (void)state;
    json_t *schema = parse("{\"password\":{\"secret\":true},\"conf\":{\"secret\":true}}");
    json_t *result = parse("{\"data\":{\"password\":\"" SECRET "\",\"conf\":{\"port\":5432}}}");
    json_t *taken = secret_results_redact(result, schema, 7, NULL), *rows = NULL;
    char err[256] = "", hash[65];
    assert_int_equal(secret_results_seal(taken, KEY, &rows, err, sizeof(err)), 0);
    secrets_json_wipe_free(taken); /* the rows hold copies */
    secrets_key_hash(KEY, hash);
    assert_int_equal(json_array_size(rows), 2);
    static const char *const want[][2] = {{"/data/conf", "{\"port\":5432}"},
                                          {"/data/password", "\"" SECRET "\""}};
    for (size_t i = 0; i < 2; i++) {
        const json_t *row = json_array_get(rows, i);
        assert_string_equal(json_string_value(json_object_get(row, "json_path")), want[i][0]);
        assert_string_equal(json_string_value(json_object_get(row, "source_kind")), "provenance");
        assert_non_null(json_string_value(json_object_get(row, "source_ref")));
        assert_string_equal(json_string_value(json_object_get(row, "encryption_key_hash")), hash);
        const json_t *stored = json_object_get(row, "encrypted_value");
        assert_true(json_is_string(stored));
        assert_null(strstr(json_string_value(stored), SECRET));
        json_t *plain = NULL;
        assert_int_equal(secrets_decrypt_json(KEY, stored, &plain, err, sizeof(err)), 0);
        assert_json(plain, want[i][1]);
        json_decref(plain);
    }
    char *text = json_dumps(rows, JSON_COMPACT);
    assert_null(strstr(text, SECRET));
    free(text);
    json_decref(rows);
    json_decref(result);
    json_decref(schema);
}

/* Nothing taken: no rows, no key needed. No key with something taken: an
 * error naming the paths, never the value. */
static void test_seal_without_key(void **state)
{
    (void)state;
    json_t *empty = json_array(), *rows = (json_t *)1;
    char err[256] = "";
    assert_int_equal(secret_results_seal(empty, NULL, &rows, err, sizeof(err)), 0);
    assert_null(rows);
    json_t *schema = parse("{\"password\":{\"secret\":true}}");
    json_t *result = parse("{\"data\":{\"password\":\"" SECRET "\"}}");
    json_t *taken = secret_results_redact(result, schema, 7, NULL);
    assert_int_equal(secret_results_seal(taken, "", &rows, err, sizeof(err)), -ENOKEY);
    assert_null(rows);
    assert_non_null(strstr(err, "/data/password"));
    assert_non_null(strstr(err, "security.encryption_key"));
    assert_null(strstr(err, SECRET));
    secrets_json_wipe_free(taken);
    json_decref(result);
    json_decref(schema);
    json_decref(empty);
}

/* The executor's filter: with a key the rows are kept and the status stays;
 * without one the execution fails and nothing of the value is left. */
static void test_filter(void **state)
{
    (void)state;
    json_t *schema = parse("{\"properties\":{\"password\":{\"secret\":true}}}");
    static const char result_text[] = "{\"succeeded\":false,\"timed_out\":true,\"exit_code\":-1,"
                                      "\"data\":{\"password\":\"" SECRET "\"},"
                                      "\"error\":\"Execution timed out after 5 seconds\"}";
    struct secret_results *sr = secret_results_new(schema, 9, NULL, KEY);
    assert_null(secret_results_rows(sr));
    json_t *result = parse(result_text);
    enum execution_status status = EXECUTION_TIMEOUT;
    secret_results_filter(result, &status, sr);
    assert_int_equal(status, EXECUTION_TIMEOUT);
    assert_int_equal(json_array_size(secret_results_rows(sr)), 2);
    assert_true(json_is_true(json_object_get(result, "timed_out")));
    json_decref(result);
    secret_results_free(sr);

    sr = secret_results_new(schema, 9, NULL, NULL);
    result = parse(result_text);
    secret_results_filter(result, &status, sr);
    assert_int_equal(status, EXECUTION_FAILED);
    assert_null(secret_results_rows(sr));
    assert_true(json_is_false(json_object_get(result, "succeeded")));
    assert_null(json_object_get(result, "timed_out"));
    const char *error = json_string_value(json_object_get(result, "error"));
    assert_non_null(error);
    assert_non_null(strstr(error, "/data/password"));
    assert_non_null(strstr(error, "security.encryption_key"));
    char *text = json_dumps(result, JSON_COMPACT);
    assert_null(strstr(text, SECRET));
    free(text);
    json_decref(result);
    secret_results_free(sr);
    secret_results_free(NULL);
    assert_null(secret_results_rows(NULL));
    json_decref(schema);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema_paths),
        cmocka_unit_test(test_redact_data),
        cmocka_unit_test(test_redact_outputs),
        cmocka_unit_test(test_provenance),
        cmocka_unit_test(test_provenance_of_outputs),
        cmocka_unit_test(test_queue_ack_follows),
        cmocka_unit_test(test_seal),
        cmocka_unit_test(test_seal_without_key),
        cmocka_unit_test(test_filter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
