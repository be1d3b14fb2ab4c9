/* Choosing a runtime version as Attune does (see runtime_version.h). */
#include "runtime/runtime_version.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "runtime/semver.h"

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static size_t count_dots(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += s[i] == '.';
    return n;
}

/* "3" and "3.12" are padded with zeros, "3.12.1.4" is cut to three parts. */
static int version_parse_padded(const char *s, struct semver *out)
{
    size_t dots = count_dots(s, strlen(s));
    char *padded;
    if (dots < 2) {
        padded = xasprintf("%s%s", s, dots == 0 ? ".0.0" : ".0");
    } else {
        const char *end = s;
        for (int i = 0; i < 3 && end; i++)
            end = strchr(end + (i > 0), '.');
        padded = end ? xstrndup(s, (size_t)(end - s)) : xstrdup(s);
    }
    int rc = semver_parse(padded, out);
    free(padded);
    return rc;
}

/* Version strings as deployments write them: white space, a leading 'v',
 * missing parts. */
static int version_parse(const char *text, struct semver *out)
{
    size_t len = strlen(text);
    str_trim(&text, &len);
    if (len > 0 && (*text == 'v' || *text == 'V')) {
        text++;
        len--;
    }
    char *copy = xstrndup(text, len);
    int rc = semver_parse(copy, out);
    if (rc < 0)
        rc = version_parse_padded(copy, out);
    free(copy);
    return rc;
}

/* One comma-separated part in the crate's syntax: a bare version becomes a
 * tilde range ("3.12" is "~3.12", "3" is "~3.0"); after an operator a
 * partial version is padded ("<=3.12" is "<=3.12.0"). */
static void constraint_part(const char *p, size_t n, struct strbuf *out)
{
    str_trim(&p, &n);
    if (n == 0)
        return;
    if (out->len)
        strbuf_puts(out, ", ");
    if (is_digit(*p) || *p == 'v' || *p == 'V') {
        if (!is_digit(*p)) {
            p++;
            n--;
        }
        strbuf_putc(out, '~');
        strbuf_append(out, p, n);
        if (count_dots(p, n) == 0)
            strbuf_puts(out, ".0");
        return;
    }
    size_t start = 0;
    while (start < n && !is_digit(p[start]))
        start++;
    const char *op = p;
    size_t oplen = start;
    str_trim(&op, &oplen);
    strbuf_append(out, op, oplen);
    strbuf_append(out, p + start, n - start);
    size_t dots = count_dots(p + start, n - start);
    if (dots == 0 && n > start)
        strbuf_puts(out, ".0.0");
    else if (dots == 1)
        strbuf_puts(out, ".0");
}

static int constraint_parse(const char *text, struct semver_req *req)
{
    struct strbuf norm;
    strbuf_init(&norm);
    for (const char *p = text;;) {
        size_t n = strcspn(p, ",");
        constraint_part(p, n, &norm);
        if (!p[n])
            break;
        p += n + 1;
    }
    req->count = 0;
    int rc = norm.len ? semver_req_parse(norm.data, req) : 0;
    strbuf_free(&norm);
    return rc;
}

static bool blank(const char *s)
{
    size_t len = s ? strlen(s) : 0;
    str_trim(&s, &len);
    return len == 0;
}

int runtime_version_matches(const char *version, const char *constraint)
{
    struct semver v;
    struct semver_req req = {0};
    if (version_parse(version, &v) < 0 ||
        (!blank(constraint) && constraint_parse(constraint, &req) < 0))
        return -EINVAL;
    return semver_req_matches(&req, &v);
}

/* The worker has the row's version when it advertises the same string or a
 * version the row's one, read as a constraint, matches ("3.12" has 3.12.7). */
static bool row_advertised(const char *version, const json_t *advertised)
{
    size_t i;
    const json_t *item;
    if (!advertised)
        return true;
    json_array_foreach(advertised, i, item)
    {
        const char *s = json_string_value(item);
        if (s && (strcmp(s, version) == 0 || runtime_version_matches(s, version) == 1))
            return true;
    }
    return false;
}

/* The row's version string when the row may be chosen at all, else NULL. */
static const char *row_usable(const json_t *row, const json_t *advertised)
{
    const char *version = json_string_value(json_object_get(row, "version"));
    const json_t *available = json_object_get(row, "available");
    if (!version || (available && !json_is_true(available)))
        return NULL;
    return row_advertised(version, advertised) ? version : NULL;
}

static const json_t *select_default(const json_t *versions, const json_t *advertised)
{
    size_t i;
    const json_t *row;
    json_array_foreach(versions, i, row)
    {
        if (row_usable(row, advertised) && json_is_true(json_object_get(row, "is_default")))
            return row;
    }
    return NULL;
}

/* The highest usable version (req NULL: any); the first of equal ones. */
static const json_t *select_highest(const json_t *versions, const struct semver_req *req,
                                    const json_t *advertised)
{
    const json_t *best = NULL;
    struct semver best_v, v;
    size_t i;
    const json_t *row;
    json_array_foreach(versions, i, row)
    {
        const char *version = row_usable(row, advertised);
        if (!version || version_parse(version, &v) < 0 || (req && !semver_req_matches(req, &v)))
            continue;
        if (!best || semver_compare(&v, &best_v) > 0) {
            best = row;
            best_v = v;
        }
    }
    return best;
}

const json_t *runtime_version_select(const json_t *versions, const char *constraint,
                                     const json_t *advertised)
{
    if (!json_is_array(versions))
        return NULL;
    if (blank(constraint)) {
        const json_t *row = select_default(versions, advertised);
        return row ? row : select_highest(versions, NULL, advertised);
    }
    struct semver_req req;
    if (constraint_parse(constraint, &req) < 0)
        return NULL;
    return select_highest(versions, &req, advertised);
}

const json_t *runtime_version_config(const json_t *versions, const char *constraint,
                                     const json_t *advertised)
{
    const json_t *row = runtime_version_select(versions, constraint, advertised);
    const json_t *config = json_object_get(row, "execution_config");
    return json_is_object(config) && json_object_size(config) > 0 ? config : NULL;
}
