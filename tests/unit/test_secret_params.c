/* Unit tests for worker/secret_params and db/secret_values: the rows of
 * execution_secret_value parsed from the claim's json_agg text, and each value
 * decrypted and written back at its RFC 6901 path as Attune does; a wrong key
 * or a value that does not decrypt names the path, never the value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "db/secret_values.h"
#include "worker/secret_params.h"
#include "worker/secrets.h"

#define KEY "unit-test-encryption-key-0123456789-abcdefgh"
#define OTHER_KEY "another-unit-test-encryption-key-0123456789"

static json_t *parse(const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    assert_non_null(v);
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

/* The pointer rules of Attune's set_at_pointer. */
static void test_set_at_pointer(void **state)
{
    (void)state;
    static const struct {
        const char *doc, *path, *value, *want;
    } cases[] = {
        {"{\"a\":1}", "/a", "\"s\"", "{\"a\":\"s\"}"},
        {"{}", "/a/b", "2", "{\"a\":{\"b\":2}}"},               /* missing objects are made */
        {"{\"x~/y\":0}", "/x~0~1y", "1", "{\"x~/y\":1}"},       /* ~0 and ~1 */
        {"{\"l\":[0,1]}", "/l/1", "9", "{\"l\":[0,9]}"},        /* an existing element */
        {"{\"l\":[0,1]}", "/l/2", "9", "{\"l\":[0,1]}"},        /* past the end: nothing */
        {"{\"l\":[0,1]}", "/l/-", "9", "{\"l\":[0,1]}"},        /* not an index: nothing */
        {"{\"l\":[{}]}", "/l/0/k", "1", "{\"l\":[{\"k\":1}]}"}, /* through an array */
        {"{\"n\":3}", "/n/k", "1", "{\"n\":3}"},                /* through a number: nothing */
        {"{\"a\":1}", "", "[1]", "[1]"},                        /* "" is the whole document */
        {"{\"a\":1}", "a", "2", "{\"a\":2}"},                   /* leading '/' optional */
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        json_t *doc = parse(cases[i].doc);
        secret_params_set(&doc, cases[i].path, parse(cases[i].value));
        assert_json(doc, cases[i].want);
        json_decref(doc);
    }
}

/* The claim's json_agg text as the database writes it. */
static char *agg_text(const char *path, const json_t *value, const char *hash)
{
    json_t *arr = json_pack("[{s:s, s:O, s:s?}]", "json_path", path, "encrypted_value", value,
                            "encryption_key_hash", hash);
    char *text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return text;
}

static int restore(const char *config_text, const char *path, const json_t *plain,
                   const char *enc_key, const char *hash, const char *key, json_t **config,
                   json_t *names, char *err, size_t errlen)
{
    json_t *stored = NULL;
    assert_int_equal(secrets_encrypt_json(enc_key, plain, &stored), 0);
    char *text = agg_text(path, stored, hash);
    struct secret_values values;
    assert_int_equal(db_secret_values_parse(text, &values, err, errlen), 0);
    assert_int_equal(values.count, 1);
    *config = parse(config_text);
    int rc = secret_params_restore(config, values.rows, values.count, key, names, err, errlen);
    db_secret_values_free(&values);
    json_decref(stored);
    free(text);
    return rc;
}

static void test_restore(void **state)
{
    (void)state;
    char hash[65], err[256] = "";
    secrets_key_hash(KEY, hash);
    json_t *plain = json_string("s3cret-value-1f2e");
    json_t *config = NULL, *names = json_array();
    /* Checked hash, and no hash at all. */
    const char *hashes[] = {hash, NULL};
    for (size_t i = 0; i < ARRAY_SIZE(hashes); i++) {
        assert_int_equal(restore("{\"user\":\"u\",\"password\":{\"$attune_secret\":true,"
                                 "\"redacted\":true}}",
                                 "/password", plain, KEY, hashes[i], KEY, &config, names, err,
                                 sizeof(err)),
                         0);
        assert_json(config, "{\"user\":\"u\",\"password\":\"s3cret-value-1f2e\"}");
        secrets_json_wipe_free(config);
    }
    assert_json(names, "[\"password\",\"password\"]");
    /* Any JSON value, nested. */
    json_t *obj = json_pack("{s:i}", "port", 5432);
    assert_int_equal(
        restore("{\"db\":{}}", "/db/conf", obj, KEY, hash, KEY, &config, NULL, err, sizeof(err)),
        0);
    assert_json(config, "{\"db\":{\"conf\":{\"port\":5432}}}");
    secrets_json_wipe_free(config);
    json_decref(obj);
    json_decref(names);
    json_decref(plain);
}

static void test_restore_refused(void **state)
{
    (void)state;
    char hash[65], other_hash[65], err[256] = "";
    secrets_key_hash(KEY, hash);
    secrets_key_hash(OTHER_KEY, other_hash);
    json_t *plain = json_string("never-shown-7c1d"), *config = NULL;
    /* Stored under another key: the hash says so before decrypting. */
    assert_int_equal(
        restore("{}", "/token", plain, OTHER_KEY, other_hash, KEY, &config, NULL, err, sizeof(err)),
        -EKEYREJECTED);
    assert_non_null(strstr(err, "'/token'"));
    secrets_json_wipe_free(config);
    /* No hash, and the value does not authenticate under our key. */
    assert_int_equal(
        restore("{}", "/token", plain, OTHER_KEY, NULL, KEY, &config, NULL, err, sizeof(err)),
        -EBADMSG);
    assert_non_null(strstr(err, "'/token' cannot be decrypted"));
    assert_null(strstr(err, "never-shown"));
    secrets_json_wipe_free(config);
    /* No key configured. */
    assert_int_equal(
        restore("{}", "/token", plain, KEY, hash, NULL, &config, NULL, err, sizeof(err)), -ENOKEY);
    assert_non_null(strstr(err, "security.encryption_key"));
    secrets_json_wipe_free(config);
    json_decref(plain);
}

static void test_parse_values(void **state)
{
    (void)state;
    char err[256] = "";
    struct secret_values v;
    assert_int_equal(db_secret_values_parse(NULL, &v, err, sizeof(err)), 0);
    assert_int_equal(v.count, 0);
    db_secret_values_free(&v);
    assert_int_equal(db_secret_values_parse("[{\"json_path\":\"/a\",\"encrypted_value\":\"x\","
                                            "\"encryption_key_hash\":null}]",
                                            &v, err, sizeof(err)),
                     0);
    assert_int_equal(v.count, 1);
    assert_string_equal(v.rows[0].json_path, "/a");
    assert_null(v.rows[0].encryption_key_hash);
    assert_string_equal(json_string_value(v.rows[0].encrypted_value), "x");
    db_secret_values_free(&v);
    static const char *const bad[] = {"{", "{}", "[{\"json_path\":1}]", "[3]"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        assert_int_equal(db_secret_values_parse(bad[i], &v, err, sizeof(err)), -EINVAL);
        db_secret_values_free(&v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_at_pointer),
        cmocka_unit_test(test_restore),
        cmocka_unit_test(test_restore_refused),
        cmocka_unit_test(test_parse_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
