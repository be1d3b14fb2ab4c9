/* Secrets: AES-256-GCM encryption in Attune's stored format (base64 of
 * nonce || ciphertext || tag, key = SHA-256 of the configured key string),
 * its JSON form encrypt_json / decrypt_json, the key hash check, and the
 * owner hierarchy that decides which value an action sees. */
#ifndef ATTUNE_WORKER_SECRETS_H
#define ATTUNE_WORKER_SECRETS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/util.h"
#include "db/keys.h"

/* Lowercase hex SHA-256 of the key string (65 bytes with the NUL). */
void secrets_key_hash(const char *key_string, char out[65]);

/* Encrypts plaintext (any bytes but NUL) with a fresh random 12-byte nonce;
 * appends the base64 text to out. Returns 0 or a negative errno. */
int secrets_encrypt(const char *key_string, const char *plaintext, size_t len, struct strbuf *out);

/* Decrypts a stored value; appends the plaintext to out. Fails (with a
 * message in err, never containing the value) on bad base64, a value too
 * short to hold nonce and tag, or an authentication failure (wrong key or
 * tampered data). Returns 0 or a negative errno. */
int secrets_decrypt(const char *key_string, const char *stored, struct strbuf *out, char *err,
                    size_t errlen);

/* Attune's encrypt_json: the compact JSON text of value (a string keeps its
 * quotes) encrypted as secrets_encrypt does; *out is a new JSON string holding
 * the base64 text, which is what key.value and
 * execution_secret_value.encrypted_value store. Returns 0 or a negative errno. */
int secrets_encrypt_json(const char *key_string, const json_t *value, json_t **out);

/* Attune's decrypt_json: stored must be a JSON string made by encrypt_json;
 * *out is the new JSON value it decrypts to. Errors as secrets_decrypt, and a
 * plaintext that is not JSON text; no message holds any part of the value.
 * Returns 0 or a negative errno. */
int secrets_decrypt_json(const char *key_string, const json_t *stored, json_t **out, char *err,
                         size_t errlen);

/* What get_secret returns for a JSON value: a string's text as it is, any
 * other value as its compact JSON text. Appends to out. */
void secrets_value_text(const json_t *value, struct strbuf *out);

/* Overwrites the text of every string inside value, then releases it. */
void secrets_json_wipe_free(json_t *value);

/* Resolves key rows into name -> JSON value for one action: system keys,
 * then the pack's, then the action's (a more specific owner wins for the same
 * name; other owner types are ignored). A row's value is JSON text
 * (key.value); encrypted rows hold encrypt_json output and are decrypted with
 * key_string. A row whose stored hash differs from the configured key's hash,
 * an encrypted row with no key configured, or a value that does not decrypt
 * or is not JSON is an error naming the key (never its value). Returns 0 and
 * a new object in *out, or a negative errno. */
int secrets_resolve_values(const struct key_row *rows, size_t count, const char *key_string,
                           json_t **out, char *err, size_t errlen);

/* name -> the text get_secret returns for each value (secrets_value_text).
 * A text holding a NUL character is an error naming the key. Returns 0 and a
 * new object in *out, or a negative errno. */
int secrets_texts(const json_t *values, json_t **out, char *err, size_t errlen);

/* secrets_resolve_values, then secrets_texts: name -> text. */
int secrets_resolve(const struct key_row *rows, size_t count, const char *key_string, json_t **out,
                    char *err, size_t errlen);

#endif
