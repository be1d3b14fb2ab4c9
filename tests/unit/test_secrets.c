/* Unit tests for worker/secrets: AES-256-GCM round trips, encrypt_json and
 * decrypt_json, vectors made by Python's cryptography package
 * (interoperability), failure cases, the key hash, and resolution of the
 * system < pack < action hierarchy from key rows holding JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "worker/secrets.h"

#define KEY "unit-test-encryption-key-0123456789abcdef"
#define OTHER_KEY "another-encryption-key-0123456789abcdef!!"

/* Made with Python's cryptography package:
 *   key = hashlib.sha256(VECTOR_KEY.encode()).digest()
 *   nonce = os.urandom(12); ct = AESGCM(key).encrypt(nonce, VECTOR_PLAIN.encode(), None)
 *   base64.b64encode(nonce + ct) */
#define VECTOR_KEY "interop-test-key-0123456789abcdef-XYZ"
#define VECTOR_PLAIN "line one\nsay \"hi\" $HOME `id` \xE2\x80\x94 caf\xC3\xA9 \xE2\x9C\x93"
#define VECTOR_STORED                                                                              \
    "ZwAssNSZ9eiISFeoqPBG7Otw4LDnS5b8fxGRO1c7MQ8f41vi85WKv0pualnN53i9vWPaQfui5x0kqxiu80dzfwae"     \
    "rBJgpg=="
#define VECTOR_HASH "e13cb533f76c03fabcfa2e5b868c6de230f611fa489d32b6001926f1ba547547"

static void round_trip(const char *plain, size_t len)
{
    struct strbuf stored, back;
    char err[256] = "";
    strbuf_init(&stored);
    strbuf_init(&back);
    assert_int_equal(secrets_encrypt(KEY, plain, len, &stored), 0);
    assert_non_null(stored.data);
    assert_null(memchr(stored.data, '\n', stored.len));
    assert_int_equal(stored.len % 4, 0);
    assert_int_equal(secrets_decrypt(KEY, stored.data, &back, err, sizeof(err)), 0);
    assert_int_equal(back.len, len);
    assert_memory_equal(back.data, plain, len);
    strbuf_free(&stored);
    strbuf_free(&back);
}

static void test_round_trip(void **state)
{
    (void)state;
    static const char *const values[] = {
        "",
        "x",
        "line one\nline two\n",
        "quotes ' and \" and \\ backslash",
        "$HOME ${PATH} $(id) `uname -a`",
        "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x94\x91",
    };
    for (size_t i = 0; i < ARRAY_SIZE(values); i++)
        round_trip(values[i], strlen(values[i]));

    size_t big = 64 * 1024;
    char *blob = xmalloc(big);
    for (size_t i = 0; i < big; i++)
        blob[i] = (char)(1 + i % 255);
    round_trip(blob, big);
    free(blob);
}

static void test_fresh_nonce(void **state)
{
    (void)state;
    struct strbuf a, b;
    strbuf_init(&a);
    strbuf_init(&b);
    assert_int_equal(secrets_encrypt(KEY, "same", 4, &a), 0);
    assert_int_equal(secrets_encrypt(KEY, "same", 4, &b), 0);
    assert_string_not_equal(a.data, b.data);
    /* The first 12 bytes (16 base64 characters) are the nonce. */
    assert_false(memcmp(a.data, b.data, 16) == 0);
    strbuf_free(&a);
    strbuf_free(&b);
}

static void test_encrypt_appends(void **state)
{
    (void)state;
    struct strbuf out;
    strbuf_init(&out);
    strbuf_puts(&out, "prefix:");
    assert_int_equal(secrets_encrypt(KEY, "v", 1, &out), 0);
    assert_true(str_starts_with(out.data, "prefix:"));
    /* 12 + 1 + 16 = 29 bytes -> 40 base64 characters. */
    assert_int_equal(out.len, 7 + 40);
    assert_int_equal(secrets_encrypt(KEY, "a\0b", 3, &out), -EINVAL);
    strbuf_free(&out);
}

static void test_python_vector(void **state)
{
    (void)state;
    struct strbuf out;
    char err[256] = "";
    strbuf_init(&out);
    assert_int_equal(secrets_decrypt(VECTOR_KEY, VECTOR_STORED, &out, err, sizeof(err)), 0);
    assert_string_equal(out.data, VECTOR_PLAIN);
    assert_int_equal(out.len, strlen(VECTOR_PLAIN));

    /* Surrounding whitespace (a value pasted with a newline) is accepted. */
    strbuf_reset(&out);
    assert_int_equal(secrets_decrypt(VECTOR_KEY, "  " VECTOR_STORED "\n", &out, err, sizeof(err)),
                     0);
    assert_string_equal(out.data, VECTOR_PLAIN);

    char hash[65];
    secrets_key_hash(VECTOR_KEY, hash);
    assert_string_equal(hash, VECTOR_HASH);
    strbuf_free(&out);
}

