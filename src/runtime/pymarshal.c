/* Python's marshal format for JSON values (see pymarshal.h). The layout follows
 * CPython's Python/marshal.c: one type byte (bit 0x80 asks the reader to
 * remember the object for later back-references), little-endian 32-bit sizes,
 * and arbitrary-size ints as 15-bit digits. */
#include "runtime/pymarshal.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PYM_MAX_DEPTH 64
/* Values a back-reference may expand to, in all: caps a "billion laughs". */
#define PYM_MAX_VALUES 2000000

#define PYM_FLAG_REF 0x80

/* Encoding */

static void put_u32(struct strbuf *out, uint32_t v)
{
    unsigned char b[4] = {v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >> 24) & 0xff};
    strbuf_append(out, b, 4);
}

static void put_long(struct strbuf *out, int64_t v)
{
    if (v >= INT32_MIN && v <= INT32_MAX) {
        strbuf_putc(out, 'i');
        put_u32(out, (uint32_t)(int32_t)v);
        return;
    }
    /* Magnitude in 15-bit digits, least significant first; sign on the count. */
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    uint16_t digits[5];
    int n = 0;
    while (mag) {
        digits[n++] = (uint16_t)(mag & 0x7fff);
        mag >>= 15;
    }
    strbuf_putc(out, 'l');
    put_u32(out, (uint32_t)(v < 0 ? -n : n));
    for (int i = 0; i < n; i++) {
        unsigned char b[2] = {digits[i] & 0xff, digits[i] >> 8};
        strbuf_append(out, b, 2);
    }
}

static void put_str(struct strbuf *out, const char *s, size_t len)
{
    strbuf_putc(out, 'u');
    put_u32(out, (uint32_t)len);
    strbuf_append(out, s, len);
}

void pymarshal_encode(const json_t *value, struct strbuf *out)
{
    const char *key;
    json_t *item;
    size_t i;
    switch (json_typeof(value)) {
    case JSON_OBJECT:
        strbuf_putc(out, '{');
        json_object_foreach((json_t *)value, key, item)
        {
            put_str(out, key, strlen(key));
            pymarshal_encode(item, out);
        }
        strbuf_putc(out, '0');
        break;
    case JSON_ARRAY:
        strbuf_putc(out, '[');
        put_u32(out, (uint32_t)json_array_size(value));
        json_array_foreach(value, i, item) pymarshal_encode(item, out);
        break;
    case JSON_STRING:
        put_str(out, json_string_value(value), json_string_length(value));
        break;
    case JSON_INTEGER:
        put_long(out, json_integer_value(value));
        break;
    case JSON_REAL: {
        double d = json_real_value(value);
        unsigned char b[8];
        memcpy(b, &d, 8); /* x86-64 and arm64 are little-endian, as marshal is */
        strbuf_putc(out, 'g');
        strbuf_append(out, b, 8);
        break;
    }
    case JSON_TRUE:
        strbuf_putc(out, 'T');
        break;
    case JSON_FALSE:
        strbuf_putc(out, 'F');
        break;
    default:
        strbuf_putc(out, 'N');
        break;
    }
}

/* Decoding */

struct pym_reader {
    const unsigned char *p, *end;
    json_t **refs;
    size_t *ref_sizes;
    size_t n_refs, cap_refs;
    size_t values;
    char *err;
    size_t errlen;
};

static json_t *pym_fail(struct pym_reader *r, const char *what)
{
    set_error(r->err, r->errlen, EINVAL, "undecodable return value: %s", what);
    return NULL;
}

static bool get_bytes(struct pym_reader *r, size_t n, const unsigned char **out)
{
    if ((size_t)(r->end - r->p) < n)
        return false;
    *out = r->p;
    r->p += n;
    return true;
}

static bool get_u32(struct pym_reader *r, uint32_t *v)
{
    const unsigned char *b;
    if (!get_bytes(r, 4, &b))
        return false;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return true;
}

