/* HS256 JSON Web Tokens (see jwt.h). */
#include "core/jwt.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

char *jwt_base64url(const void *data, size_t len)
{
    /* EVP_EncodeBlock writes standard base64 with padding and a NUL. */
    char *out = xmalloc(4 * ((len + 2) / 3) + 1);
    int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = '\0';
    for (char *p = out; *p; p++) {
        if (*p == '+')
            *p = '-';
        else if (*p == '/')
            *p = '_';
    }
    return out;
}

char *jwt_sign_hs256(const json_t *claims, const void *key, size_t keylen)
{
    char *payload_json = json_dumps(claims, JSON_COMPACT);
    char *header = jwt_base64url(JWT_HEADER_HS256, strlen(JWT_HEADER_HS256));
    char *payload = jwt_base64url(payload_json, strlen(payload_json));
    char *signing_input = xasprintf("%s.%s", header, payload);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    char *token = NULL;
    /* HMAC() takes a NULL key as "no key": an empty one is a valid key. */
    static const unsigned char empty_key[1];
    if (HMAC(EVP_sha256(), keylen ? key : empty_key, (int)keylen,
             (const unsigned char *)signing_input, strlen(signing_input), mac, &maclen)) {
        char *signature = jwt_base64url(mac, maclen);
        token = xasprintf("%s.%s", signing_input, signature);
        free(signature);
    }
    secure_zero(mac, sizeof(mac));
    free(signing_input);
    free(payload);
    free(header);
    free(payload_json);
    return token;
}

void jwt_free(char *token)
{
    if (token) {
        secure_zero(token, strlen(token));
        free(token);
    }
}
