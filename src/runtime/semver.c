/* Semantic versions and requirements as Rust's semver crate reads them (see
 * semver.h). */
#include "runtime/semver.h"

#include <errno.h>
#include <string.h>

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_ident_char(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

/* Digits with no leading zero (but "0" itself), within 64 bits. */
static int parse_number(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (!is_digit(*s) || (s[0] == '0' && is_digit(s[1])))
        return -EINVAL;
    for (; is_digit(*s); s++) {
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *p = s;
    *out = v;
    return 0;
}

/* Dot-separated, non-empty identifiers of letters, digits and '-'; in a
 * pre-release a numeric one has no leading zero. Copied to out when given. */
static int parse_idents(const char **p, bool pre, char *out, size_t outlen)
{
    const char *s = *p;
    for (;;) {
        const char *id = s;
        bool numeric = true;
        for (; is_ident_char(*s); s++)
            numeric = numeric && is_digit(*s);
        if (s == id || (pre && numeric && id[0] == '0' && s - id > 1))
            return -EINVAL;
        if (*s != '.')
            break;
        s++;
    }
    size_t len = (size_t)(s - *p);
    if (out) {
        if (len >= outlen)
            return -EINVAL;
        memcpy(out, *p, len);
        out[len] = '\0';
    }
    *p = s;
    return 0;
}

/* "-PRE" then "+BUILD", each optional. */
static int parse_suffix(const char **p, char *pre, size_t prelen)
{
    if (**p == '-') {
        (*p)++;
        if (parse_idents(p, true, pre, prelen) < 0)
            return -EINVAL;
    }
    if (**p == '+') {
        (*p)++;
        if (parse_idents(p, false, NULL, 0) < 0)
            return -EINVAL;
    }
    return 0;
}

int semver_parse(const char *text, struct semver *out)
{
    const char *p = text;
    memset(out, 0, sizeof(*out));
    if (parse_number(&p, &out->major) < 0 || *p++ != '.' || parse_number(&p, &out->minor) < 0 ||
        *p++ != '.' || parse_number(&p, &out->patch) < 0 ||
        parse_suffix(&p, out->pre, sizeof(out->pre)) < 0)
        return -EINVAL;
    return *p ? -EINVAL : 0;
}

static bool all_digits(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!is_digit(s[i]))
            return false;
    return true;
}

static int sign(int v)
{
    return (v > 0) - (v < 0);
}

/* One identifier against another: numbers by value (they have no leading
 * zeros, so by length first), numbers before words, words in ASCII order. */
static int ident_compare(const char *a, size_t la, const char *b, size_t lb)
{
    bool na = all_digits(a, la), nb = all_digits(b, lb);
    if (na != nb)
        return na ? -1 : 1;
    if (na && la != lb)
        return la < lb ? -1 : 1;
    int c = memcmp(a, b, la < lb ? la : lb);
    return c ? sign(c) : (la > lb) - (la < lb);
}

/* A release ("") sorts after every pre-release; a longer tag after its prefix. */
static int pre_compare(const char *a, const char *b)
{
    if (!*a || !*b)
        return (*a == '\0') - (*b == '\0');
    while (*a && *b) {
        size_t la = strcspn(a, "."), lb = strcspn(b, ".");
        int c = ident_compare(a, la, b, lb);
        if (c)
            return c;
        a += la + (a[la] == '.');
        b += lb + (b[lb] == '.');
    }
    return (*a != '\0') - (*b != '\0');
}

static int number_compare(uint64_t a, uint64_t b)
{
    return (a > b) - (a < b);
}

int semver_compare(const struct semver *a, const struct semver *b)
{
    int c = number_compare(a->major, b->major);
    if (!c)
        c = number_compare(a->minor, b->minor);
    if (!c)
        c = number_compare(a->patch, b->patch);
    return c ? c : pre_compare(a->pre, b->pre);
}

/* Requirements */

static bool take_wildcard(const char **p)
{
    if (**p != '*' && **p != 'x' && **p != 'X')
        return false;
    (*p)++;
    return true;
}

static void skip_spaces(const char **p)
{
    while (**p == ' ')
        (*p)++;
}

/* The operator, if any: returns false (and caret, the crate's default) when none. */
static bool parse_op(const char **p, enum semver_op *op)
{
    static const struct {
        const char *text;
        enum semver_op op;
    } ops[] = {{">=", SEMVER_GREATER_EQ}, {"<=", SEMVER_LESS_EQ}, {"=", SEMVER_EXACT},
               {">", SEMVER_GREATER},     {"<", SEMVER_LESS},     {"~", SEMVER_TILDE},
               {"^", SEMVER_CARET}};
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        size_t len = strlen(ops[i].text);
        if (strncmp(*p, ops[i].text, len) == 0) {
            *p += len;
            *op = ops[i].op;
            return true;
        }
    }
    *op = SEMVER_CARET;
    return false;
}

/* A minor or patch part: a number, or a wildcard that leaves it out (and
 * makes an operator-less comparator a wildcard one). */
static int parse_part(const char **p, bool default_op, bool *wildcard, uint64_t *value, bool *has,
                      enum semver_op *op)
{
    if (take_wildcard(p)) {
        *wildcard = true;
        if (default_op)
            *op = SEMVER_WILDCARD;
        return 0;
    }
    if (*wildcard || parse_number(p, value) < 0)
        return -EINVAL;
    *has = true;
    return 0;
}