static bool count_value(struct pym_reader *r, size_t n)
{
    r->values += n;
    return r->values <= PYM_MAX_VALUES;
}

static json_t *pym_read(struct pym_reader *r, int depth, size_t *size);

static json_t *read_long(struct pym_reader *r)
{
    uint32_t raw;
    if (!get_u32(r, &raw))
        return pym_fail(r, "truncated int");
    int32_t n = (int32_t)raw;
    uint32_t count = n < 0 ? (uint32_t)(-(int64_t)n) : (uint32_t)n;
    if (count > 5)
        return pym_fail(r, "int larger than 64 bits");
    uint64_t mag = 0;
    for (uint32_t i = 0; i < count; i++) {
        const unsigned char *b;
        if (!get_bytes(r, 2, &b))
            return pym_fail(r, "truncated int");
        uint64_t digit = (uint64_t)(b[0] | b[1] << 8);
        if (digit > 0x7fff)
            return pym_fail(r, "bad int digit");
        if (i == 4 && digit > 0xf) /* 4 x 15 bits + 4 = 64 */
            return pym_fail(r, "int larger than 64 bits");
        mag |= digit << (15 * i);
    }
    if ((n >= 0 && mag > INT64_MAX) || (n < 0 && mag > (uint64_t)INT64_MAX + 1))
        return pym_fail(r, "int larger than 64 bits");
    return json_integer(n < 0 ? (json_int_t)(0 - mag) : (json_int_t)mag);
}

static json_t *read_float(struct pym_reader *r)
{
    const unsigned char *b;
    double d;
    if (!get_bytes(r, 8, &b))
        return pym_fail(r, "truncated float");
    memcpy(&d, b, 8);
    if (!isfinite(d))
        return pym_fail(r, "NaN or infinity is not JSON");
    return json_real(d);
}

static json_t *read_text(struct pym_reader *r, size_t len)
{
    const unsigned char *b;
    if (!get_bytes(r, len, &b))
        return pym_fail(r, "truncated string");
    if (memchr(b, '\0', len))
        return pym_fail(r, "string holds a NUL character, which JSON results cannot store");
    json_t *s = json_stringn((const char *)b, len);
    return s ? s : pym_fail(r, "string is not UTF-8");
}

/* Reads n values into an array (tuples, lists, sets). */
static json_t *read_sequence(struct pym_reader *r, size_t n, int depth, size_t *size)
{
    if (n > (size_t)(r->end - r->p))
        return pym_fail(r, "truncated sequence");
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        size_t item_size = 0;
        json_t *v = pym_read(r, depth + 1, &item_size);
        if (!v) {
            json_decref(arr);
            return NULL;
        }
        *size += item_size;
        json_array_append_new(arr, v);
    }
    return arr;
}

/* A dict key as JSON has it: strings as they are, other scalars as text. */
static char *key_text(json_t *key)
{
    if (json_is_string(key))
        return xstrdup(json_string_value(key));
    if (json_is_object(key) || json_is_array(key))
        return NULL;
    return json_dumps(key, JSON_ENCODE_ANY);
}

static json_t *read_dict(struct pym_reader *r, int depth, size_t *size)
{
    json_t *obj = json_object();
    for (;;) {
        if (r->p < r->end && *r->p == '0') {
            r->p++;
            return obj;
        }
        size_t ks = 0, vs = 0;
        json_t *k = pym_read(r, depth + 1, &ks);
        json_t *v = k ? pym_read(r, depth + 1, &vs) : NULL;
        char *text = v ? key_text(k) : NULL;
        json_decref(k);
        if (!text) {
            json_decref(v);
            json_decref(obj);
            return v ? pym_fail(r, "dict key is not a string or number") : NULL;
        }
        json_object_set_new(obj, text, v);
        *size += vs;
        free(text);
    }
}

