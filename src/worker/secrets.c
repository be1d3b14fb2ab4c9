/* Secrets: AES-256-GCM in Attune's stored format, its JSON form
 * (encrypt_json / decrypt_json), and the system < pack < action hierarchy
 * that decides which value an action sees. */
#include "worker/secrets.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#define NONCE_LEN 12
#define TAG_LEN 16
#define KEY_LEN 32
/* Largest raw value whose base64 form still fits the int lengths of EVP. */
#define RAW_MAX ((size_t)(INT_MAX / 4) * 3)

static void sha256(const void *data, size_t len, unsigned char md[KEY_LEN])
{
    unsigned int mdlen = 0;
    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != KEY_LEN)
        abort(); /* SHA-256 cannot fail short of a broken libcrypto */
}

void secrets_key_hash(const char *key_string, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[KEY_LEN];
    sha256(key_string, strlen(key_string), md);
    for (size_t i = 0; i < KEY_LEN; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0xf];
    }
    out[64] = '\0';
}

/* Runs the GCM encryption of plaintext into raw = nonce || ciphertext || tag. */
static int gcm_seal(const unsigned char key[KEY_LEN], const char *plaintext, size_t len,
                    unsigned char *raw)
{
    unsigned char *nonce = raw, *ct = raw + NONCE_LEN, *tag = raw + NONCE_LEN + len;
    int n = 0, rc = -EIO;
    if (RAND_bytes(nonce, NONCE_LEN) != 1)
        return -EIO;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx)
        return -ENOMEM;
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
        EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce) == 1 &&
        EVP_EncryptUpdate(ctx, ct, &n, (const unsigned char *)plaintext, (int)len) == 1 &&
        EVP_EncryptFinal_ex(ctx, ct + n, &n) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, tag) == 1)
        rc = 0;
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

int secrets_encrypt(const char *key_string, const char *plaintext, size_t len, struct strbuf *out)
{
    if (!key_string || (len && !plaintext) || (len && memchr(plaintext, '\0', len)))
        return -EINVAL;
    if (len > RAW_MAX - NONCE_LEN - TAG_LEN)
        return -EMSGSIZE;
    size_t raw_len = NONCE_LEN + len + TAG_LEN;
    unsigned char key[KEY_LEN];
    unsigned char *raw = xmalloc(raw_len);
    sha256(key_string, strlen(key_string), key);
    int rc = gcm_seal(key, plaintext, len, raw);
    OPENSSL_cleanse(key, sizeof(key));
    if (rc == 0) {
        size_t b64_len = 4 * ((raw_len + 2) / 3);
        unsigned char *b64 = xmalloc(b64_len + 1);
        EVP_EncodeBlock(b64, raw, (int)raw_len);
        strbuf_append(out, b64, b64_len);
        free(b64);
    }
    free(raw);
    return rc;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_b64(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* Strict standard base64 with padding; only surrounding whitespace is
 * allowed. Returns a new buffer and its decoded length, or NULL. */
static unsigned char *b64_decode(const char *s, size_t *out_len)
{
    size_t len = strlen(s);
    while (len && is_space(s[len - 1]))
        len--;
    while (len && is_space(*s))
        s++, len--;
    if (len == 0 || len % 4 != 0 || len > (size_t)INT_MAX)
        return NULL;
    size_t pad = s[len - 1] == '=' ? (s[len - 2] == '=' ? 2 : 1) : 0;
    for (size_t i = 0; i < len - pad; i++)
        if (!is_b64(s[i]))
            return NULL;
    unsigned char *raw = xmalloc(len / 4 * 3 + 1);
    int n = EVP_DecodeBlock(raw, (const unsigned char *)s, (int)len);
    if (n < 0 || (size_t)n != len / 4 * 3) {
        free(raw);
        return NULL;
    }
    *out_len = (size_t)n - pad;
    return raw;
}

/* Decrypts ct into dst (ct_len bytes); 0, or -EBADMSG when the tag does not
 * authenticate (wrong key or tampered data). */
static int gcm_open(const unsigned char key[KEY_LEN], const unsigned char *raw, size_t raw_len,
                    unsigned char *dst)
{
    const unsigned char *nonce = raw, *ct = raw + NONCE_LEN;
    size_t ct_len = raw_len - NONCE_LEN - TAG_LEN;
    unsigned char tag[TAG_LEN];
    int n = 0, rc = -EIO;
    memcpy(tag, raw + raw_len - TAG_LEN, TAG_LEN);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx)
        return -ENOMEM;
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
        EVP_DecryptInit_ex(ctx, NULL, NULL, key, nonce) == 1 &&
        EVP_DecryptUpdate(ctx, dst, &n, ct, (int)ct_len) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, tag) == 1)
        rc = EVP_DecryptFinal_ex(ctx, dst + n, &n) == 1 ? 0 : -EBADMSG;
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

