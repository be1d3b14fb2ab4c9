/* libFuzzer target: stored secret values (secrets_decrypt and
 * secrets_decrypt_json with a fixed key) and the key-table rows of
 * secrets_resolve, as they come from a database anyone with write access to
 * the key table can fill.
 * Input: the whole input is one stored value for secrets_decrypt, and as JSON
 * text one for secrets_decrypt_json; it is also read as rows, one a line:
 * OWNER FLAG NAME TAB VALUE (VALUE is key.value as JSON text), where OWNER is s
 * (system), p (pack), a (action), n (no owner) or anything else (an owner an
 * action never sees), and FLAG is e (encrypted, right key hash), E (encrypted,
 * no hash), x (encrypted, another key's hash), X (encrypted, empty hash), u
 * (plain text) or N (no value). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/util.h"
#include "worker/secrets.h"

#define FUZZ_KEY "fuzz-encryption-key-0123456789abcdef-0123456789"
#define OTHER_KEY "another-fuzz-encryption-key-0123456789abcdef-01"
#define PREFIX "kept:"
#define MAX_ROWS 64

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char key_hash[65];

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_secret_decode: %s: %s\n", what, detail);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    secrets_key_hash(FUZZ_KEY, key_hash);
    return 0;
}

/* Decrypts into a buffer that already holds PREFIX: success appends the
 * plaintext, failure leaves the buffer as it was. */
static int decrypt_after_prefix(const char *key, const char *stored, struct strbuf *out)
{
    char err[256] = "";
    strbuf_reset(out);
    strbuf_puts(out, PREFIX);
    int rc = secrets_decrypt(key, stored, out, err, sizeof(err));
    if (rc == 0)
        return 0;
    if (!err[0])
        fail("decryption failed without a message", stored);
    if (out->len != strlen(PREFIX) || memcmp(out->data, PREFIX, out->len + 1) != 0)
        fail("a failed decryption changed the output buffer", stored);
    return rc;
}

static void check_decrypt(const char *stored)
{
    struct strbuf out;
    strbuf_init(&out);
    if (decrypt_after_prefix(FUZZ_KEY, stored, &out) != 0) {
        strbuf_free(&out);
        return;
    }
    const char *plain = out.data + strlen(PREFIX);
    size_t plain_len = out.len - strlen(PREFIX);
    struct strbuf other;
    strbuf_init(&other);
    if (decrypt_after_prefix(OTHER_KEY, stored, &other) != -EBADMSG)
        fail("a value decrypts under two keys", stored);
    /* What decrypts encrypts and decrypts again to the same bytes. */
    if (!memchr(plain, '\0', plain_len)) {
        struct strbuf again, back;
        strbuf_init(&again);
        strbuf_init(&back);
        if (secrets_encrypt(FUZZ_KEY, plain, plain_len, &again) != 0 ||
            decrypt_after_prefix(FUZZ_KEY, again.data, &back) != 0 || back.len != out.len ||
            memcmp(back.data, out.data, out.len) != 0)
            fail("re-encrypted value does not decrypt to the same bytes", stored);
        strbuf_free(&again);
        strbuf_free(&back);
    }
    strbuf_free(&other);
    strbuf_free(&out);
}

/* The same for encrypt_json's form: a JSON string that decrypts to a JSON
 * value, which encrypts and decrypts again to an equal value. */
static void check_decrypt_json(const char *text)
{
    json_t *stored = json_loads(text, JSON_DECODE_ANY, NULL), *value = NULL;
    char err[256] = "";
    if (!stored)
        return;
    int rc = secrets_decrypt_json(FUZZ_KEY, stored, &value, err, sizeof(err));
    if (rc < 0 && (!err[0] || value))
        fail("a failed decrypt_json left no message or a value", text);
    if (rc == 0) {
        json_t *again = NULL, *back = NULL, *other = NULL;
        if (secrets_decrypt_json(OTHER_KEY, stored, &other, err, sizeof(err)) != -EBADMSG || other)
            fail("a value decrypt_json-s under two keys", text);
        if (secrets_encrypt_json(FUZZ_KEY, value, &again) != 0 ||
            secrets_decrypt_json(FUZZ_KEY, again, &back, err, sizeof(err)) != 0 ||
            !json_equal(value, back))
            fail("re-encrypted JSON value does not decrypt to an equal value", text);
        json_decref(again);
        json_decref(back);
    }
    json_decref(value);
    json_decref(stored);
}

static const char *owner_of(char c)
{
    switch (c) {
    case 's':
        return "system";
    case 'p':
        return "pack";
    case 'a':
        return "action";
    case 'n':
        return NULL;
    default:
        return "identity";
    }
}

/* Splits text (modified in place) into rows; returns their count. */
static size_t parse_rows(char *text, struct key_row *rows)
{
    size_t n = 0;
    for (char *line = text; line && *line && n < MAX_ROWS;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (strlen(line) >= 2) {
            struct key_row *r = &rows[n++];
            char flag = line[1];
            char *tab = strchr(line + 2, '\t');
            if (tab)
                *tab = '\0';
            r->owner_type = owner_of(line[0]);
            r->name = line + 2;
            r->value = flag == 'N' ? NULL : tab ? tab + 1 : "";
            r->encrypted = strchr("eExX", flag) != NULL;
            r->encryption_key_hash = flag == 'e'   ? key_hash
                                     : flag == 'x' ? "00ff"
                                     : flag == 'X' ? ""
                                                   : NULL;
        }
        line = nl ? nl + 1 : NULL;
    }
    return n;
}

/* A value an error message could only hold by leaking it: it has a character
 * no message template uses and is not part of a name the message may quote. */
static bool is_traceable(const char *value, const struct key_row *rows, size_t n)
{
    if (!value || strlen(value) < 4 || !strpbrk(value, "@#!"))
        return false;
    for (size_t i = 0; i < n; i++)
        if (rows[i].name && strstr(rows[i].name, value))
            return false;
    return true;
}

static void check_resolve(const struct key_row *rows, size_t n, const char *key)
{
    json_t *out = NULL;
    char err[512] = "";
    int rc = secrets_resolve(rows, n, key, &out, err, sizeof(err));
    if (rc == 0) {
        const char *name;
        json_t *v;
        json_object_foreach(out, name, v)
        {
            if (!json_is_string(v))
                fail("resolved a secret that is not a string", name);
        }
        json_decref(out);
        return;
    }
    if (!err[0])
        fail("resolution failed without a message", "");
    for (size_t i = 0; i < n; i++)
        if (is_traceable(rows[i].value, rows, n) && strstr(err, rows[i].value))
            fail("an error message shows a secret value", err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = strndup((const char *)data, size);
    check_decrypt(text);
    check_decrypt_json(text);
    struct key_row rows[MAX_ROWS];
    memset(rows, 0, sizeof(rows));
    size_t n = parse_rows(text, rows);
    check_resolve(rows, n, FUZZ_KEY);
    check_resolve(rows, n, NULL);
    check_resolve(rows, n, OTHER_KEY);
    free(text);
    return 0;
}