static json_t *read_container(struct pym_reader *r, unsigned char type, int depth, size_t *size)
{
    uint32_t n = 0;
    const unsigned char *b;
    switch (type) {
    case ')':
        if (!get_bytes(r, 1, &b))
            return pym_fail(r, "truncated tuple");
        return read_sequence(r, b[0], depth, size);
    case '(':
    case '[':
    case '<':
    case '>':
        if (!get_u32(r, &n))
            return pym_fail(r, "truncated sequence");
        return read_sequence(r, n, depth, size);
    default:
        return read_dict(r, depth, size);
    }
}

static json_t *read_scalar(struct pym_reader *r, unsigned char type)
{
    uint32_t n = 0;
    const unsigned char *b;
    switch (type) {
    case 'N':
        return json_null();
    case 'T':
        return json_true();
    case 'F':
        return json_false();
    case 'i':
        return get_u32(r, &n) ? json_integer((int32_t)n) : pym_fail(r, "truncated int");
    case 'l':
        return read_long(r);
    case 'g':
        return read_float(r);
    case 'z':
    case 'Z':
        return get_bytes(r, 1, &b) ? read_text(r, b[0]) : pym_fail(r, "truncated string");
    case 'u':
    case 't':
    case 'a':
    case 'A':
        return get_u32(r, &n) ? read_text(r, n) : pym_fail(r, "truncated string");
    default:
        return pym_fail(r, "a value that is not JSON (bytes, code or an unknown type)");
    }
}

static json_t *read_ref(struct pym_reader *r, size_t *size)
{
    uint32_t idx;
    if (!get_u32(r, &idx) || idx >= r->n_refs || !r->refs[idx])
        return pym_fail(r, "bad back-reference");
    *size = r->ref_sizes[idx];
    if (!count_value(r, *size))
        return pym_fail(r, "too many values");
    return json_incref(r->refs[idx]);
}

static size_t reserve_ref(struct pym_reader *r)
{
    if (r->n_refs == r->cap_refs) {
        r->cap_refs = r->cap_refs ? r->cap_refs * 2 : 16;
        r->refs = xrealloc(r->refs, r->cap_refs * sizeof(*r->refs));
        r->ref_sizes = xrealloc(r->ref_sizes, r->cap_refs * sizeof(*r->ref_sizes));
    }
    r->refs[r->n_refs] = NULL;
    r->ref_sizes[r->n_refs] = 0;
    return r->n_refs++;
}

static json_t *pym_read(struct pym_reader *r, int depth, size_t *size)
{
    const unsigned char *b;
    if (depth > PYM_MAX_DEPTH)
        return pym_fail(r, "nested too deeply");
    if (!get_bytes(r, 1, &b))
        return pym_fail(r, "truncated");
    unsigned char type = b[0] & ~PYM_FLAG_REF;
    if (type == 'r')
        return read_ref(r, size);
    size_t slot = (b[0] & PYM_FLAG_REF) ? reserve_ref(r) : SIZE_MAX;
    *size = 1;
    if (!count_value(r, 1))
        return pym_fail(r, "too many values");
    json_t *v = strchr(")([<>{", type) && type ? read_container(r, type, depth, size)
                                               : read_scalar(r, type);
    if (v && slot != SIZE_MAX) {
        r->refs[slot] = json_incref(v); /* dict keys, for one, are dropped after use */
        r->ref_sizes[slot] = *size;
    }
    return v;
}

json_t *pymarshal_decode(const void *data, size_t len, char *err, size_t errlen)
{
    struct pym_reader r = {
        .p = data, .end = (const unsigned char *)data + len, .err = err, .errlen = errlen};
    size_t size = 0;
    json_t *v = pym_read(&r, 0, &size);
    if (v && r.p != r.end) {
        json_decref(v);
        v = pym_fail(&r, "trailing bytes");
    }
    for (size_t i = 0; i < r.n_refs; i++)
        json_decref(r.refs[i]);
    free(r.refs);
    free(r.ref_sizes);
    return v;
}