static void expect_decrypt_fails(const char *key, const char *stored, int code, const char *reason)
{
    struct strbuf out;
    char err[256] = "";
    strbuf_init(&out);
    strbuf_puts(&out, "kept");
    assert_int_equal(secrets_decrypt(key, stored, &out, err, sizeof(err)), code);
    assert_non_null(strstr(err, reason));
    /* Nothing is appended on failure. */
    assert_string_equal(out.data, "kept");
    assert_int_equal(out.len, 4);
    strbuf_free(&out);
}

static void test_wrong_key(void **state)
{
    (void)state;
    expect_decrypt_fails(KEY, VECTOR_STORED, -EBADMSG, "authentication failed");
}

static void test_tampered(void **state)
{
    (void)state;
    char stored[] = VECTOR_STORED;
    /* Flip one bit of the ciphertext ('c' is 28 -> 'd' is 29), then of the
     * nonce, then of the tag. */
    static const size_t positions[] = {20, 2, 85};
    for (size_t i = 0; i < ARRAY_SIZE(positions); i++) {
        char *tampered = xstrdup(stored);
        char c = tampered[positions[i]];
        tampered[positions[i]] = c == 'A' ? 'B' : 'A';
        expect_decrypt_fails(VECTOR_KEY, tampered, -EBADMSG, "authentication failed");
        free(tampered);
    }
    /* A truncated value (last block of base64 gone) fails too. */
    char *cut = xstrndup(stored, strlen(stored) - 4);
    expect_decrypt_fails(VECTOR_KEY, cut, -EBADMSG, "authentication failed");
    free(cut);
}

static void test_bad_base64(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "   ",
        "abc",                                                 /* length not a multiple of 4 */
        "ab!d" VECTOR_STORED,                                  /* invalid character */
        "ZwAs=NSZ9eiISFeoqPBG7Otw",                            /* padding in the middle */
        "ZwAssNSZ9eiISFeo qPBG7Otw4LDnS5b8fxGRO1c7MQ8f41vi",   /* inner space */
        "ZwAssNSZ9eiISFeoqPBG7Otw4LDnS5b8fxGRO1c7MQ8f41v===",  /* three '=' */
        "ZwAssNSZ9eiISFeoqPBG7Otw4LDn\nS5b8fxGRO1c7MQ8f41vi8", /* inner newline */
        VECTOR_STORED "junk",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        expect_decrypt_fails(VECTOR_KEY, bad[i], -EINVAL, "not valid base64");
}

