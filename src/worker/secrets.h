/* Secrets: AES-256-GCM encryption in the stored format of CONTRACT.md
 * section 4 (base64 of nonce || ciphertext || tag, key = SHA-256 of the
 * configured key string), the key hash check, and the owner hierarchy that
 * decides which value an action sees. */
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

/* Resolves rows into name -> plaintext for one action: system keys, then the
 * pack's, then the action's (a more specific owner wins for the same name;
 * other owner types are ignored). Encrypted rows are decrypted with
 * key_string; a row whose stored hash differs from the configured key's hash,
 * an encrypted row with no key configured, or a value that does not decrypt is
 * an error naming the key (never its value). Returns 0 and a new object in
 * *out, or a negative errno. */
int secrets_resolve(const struct key_row *rows, size_t count, const char *key_string, json_t **out,
                    char *err, size_t errlen);

#endif