static int parse_comparator(const char **p, struct semver_comparator *c)
{
    const char *s = *p;
    memset(c, 0, sizeof(*c));
    bool default_op = !parse_op(&s, &c->op);
    bool wildcard = false;
    skip_spaces(&s);
    if (parse_number(&s, &c->major) < 0)
        return -EINVAL;
    if (*s == '.') {
        s++;
        if (parse_part(&s, default_op, &wildcard, &c->minor, &c->has_minor, &c->op) < 0)
            return -EINVAL;
    }
    if (*s == '.') {
        s++;
        if (parse_part(&s, default_op, &wildcard, &c->patch, &c->has_patch, &c->op) < 0)
            return -EINVAL;
    }
    if (c->has_patch && parse_suffix(&s, c->pre, sizeof(c->pre)) < 0)
        return -EINVAL;
    skip_spaces(&s);
    *p = s;
    return 0;
}

int semver_req_parse(const char *text, struct semver_req *out)
{
    const char *s = text;
    out->count = 0;
    skip_spaces(&s);
    const char *w = s;
    if (take_wildcard(&w)) {
        skip_spaces(&w);
        return *w ? -EINVAL : 0;
    }
    for (;;) {
        if (out->count == SEMVER_REQ_MAX || parse_comparator(&s, &out->cmp[out->count++]) < 0)
            return -EINVAL;
        if (!*s)
            return 0;
        if (*s != ',')
            return -EINVAL;
        s++;
        skip_spaces(&s);
    }
}

/* Matching, comparator by comparator */

static bool matches_exact(const struct semver_comparator *c, const struct semver *v)
{
    return v->major == c->major && (!c->has_minor || v->minor == c->minor) &&
           (!c->has_patch || v->patch == c->patch) && strcmp(v->pre, c->pre) == 0;
}

/* The sign of v against c over the parts c gives; a part c leaves out ends
 * the comparison as equal-but-not-ordered (0 with *partial set). */
static int partial_compare(const struct semver_comparator *c, const struct semver *v, bool *partial)
{
    int r = number_compare(v->major, c->major);
    *partial = false;
    if (r)
        return r;
    if (!c->has_minor || (r = number_compare(v->minor, c->minor)) != 0) {
        *partial = !c->has_minor;
        return r;
    }
    if (!c->has_patch || (r = number_compare(v->patch, c->patch)) != 0) {
        *partial = !c->has_patch;
        return r;
    }
    return pre_compare(v->pre, c->pre);
}

static bool matches_greater(const struct semver_comparator *c, const struct semver *v)
{
    bool partial;
    int r = partial_compare(c, v, &partial);
    return !partial && r > 0;
}

static bool matches_less(const struct semver_comparator *c, const struct semver *v)
{
    bool partial;
    int r = partial_compare(c, v, &partial);
    return !partial && r < 0;
}

static bool matches_tilde(const struct semver_comparator *c, const struct semver *v)
{
    if (v->major != c->major || (c->has_minor && v->minor != c->minor))
        return false;
    if (c->has_patch && v->patch != c->patch)
        return v->patch > c->patch;
    return pre_compare(v->pre, c->pre) >= 0;
}

static bool matches_caret(const struct semver_comparator *c, const struct semver *v)
{
    if (v->major != c->major)
        return false;
    if (!c->has_minor)
        return true;
    if (!c->has_patch)
        return c->major > 0 ? v->minor >= c->minor : v->minor == c->minor;
    if (c->major > 0) {
        if (v->minor != c->minor)
            return v->minor > c->minor;
        if (v->patch != c->patch)
            return v->patch > c->patch;
    } else if (c->minor > 0) {
        if (v->minor != c->minor)
            return false;
        if (v->patch != c->patch)
            return v->patch > c->patch;
    } else if (v->minor != c->minor || v->patch != c->patch) {
        return false;
    }
    return pre_compare(v->pre, c->pre) >= 0;
}

static bool comparator_matches(const struct semver_comparator *c, const struct semver *v)
{
    switch (c->op) {
    case SEMVER_GREATER:
        return matches_greater(c, v);
    case SEMVER_GREATER_EQ:
        return matches_exact(c, v) || matches_greater(c, v);
    case SEMVER_LESS:
        return matches_less(c, v);
    case SEMVER_LESS_EQ:
        return matches_exact(c, v) || matches_less(c, v);
    case SEMVER_TILDE:
        return matches_tilde(c, v);
    case SEMVER_CARET:
        return matches_caret(c, v);
    default:
        return matches_exact(c, v);
    }
}

bool semver_req_matches(const struct semver_req *req, const struct semver *v)
{
    for (size_t i = 0; i < req->count; i++)
        if (!comparator_matches(&req->cmp[i], v))
            return false;
    if (!v->pre[0])
        return true;
    for (size_t i = 0; i < req->count; i++) {
        const struct semver_comparator *c = &req->cmp[i];
        if (c->pre[0] && c->major == v->major && c->has_minor && c->minor == v->minor &&
            c->has_patch && c->patch == v->patch)
            return true;
    }
    return false;
}
