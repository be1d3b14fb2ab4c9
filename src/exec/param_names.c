/* How parameter names become PARAM_ variables and dotenv keys, and the check
 * that no two parameters meet under one mapped name (see params.h). */
#include "exec/params.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* One '_' stands for a whole multi-byte character, not for each byte. */
static bool is_utf8_continuation(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

/* Keys become part of a line that sh or a dotenv reader splits, so each
 * character but letters, digits, '_', '-' and '.' becomes '_'. */
void params_dotenv_key(struct strbuf *out, const char *key)
{
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '.';
        if (!is_utf8_continuation(*p))
            strbuf_putc(out, ok ? (char)*p : '_');
    }
}

/* PARAM_ + the name in upper case, anything outside [A-Z0-9_] made '_'. */
void params_env_name(struct strbuf *out, const char *key)
{
    strbuf_puts(out, "PARAM_");
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        char c = (*p >= 'a' && *p <= 'z') ? (char)(*p - 'a' + 'A') : (char)*p;
        bool ok = (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        if (!is_utf8_continuation(*p))
            strbuf_putc(out, ok ? c : '_');
    }
}

/* Name collisions */

/* A name is "given" when params holds it; declared names not given still
 * take part, since the action may read their variable. */
struct mapped_names {
    json_t *buckets; /* mapped name -> [original names] */
};

static void mapped_add(struct mapped_names *m, const char *mapped, const char *name)
{
    json_t *bucket = json_object_get(m->buckets, mapped);
    if (!bucket) {
        bucket = json_array();
        json_object_set_new(m->buckets, mapped, bucket);
    }
    json_array_append_new(bucket, json_string(name));
}

/* Two names of a bucket that cannot both stand: both given, or one not
 * declared (and so given) beside any other. Two declared names of which at
 * most one is given do not meet in what the action gets. */
static bool bucket_conflict(const json_t *bucket, const json_t *params, const json_t *props,
                            const char **a, const char **b)
{
    const char *given = NULL, *undeclared = NULL, *other = NULL;
    size_t i;
    const json_t *n;
    json_array_foreach(bucket, i, n)
    {
        const char *name = json_string_value(n);
        bool is_given = json_object_get(params, name) != NULL;
        if (is_given && given) {
            *a = given, *b = name;
            return true;
        }
        if (is_given)
            given = name;
        if (!json_object_get(props, name) && !undeclared)
            undeclared = name;
        else if (!other)
            other = name;
    }
    if (!undeclared || !other)
        return false;
    *a = other, *b = undeclared;
    return true;
}

static int env_name_conflicts(const json_t *params, const json_t *props, char *err, size_t errlen)
{
    struct mapped_names m = {json_object()};
    struct strbuf mapped;
    strbuf_init(&mapped);
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)props, key, v)
    {
        strbuf_reset(&mapped);
        params_env_name(&mapped, key);
        mapped_add(&m, mapped.data, key);
    }
    json_object_foreach((json_t *)params, key, v)
    {
        if (json_object_get(props, key))
            continue;
        strbuf_reset(&mapped);
        params_env_name(&mapped, key);
        mapped_add(&m, mapped.data, key);
    }
    int rc = 0;
    const char *a, *b;
    json_object_foreach(m.buckets, key, v)
    {
        if (json_array_size(v) > 1 && bucket_conflict(v, params, props, &a, &b)) {
            rc = set_error(err, errlen, EINVAL,
                           "parameters '%s' and '%s' map to the same name %s; rename or leave "
                           "out one of them",
                           a, b, key);
            break;
        }
    }
    strbuf_free(&mapped);
    json_decref(m.buckets);
    return rc;
}

/* Every dotenv line's key, as dotenv_value flattens the document: path is
 * the dotted path of original names, mapped the key written for it. */
static int dotenv_walk(const char *path, const json_t *v, json_t *seen, char *err, size_t errlen)
{
    if (json_is_object(v) && json_object_size(v) > 0) {
        const char *sub;
        const json_t *item;
        json_object_foreach((json_t *)v, sub, item)
        {
            char *joined = xasprintf("%s.%s", path, sub);
            int rc = dotenv_walk(joined, item, seen, err, errlen);
            free(joined);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    struct strbuf mapped;
    strbuf_init(&mapped);
    strbuf_append(&mapped, "", 0);
    params_dotenv_key(&mapped, path);
    const json_t *first = json_object_get(seen, mapped.data);
    int rc = 0;
    if (first)
        rc = set_error(err, errlen, EINVAL,
                       "parameters '%s' and '%s' map to the same dotenv key %s; rename or leave "
                       "out one of them",
                       json_string_value(first), path, mapped.data);
    else
        json_object_set_new(seen, mapped.data, json_string(path));
    strbuf_free(&mapped);
    return rc;
}

int params_check_names(const json_t *params, const json_t *schema, enum param_format format,
                       char *err, size_t errlen)
{
    const json_t *props = json_object_get(schema, "properties");
    int rc = env_name_conflicts(params, props, err, errlen);
    if (rc < 0 || format != PARAM_FORMAT_DOTENV)
        return rc;
    json_t *seen = json_object();
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)params, key, v)
    {
        if ((rc = dotenv_walk(key, v, seen, err, errlen)) < 0)
            break;
    }
    json_decref(seen);
    return rc;
}