static void test_too_short(void **state)
{
    (void)state;
    /* 27 bytes: one short of nonce + tag. */
    expect_decrypt_fails(KEY, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", -EINVAL, "too short");
    expect_decrypt_fails(KEY, "AAAA", -EINVAL, "too short");
    /* Exactly nonce + tag is an empty plaintext and only fails to authenticate. */
    expect_decrypt_fails(KEY, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", -EBADMSG,
                         "authentication failed");
}

static void test_key_hash(void **state)
{
    (void)state;
    char hash[65];
    secrets_key_hash("abc", hash);
    assert_string_equal(hash, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    secrets_key_hash("", hash);
    assert_string_equal(hash, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* Made with Python's cryptography package as Attune's encrypt_json does:
 *   plain = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
 *   nonce = os.urandom(12); ct = AESGCM(key).encrypt(nonce, plain.encode(), None)
 *   base64.b64encode(nonce + ct)   (key and VECTOR_KEY as above) */
#define JSON_VECTOR_STRING "s3cret \"q\" caf\xC3\xA9\nline"
#define JSON_VECTOR_STRING_STORED                                                                  \
    "h9GEliwqAWNs+sz5UCoksY9qZ0ut3MO0OXm9a2+DdmS24kH+FrY1VOoXnswJ8kKCPn6MBAh6"
#define JSON_VECTOR_OBJECT                                                                         \
    "{\"user\":\"admin\",\"port\":5432,\"tags\":[\"a\",\"b\"],\"on\":true,\"none\":null}"
#define JSON_VECTOR_OBJECT_STORED                                                                  \
    "pkfiYvzdKLCCOJsxPFxtIywJlAZu9rF0iX3Sb0aCDmLaqmsgo7zp/S69QGlX76bJPE1zaR/ijuV5lnAjBQxBekZermUv" \
    "J1XX7fzXP+H2jfSBRyKEQ+gtsDJDEk63+go="

static json_t *parse(const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    assert_non_null(v);
    return v;
}

static void test_encrypt_json_round_trip(void **state)
{
    (void)state;
    static const char *const values[] = {
        "\"s3cret\"",
        "\"\"",
        "\"line one\\nline two \\\"q\\\" caf\xC3\xA9\"",
        "{\"user\":\"admin\",\"nested\":{\"list\":[1,2.5,null,true]}}",
        "[]",
        "42",
        "false",
        "null",
    };
    for (size_t i = 0; i < ARRAY_SIZE(values); i++) {
        json_t *value = parse(values[i]), *stored = NULL, *back = NULL;
        char err[256] = "";
        assert_int_equal(secrets_encrypt_json(KEY, value, &stored), 0);
        assert_true(json_is_string(stored));
        assert_int_equal(secrets_decrypt_json(KEY, stored, &back, err, sizeof(err)), 0);
        assert_true(json_equal(value, back));
        json_decref(value);
        json_decref(stored);
        json_decref(back);
    }
}

/* The plaintext is the compact JSON text of the value: a string keeps its
 * quotes, an object has no spaces. */
static void test_encrypt_json_plaintext(void **state)
{
    (void)state;
    static const char *const texts[] = {"\"s3cret\"", "{\"a\":1,\"b\":[1,2]}", "7"};
    for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
        json_t *value = parse(texts[i]), *stored = NULL;
        struct strbuf plain;
        char err[256] = "";
        strbuf_init(&plain);
        assert_int_equal(secrets_encrypt_json(KEY, value, &stored), 0);
        assert_int_equal(secrets_decrypt(KEY, json_string_value(stored), &plain, err, sizeof(err)),
                         0);
        assert_string_equal(plain.data, texts[i]);
        strbuf_free(&plain);
        json_decref(value);
        json_decref(stored);
    }
}

static void expect_json_vector(const char *stored_b64, json_t *expected)
{
    json_t *stored = json_string(stored_b64), *back = NULL;
    char err[256] = "";
    assert_int_equal(secrets_decrypt_json(VECTOR_KEY, stored, &back, err, sizeof(err)), 0);
    assert_true(json_equal(back, expected));
    json_decref(stored);
    json_decref(back);
    json_decref(expected);
}

static void test_decrypt_json_python_vectors(void **state)
{
    (void)state;
    expect_json_vector(JSON_VECTOR_STRING_STORED, json_string(JSON_VECTOR_STRING));
    expect_json_vector(JSON_VECTOR_OBJECT_STORED, parse(JSON_VECTOR_OBJECT));
}

static void expect_decrypt_json_fails(const char *key, json_t *stored, int code, const char *reason)
{
    json_t *out = NULL;
    char err[256] = "";
    assert_int_equal(secrets_decrypt_json(key, stored, &out, err, sizeof(err)), code);
    assert_null(out);
    assert_non_null(strstr(err, reason));
    assert_null(strstr(err, "s3cr3t"));
    json_decref(stored);
}

static void test_decrypt_json_errors(void **state)
{
    (void)state;
    expect_decrypt_json_fails(KEY, json_integer(5), -EINVAL, "not a JSON string");
    expect_decrypt_json_fails(KEY, json_string(JSON_VECTOR_STRING_STORED), -EBADMSG,
                              "authentication failed");
    /* The format before migration 0003: the raw text, not JSON, encrypted. */
    struct strbuf old;
    strbuf_init(&old);
    assert_int_equal(secrets_encrypt(KEY, "s3cr3t raw {text", 16, &old), 0);
    expect_decrypt_json_fails(KEY, json_string(old.data), -EINVAL, "not JSON text");
    strbuf_free(&old);
}

/* A key.value for the resolve tests: encrypt_json of the text as a JSON
 * string, as JSON text. The caller frees it. */
static char *encrypted(const char *key, const char *plain)
{
    json_t *value = json_string(plain), *stored = NULL;
    assert_int_equal(secrets_encrypt_json(key, value, &stored), 0);
    char *text = json_dumps(stored, JSON_ENCODE_ANY);
    json_decref(value);
    json_decref(stored);
    return text;
}

static void test_resolve_precedence(void **state)
{
    (void)state;
    char hash[65];
    secrets_key_hash(KEY, hash);
    char *enc_action = encrypted(KEY, "from action\nwith newline");
    /* Rows in the "wrong" order on purpose: precedence must not depend on it. */
    const struct key_row rows[] = {
        {"token", "action", true, hash, enc_action},
        {"token", "pack", false, NULL, "\"from pack\""},
        {"token", "system", false, NULL, "\"from system\""},
        {"region", "pack", false, NULL, "\"pack region\""},
        {"region", "system", false, NULL, "\"system region\""},
        {"db", "system", false, NULL, "\"system db\""},
        {"db", "identity", false, NULL, "\"identity db\""},
        {"other", "sensor", false, NULL, "\"ignored\""},
        {"region", "system", false, NULL, "\"later system region\""},
    };
    json_t *out = NULL;
    char err[256] = "";
    assert_int_equal(secrets_resolve(rows, ARRAY_SIZE(rows), KEY, &out, err, sizeof(err)), 0);
    assert_int_equal(json_object_size(out), 3);
    assert_string_equal(json_string_value(json_object_get(out, "token")),
                        "from action\nwith newline");
    assert_string_equal(json_string_value(json_object_get(out, "region")), "pack region");
    assert_string_equal(json_string_value(json_object_get(out, "db")), "system db");
    assert_null(json_object_get(out, "other"));
    json_decref(out);
    free(enc_action);
}

/* get_secret's text: a JSON string as it is, anything else as compact JSON
 * (the database hands JSONB out with spaces). */
static void test_resolve_json_values(void **state)
{
    (void)state;
    char hash[65];
    secrets_key_hash(KEY, hash);
    json_t *object = parse("{\"user\": \"admin\", \"port\": 5432}"), *stored = NULL;
    assert_int_equal(secrets_encrypt_json(KEY, object, &stored), 0);
    char *enc_object = json_dumps(stored, JSON_ENCODE_ANY);
    const struct key_row rows[] = {
        {"conf", "system", false, NULL, "{\"list\": [1, \"two\", null], \"on\": true}"},
        {"port", "pack", false, NULL, "5432"},
        {"quoted", "pack", false, NULL, "\"\\\"q\\\" \\u00e9\""},
        {"login", "action", true, hash, enc_object},
    };
    json_t *out = NULL;
    char err[256] = "";
    assert_int_equal(secrets_resolve(rows, ARRAY_SIZE(rows), KEY, &out, err, sizeof(err)), 0);
    assert_string_equal(json_string_value(json_object_get(out, "conf")),
                        "{\"list\":[1,\"two\",null],\"on\":true}");
    assert_string_equal(json_string_value(json_object_get(out, "port")), "5432");
    assert_string_equal(json_string_value(json_object_get(out, "quoted")), "\"q\" \xC3\xA9");
    assert_string_equal(json_string_value(json_object_get(out, "login")),
                        "{\"user\":\"admin\",\"port\":5432}");
    json_decref(out);
    json_decref(object);
    json_decref(stored);
    free(enc_object);
}

static void test_resolve_overridden_row_not_decrypted(void **state)
{
    (void)state;
    char other_hash[65];
    secrets_key_hash(OTHER_KEY, other_hash);
    char *stale = encrypted(OTHER_KEY, "stale");
    /* The system row cannot be decrypted with KEY, but the action's own row
     * overrides it, so the action still runs. */
    const struct key_row rows[] = {
        {"token", "system", true, other_hash, stale},
        {"token", "action", false, NULL, "\"own\""},
    };
    json_t *out = NULL;
    char err[256] = "";
    assert_int_equal(secrets_resolve(rows, ARRAY_SIZE(rows), KEY, &out, err, sizeof(err)), 0);
    assert_string_equal(json_string_value(json_object_get(out, "token")), "own");
    json_decref(out);
    free(stale);
}

static void test_resolve_hash_mismatch(void **state)
{
    (void)state;
    char other_hash[65];
    secrets_key_hash(OTHER_KEY, other_hash);
    char *enc = encrypted(OTHER_KEY, "s3cr3t-value");
    const struct key_row rows[] = {
        {"api_token", "pack", true, other_hash, enc},
    };
    json_t *out = NULL;
    char err[256] = "";
    assert_int_equal(secrets_resolve(rows, 1, KEY, &out, err, sizeof(err)), -EKEYREJECTED);
    assert_null(out);
    assert_non_null(strstr(err, "'api_token'"));
    assert_non_null(strstr(err, "different key"));
    assert_non_null(strstr(err, "security.encryption_key"));
    assert_null(strstr(err, "s3cr3t"));
    free(enc);
}

static void test_resolve_encrypted_without_key(void **state)
{
    (void)state;
    char *enc = encrypted(KEY, "s3cr3t-value");
    const struct key_row rows[] = {
        {"plain", "system", false, NULL, "\"fine\""},
        {"db_password", "action", true, NULL, enc},
    };
    static const char *const no_keys[] = {NULL, ""};
    for (size_t i = 0; i < ARRAY_SIZE(no_keys); i++) {
        json_t *out = NULL;
        char err[256] = "";
        assert_int_equal(
            secrets_resolve(rows, ARRAY_SIZE(rows), no_keys[i], &out, err, sizeof(err)), -ENOKEY);
        assert_null(out);
        assert_non_null(strstr(err, "'db_password'"));
        assert_non_null(strstr(err, "security.encryption_key"));
        assert_null(strstr(err, "s3cr3t"));
    }
    free(enc);
}

static void test_resolve_undecryptable(void **state)
{
    (void)state;
    char *enc = encrypted(OTHER_KEY, "s3cr3t-value");
    /* No stored hash: the wrong key is caught by authentication. */
    const struct key_row rows[] = {
        {"webhook", "system", true, NULL, enc},
        {"garbled", "pack", true, NULL, "\"not*base64\""},
        {"number", "pack", true, NULL, "12"},
    };
    json_t *out = NULL;
    char err[256] = "";
    assert_int_equal(secrets_resolve(rows, 1, KEY, &out, err, sizeof(err)), -EBADMSG);
    assert_non_null(strstr(err, "'webhook'"));
    assert_null(strstr(err, "s3cr3t"));
    assert_int_equal(secrets_resolve(rows + 1, 1, KEY, &out, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "'garbled'"));
    assert_non_null(strstr(err, "base64"));
    assert_null(strstr(err, "not*base64"));
    assert_int_equal(secrets_resolve(rows + 2, 1, KEY, &out, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "'number'"));
    assert_non_null(strstr(err, "not a JSON string"));
    assert_null(out);
    free(enc);
}

/* Values that are not JSON (the layout before migration 0003) or that hold
 * what no action can be given fail with the key's name and nothing of the
 * value. */
static void test_resolve_bad_values(void **state)
{
    (void)state;
    struct strbuf old_format;
    strbuf_init(&old_format);
    strbuf_putc(&old_format, '"');
    assert_int_equal(secrets_encrypt(KEY, "s3cr3t-old", 10, &old_format), 0);
    strbuf_putc(&old_format, '"');
    const struct key_row rows[] = {
        {"legacy_plain", "system", false, NULL, "s3cr3t-plain"},
        {"legacy_encrypted", "system", true, NULL, old_format.data},
        {"with_nul", "action", false, NULL, "\"s3cr3t\\u0000x\""},
    };
    static const char *const reasons[] = {"not JSON", "migrate", "NUL"};
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        json_t *out = NULL;
        char err[256] = "";
        assert_int_equal(secrets_resolve(rows + i, 1, KEY, &out, err, sizeof(err)), -EINVAL);
        assert_null(out);
        assert_non_null(strstr(err, rows[i].name));
        assert_non_null(strstr(err, reasons[i]));
        assert_null(strstr(err, "s3cr3t"));
    }
    strbuf_free(&old_format);
}

static void test_resolve_empty(void **state)
{
    (void)state;
    json_t *out = NULL;
    char err[256] = "";
    assert_int_equal(secrets_resolve(NULL, 0, NULL, &out, err, sizeof(err)), 0);
    assert_true(json_is_object(out));
    assert_int_equal(json_object_size(out), 0);
    json_decref(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_fresh_nonce),
        cmocka_unit_test(test_encrypt_appends),
        cmocka_unit_test(test_python_vector),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_bad_base64),
        cmocka_unit_test(test_too_short),
        cmocka_unit_test(test_key_hash),
        cmocka_unit_test(test_encrypt_json_round_trip),
        cmocka_unit_test(test_encrypt_json_plaintext),
        cmocka_unit_test(test_decrypt_json_python_vectors),
        cmocka_unit_test(test_decrypt_json_errors),
        cmocka_unit_test(test_resolve_precedence),
        cmocka_unit_test(test_resolve_json_values),
        cmocka_unit_test(test_resolve_overridden_row_not_decrypted),
        cmocka_unit_test(test_resolve_hash_mismatch),
        cmocka_unit_test(test_resolve_encrypted_without_key),
        cmocka_unit_test(test_resolve_undecryptable),
        cmocka_unit_test(test_resolve_bad_values),
        cmocka_unit_test(test_resolve_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