int secrets_decrypt(const char *key_string, const char *stored, struct strbuf *out, char *err,
                    size_t errlen)
{
    if (!key_string || !stored)
        return set_error(err, errlen, EINVAL, "no encryption key or no stored value");
    size_t raw_len = 0;
    unsigned char *raw = b64_decode(stored, &raw_len);
    if (!raw)
        return set_error(err, errlen, EINVAL, "stored value is not valid base64");
    if (raw_len < NONCE_LEN + TAG_LEN) {
        free(raw);
        return set_error(err, errlen, EINVAL,
                         "stored value is too short (%zu bytes) to hold a nonce and a tag",
                         raw_len);
    }
    /* The plaintext is written straight into out, so no other copy of it
     * exists to be wiped; the space is reserved with the ciphertext bytes. */
    size_t ct_len = raw_len - NONCE_LEN - TAG_LEN, old = out->len;
    strbuf_append(out, raw + NONCE_LEN, ct_len);
    unsigned char key[KEY_LEN];
    sha256(key_string, strlen(key_string), key);
    int rc = gcm_open(key, raw, raw_len, (unsigned char *)out->data + old);
    OPENSSL_cleanse(key, sizeof(key));
    free(raw);
    if (rc == 0)
        return 0;
    secure_zero(out->data + old, ct_len);
    out->len = old;
    out->data[old] = '\0';
    if (rc == -EBADMSG)
        return set_error(err, errlen, EBADMSG,
                         "authentication failed (wrong key or tampered value)");
    return set_error(err, errlen, rc, "decryption failed in libcrypto");
}

/* JSON text of any value, compact as serde_json writes it: "," and ":" with
 * no spaces, a string with its quotes. */
static char *json_text(const json_t *value)
{
    return json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
}

static void free_wiped(char *text)
{
    if (text)
        secure_zero(text, strlen(text));
    free(text);
}

int secrets_encrypt_json(const char *key_string, const json_t *value, json_t **out)
{
    char *text = value ? json_text(value) : NULL;
    if (!text)
        return -EINVAL;
    struct strbuf stored;
    strbuf_init(&stored);
    int rc = secrets_encrypt(key_string, text, strlen(text), &stored);
    free_wiped(text);
    if (rc == 0)
        *out = json_stringn(stored.data, stored.len);
    strbuf_free(&stored);
    return rc;
}

