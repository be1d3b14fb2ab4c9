/* JSON Web Tokens signed with HMAC-SHA-256 (RFC 7519, RFC 7515 compact form):
 * header.payload.signature, each part base64url without padding, as Rust's
 * jsonwebtoken crate writes them, so that Attune's API accepts them. */
#ifndef ATTUNE_CORE_JWT_H
#define ATTUNE_CORE_JWT_H

#include <jansson.h>
#include <stddef.h>

/* The header of every token: jsonwebtoken's Header::default(), typ first. */
#define JWT_HEADER_HS256 "{\"typ\":\"JWT\",\"alg\":\"HS256\"}"

/* The base64url text of data (RFC 4648 section 5) without '=' padding. */
char *jwt_base64url(const void *data, size_t len);

/* The token for claims (an object, written as compact JSON in its own key
 * order) signed under key. NULL only when OpenSSL refuses; free it with
 * jwt_free. */
char *jwt_sign_hs256(const json_t *claims, const void *key, size_t keylen);

/* A token is a credential: wipes it, then frees it. NULL-safe. */
void jwt_free(char *token);

#endif
