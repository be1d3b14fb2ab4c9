/* The forms a secret value is masked in, and masking of JSON values (see
 * mask.h). */
#include "exec/mask.h"

#include <openssl/evp.h>
#include <string.h>

/* Encodings */

static void add_base64(struct mask_set *set, const unsigned char *value, size_t len)
{
    if (len > (size_t)INT32_MAX / 2)
        return;
    unsigned char *b64 = xmalloc(4 * ((len + 2) / 3) + 1);
    size_t n = (size_t)EVP_EncodeBlock(b64, value, (int)len);
    size_t unpadded = n;
    while (unpadded > 0 && b64[unpadded - 1] == '=')
        unpadded--;
    mask_set_add(set, b64, n);
    mask_set_add(set, b64, unpadded);
    for (size_t i = 0; i < n; i++)
        b64[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
    mask_set_add(set, b64, n);
    mask_set_add(set, b64, unpadded);
    secure_zero(b64, n);
    free(b64);
}

static void add_hex(struct mask_set *set, const unsigned char *value, size_t len)
{
    static const char lower[] = "0123456789abcdef", upper[] = "0123456789ABCDEF";
    char *hex = xmalloc(2 * len + 1);
    for (int pass = 0; pass < 2; pass++) {
        const char *digits = pass ? upper : lower;
        for (size_t i = 0; i < len; i++) {
            hex[2 * i] = digits[value[i] >> 4];
            hex[2 * i + 1] = digits[value[i] & 15];
        }
        mask_set_add(set, hex, 2 * len);
    }
    secure_zero(hex, 2 * len);
    free(hex);
}

/* Percent-encoding: RFC 3986's unreserved characters stay, and so do those
 * of keep; a space is '+' when plus (HTML forms). */
static void add_percent(struct mask_set *set, const unsigned char *value, size_t len,
                        const char *keep, bool plus, bool lower)
{
    static const char unreserved[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                     "0123456789-._~";
    const char *digits = lower ? "0123456789abcdef" : "0123456789ABCDEF";
    char *out = xmalloc(3 * len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = value[i];
        if (c && (strchr(unreserved, c) || strchr(keep, c))) {
            out[n++] = (char)c;
        } else if (c == ' ' && plus) {
            out[n++] = '+';
        } else {
            out[n++] = '%';
            out[n++] = digits[c >> 4];
            out[n++] = digits[c & 15];
        }
    }
    mask_set_add(set, out, n);
    secure_zero(out, n);
    free(out);
}

/* \uXXXX escapes with lower-case digits, as Python and JavaScript write them
 * (jansson writes upper case). */
static void lower_unicode_escapes(char *text)
{
    for (char *p = text; (p = strstr(p, "\\u")) != NULL; p += 2) {
        for (int i = 2; i < 6 && p[i]; i++)
            p[i] = (char)(p[i] >= 'A' && p[i] <= 'F' ? p[i] - 'A' + 'a' : p[i]);
    }
}

/* The text between the quotes of the value as a JSON string: as is, and
 * ASCII-only in either case of hex digit. */
static void add_json_escaped(struct mask_set *set, const char *value, size_t len)
{
    json_t *s = json_stringn(value, len);
    for (int pass = 0; s && pass < 3; pass++) {
        char *text = json_dumps(s, JSON_ENCODE_ANY | (pass ? JSON_ENSURE_ASCII : 0));
        size_t n = text ? strlen(text) : 0;
        if (pass == 2 && text)
            lower_unicode_escapes(text);
        if (n >= 2)
            mask_set_add(set, text + 1, n - 2);
        if (text) {
            secure_zero(text, n);
            free(text);
        }
    }
    json_decref(s);
}

/* Each line of a value of several lines, so that a key or certificate
 * printed with other line endings is masked line by line. */
static void add_lines(struct mask_set *set, const char *value, size_t len)
{
    const char *end = value + len, *p = value;
    if (!memchr(value, '\n', len))
        return;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t line = (size_t)((nl ? nl : end) - p);
        size_t trimmed = line > 0 && p[line - 1] == '\r' ? line - 1 : line;
        mask_set_add(set, p, trimmed);
        p += line + 1;
    }
}

void mask_set_add_secret(struct mask_set *set, const char *value, size_t len)
{
    const unsigned char *u = (const unsigned char *)value;
    if (len < MASK_MIN_LEN)
        return;
    mask_set_add(set, value, len);
    add_base64(set, u, len);
    add_hex(set, u, len);
    add_percent(set, u, len, "", false, false); /* curl, quote(safe='') */
    add_percent(set, u, len, "", false, true);
    add_percent(set, u, len, "/", false, false);     /* quote() */
    add_percent(set, u, len, "", true, false);       /* quote_plus() */
    add_percent(set, u, len, "!'()*", false, false); /* encodeURIComponent */
    add_json_escaped(set, value, len);
    add_lines(set, value, len);
}

void mask_set_add_json(struct mask_set *set, const json_t *value)
{
    if (json_is_string(value)) {
        mask_set_add_secret(set, json_string_value(value), json_string_length(value));
        return;
    }
    if (!json_is_number(value) && !json_is_array(value) && !json_is_object(value))
        return;
    char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text) {
        mask_set_add_secret(set, text, strlen(text));
        secure_zero(text, strlen(text));
        free(text);
    }
    size_t i;
    const char *key;
    json_t *item;
    json_array_foreach((json_t *)value, i, item)
    {
        mask_set_add_json(set, item);
    }
    json_object_foreach((json_t *)value, key, item)
    {
        mask_set_add_json(set, item);
    }
}

/* JSON values */

/* The masked copy of text, or NULL when nothing in it is secret. */
static char *masked_text(const struct mask_set *set, const char *text, size_t len, size_t *out_len)
{
    struct strbuf b;
    strbuf_init(&b);
    mask_buffer(set, text, len, &b);
    if (b.len == len && memcmp(b.data ? b.data : "", text, len) == 0) {
        strbuf_free(&b);
        return NULL;
    }
    return strbuf_detach(&b, out_len);
}

static bool mask_object(const struct mask_set *set, json_t *obj)
{
    bool changed = false;
    const char *key;
    json_t *item, *renamed = json_object();
    void *tmp;
    json_object_foreach_safe(obj, tmp, key, item)
    {
        changed = mask_json(set, item) || changed;
        size_t len;
        char *masked = masked_text(set, key, strlen(key), &len);
        if (!masked)
            continue;
        json_object_setn(renamed, masked, len, item);
        json_object_del(obj, key);
        free(masked);
        changed = true;
    }
    json_object_update(obj, renamed);
    json_decref(renamed);
    return changed;
}

bool mask_json(const struct mask_set *set, json_t *value)
{
    if (!set || mask_set_count(set) == 0 || !value)
        return false;
    if (json_is_string(value)) {
        size_t len;
        char *masked = masked_text(set, json_string_value(value), json_string_length(value), &len);
        if (masked)
            json_string_setn(value, masked, len);
        free(masked);
        return masked != NULL;
    }
    if (json_is_object(value))
        return mask_object(set, value);
    bool changed = false;
    size_t i;
    json_t *item;
    json_array_foreach(value, i, item)
    {
        changed = mask_json(set, item) || changed;
    }
    return changed;
}