int secrets_decrypt_json(const char *key_string, const json_t *stored, json_t **out, char *err,
                         size_t errlen)
{
    if (!json_is_string(stored))
        return set_error(err, errlen, EINVAL, "stored value is not a JSON string");
    struct strbuf plain;
    strbuf_init(&plain);
    strbuf_append(&plain, "", 0);
    int rc = secrets_decrypt(key_string, json_string_value(stored), &plain, err, errlen);
    if (rc == 0) {
        /* JSON_ALLOW_NUL: a "\u0000" is refused later with a clearer reason.
         * The parser's own message may quote the text, so it is not passed on. */
        *out = json_loadb(plain.data, plain.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (!*out)
            rc = set_error(err, errlen, EINVAL,
                           "the decrypted value is not JSON text (stored in the layout before "
                           "migration 0003? run attunectl migrate)");
    }
    secure_zero(plain.data, plain.cap);
    strbuf_free(&plain);
    return rc;
}

void secrets_value_text(const json_t *value, struct strbuf *out)
{
    if (json_is_string(value)) {
        strbuf_append(out, json_string_value(value), json_string_length(value));
        return;
    }
    char *text = json_text(value);
    if (text)
        strbuf_puts(out, text);
    free_wiped(text);
}

static void json_wipe(json_t *value)
{
    size_t i;
    const char *name;
    json_t *item;
    if (json_is_string(value))
        secure_zero((char *)json_string_value(value), json_string_length(value));
    else if (json_is_array(value)) {
        json_array_foreach(value, i, item)
        {
            json_wipe(item);
        }
    } else if (json_is_object(value)) {
        json_object_foreach(value, name, item)
        {
            json_wipe(item);
        }
    }
}

void secrets_json_wipe_free(json_t *value)
{
    json_wipe(value);
    json_decref(value);
}

/* Precedence of an owner type; 0 for those an action never sees. */
static int owner_rank(const char *owner_type)
{
    if (!owner_type)
        return 0;
    if (strcmp(owner_type, "system") == 0)
        return 1;
    if (strcmp(owner_type, "pack") == 0)
        return 2;
    if (strcmp(owner_type, "action") == 0)
        return 3;
    return 0;
}

/* Index of the row that wins for each name: the most specific owner; among
 * rows of equal rank, the later one. Returns name -> row index. */
static json_t *pick_winners(const struct key_row *rows, size_t count)
{
    json_t *winners = json_object();
    for (size_t i = 0; i < count; i++) {
        int rank = owner_rank(rows[i].owner_type);
        if (rank == 0 || !rows[i].name)
            continue;
        json_t *cur = json_object_get(winners, rows[i].name);
        if (cur && owner_rank(rows[json_integer_value(cur)].owner_type) > rank)
            continue;
        json_object_set_new(winners, rows[i].name, json_integer((json_int_t)i));
    }
    return winners;
}

/* The JSON value of one row: its stored value, or what that decrypts to.
 * The error names the key only. */
static int row_value(const struct key_row *row, const char *key_string, const char *key_hash,
                     json_t **value, char *err, size_t errlen)
{
    if (!row->value)
        return set_error(err, errlen, EINVAL, "secret '%s' has no value", row->name);
    json_t *stored = json_loads(row->value, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (!stored)
        return set_error(err, errlen, EINVAL, "secret '%s' has a stored value that is not JSON",
                         row->name);
    if (!row->encrypted) {
        *value = stored;
        return 0;
    }
    int rc = 0;
    char why[200];
    if (!key_hash)
        rc = set_error(err, errlen, ENOKEY,
                       "secret '%s' is encrypted but no security.encryption_key is configured",
                       row->name);
    else if (row->encryption_key_hash && *row->encryption_key_hash &&
             strcasecmp(row->encryption_key_hash, key_hash) != 0)
        rc = set_error(err, errlen, EKEYREJECTED,
                       "secret '%s' was encrypted with a different key (hash mismatch); set "
                       "security.encryption_key to the key it was stored with",
                       row->name);
    else if ((rc = secrets_decrypt_json(key_string, stored, value, why, sizeof(why))) < 0)
        set_error(err, errlen, rc, "secret '%s' cannot be decrypted: %s", row->name, why);
    json_decref(stored);
    return rc;
}

static int add_text(json_t *obj, const char *name, const struct strbuf *plain, char *err,
                    size_t errlen)
{
    /* Secrets travel to actions as JSON text: no NUL ("\u0000" in a stored
     * string), and UTF-8 (which JSON values always are). */
    json_t *s =
        memchr(plain->data, '\0', plain->len) ? NULL : json_stringn(plain->data, plain->len);
    if (!s)
        return set_error(err, errlen, EINVAL,
                         "secret '%s' holds a NUL character, which cannot reach an action", name);
    json_object_set_new(obj, name, s);
    return 0;
}

int secrets_resolve_values(const struct key_row *rows, size_t count, const char *key_string,
                           json_t **out, char *err, size_t errlen)
{
    char hash[65];
    const char *key_hash = NULL;
    if (key_string && *key_string) {
        secrets_key_hash(key_string, hash);
        key_hash = hash;
    }
    json_t *winners = pick_winners(rows, count);
    json_t *result = json_object();
    int rc = 0;
    const char *name;
    json_t *idx;
    json_object_foreach(winners, name, idx)
    {
        json_t *value = NULL;
        rc = row_value(&rows[json_integer_value(idx)], key_string, key_hash, &value, err, errlen);
        if (rc < 0)
            break;
        json_object_set_new(result, name, value);
    }
    json_decref(winners);
    if (rc < 0) {
        secrets_json_wipe_free(result);
        return rc;
    }
    *out = result;
    return 0;
}

int secrets_texts(const json_t *values, json_t **out, char *err, size_t errlen)
{
    json_t *result = json_object();
    struct strbuf plain;
    strbuf_init(&plain);
    strbuf_append(&plain, "", 0);
    int rc = 0;
    const char *name;
    const json_t *value;
    json_object_foreach((json_t *)values, name, value)
    {
        strbuf_reset(&plain);
        secrets_value_text(value, &plain);
        rc = add_text(result, name, &plain, err, errlen);
        secure_zero(plain.data, plain.cap);
        if (rc < 0)
            break;
    }
    strbuf_free(&plain);
    if (rc < 0) {
        secrets_json_wipe_free(result);
        return rc;
    }
    *out = result;
    return 0;
}

int secrets_resolve(const struct key_row *rows, size_t count, const char *key_string, json_t **out,
                    char *err, size_t errlen)
{
    json_t *values = NULL;
    int rc = secrets_resolve_values(rows, count, key_string, &values, err, errlen);
    if (rc == 0)
        rc = secrets_texts(values, out, err, errlen);
    secrets_json_wipe_free(values);
    return rc;
}
