/* The secret matcher: strings indexed by a hash of their first four bytes
 * (and by their first byte, for the last bytes of a chunk), matched longest
 * first, over a stream that holds back a possible beginning (see mask.h). */
#include "exec/mask.h"

#include <stdlib.h>
#include <string.h>

struct mask_pattern {
    unsigned char *bytes;
    size_t len;
};

struct mask_set {
    struct mask_pattern *pats;
    size_t count, cap, max_len;
    bool built;
    unsigned bits;        /* the hash table has 1 << bits buckets */
    uint32_t *hash_start; /* bucket b is hash_items[hash_start[b] .. hash_start[b + 1]) */
    uint32_t *hash_items; /* pattern indices, longest first in each bucket */
    uint32_t byte_start[257];
    uint32_t *byte_items; /* the same, by first byte */
};

struct mask_stream {
    const struct mask_set *set;
    unsigned char *buf; /* held-back bytes, then the chunk being scanned */
    size_t len, cap;
    uint64_t out_pos; /* bytes emitted so far */
    struct mask_match *matches;
    size_t nmatches, match_max;
    bool matches_lost;
};

/* The set */

struct mask_set *mask_set_new(void)
{
    return xcalloc(1, sizeof(struct mask_set));
}

static bool all_stars(const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != '*')
            return false;
    return true;
}

void mask_set_add(struct mask_set *set, const void *data, size_t len)
{
    if (set->built || len < MASK_MIN_LEN || all_stars(data, len))
        return;
    if (set->count == set->cap) {
        set->cap = set->cap ? set->cap * 2 : 16;
        set->pats = xrealloc(set->pats, set->cap * sizeof(*set->pats));
    }
    struct mask_pattern *p = &set->pats[set->count++];
    p->bytes = xmalloc(len);
    memcpy(p->bytes, data, len);
    p->len = len;
}

/* Longest first, then bytewise, so that duplicates sit side by side. */
static int pattern_order(const void *a, const void *b)
{
    const struct mask_pattern *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return memcmp(x->bytes, y->bytes, x->len);
}

static void drop_duplicates(struct mask_set *set)
{
    size_t kept = 0;
    for (size_t i = 0; i < set->count; i++) {
        if (kept > 0 && pattern_order(&set->pats[kept - 1], &set->pats[i]) == 0) {
            secure_zero(set->pats[i].bytes, set->pats[i].len);
            free(set->pats[i].bytes);
            continue;
        }
        set->pats[kept++] = set->pats[i];
    }
    set->count = kept;
}

static inline uint32_t hash4(const unsigned char *p, unsigned bits)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return (v * 2654435761u) >> (32 - bits);
}

/* Fills a bucket index (start has nbuckets + 1 entries) in pattern order. */
static uint32_t *index_by(const struct mask_set *set, uint32_t *start, size_t nbuckets,
                          uint32_t (*key)(const struct mask_set *, size_t))
{
    uint32_t *items = xmalloc((set->count ? set->count : 1) * sizeof(*items));
    memset(start, 0, (nbuckets + 1) * sizeof(*start));
    for (size_t i = 0; i < set->count; i++)
        start[key(set, i) + 1]++;
    for (size_t b = 0; b < nbuckets; b++)
        start[b + 1] += start[b];
    uint32_t *fill = xmalloc((nbuckets + 1) * sizeof(*fill));
    memcpy(fill, start, (nbuckets + 1) * sizeof(*fill));
    for (size_t i = 0; i < set->count; i++)
        items[fill[key(set, i)]++] = (uint32_t)i;
    free(fill);
    return items;
}

static uint32_t hash_key(const struct mask_set *set, size_t i)
{
    return hash4(set->pats[i].bytes, set->bits);
}

static uint32_t byte_key(const struct mask_set *set, size_t i)
{
    return set->pats[i].bytes[0];
}

void mask_set_build(struct mask_set *set)
{
    if (set->built)
        return;
    if (set->count > 1)
        qsort(set->pats, set->count, sizeof(*set->pats), pattern_order);
    drop_duplicates(set);
    set->max_len = set->count ? set->pats[0].len : 0;
    /* About eight buckets per string keeps most positions of ordinary
     * output on an empty bucket. */
    set->bits = 8;
    while (set->bits < 16 && ((size_t)1 << set->bits) < set->count * 8)
        set->bits++;
    size_t nbuckets = (size_t)1 << set->bits;
    set->hash_start = xmalloc((nbuckets + 1) * sizeof(*set->hash_start));
    set->hash_items = index_by(set, set->hash_start, nbuckets, hash_key);
    set->byte_items = index_by(set, set->byte_start, 256, byte_key);
    set->built = true;
}

size_t mask_set_count(const struct mask_set *set)
{
    return set ? set->count : 0;
}

size_t mask_set_max_len(const struct mask_set *set)
{
    return set ? set->max_len : 0;
}

void mask_set_free(struct mask_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->count; i++) {
        secure_zero(set->pats[i].bytes, set->pats[i].len);
        free(set->pats[i].bytes);
    }
    free(set->pats);
    free(set->hash_start);
    free(set->hash_items);
    free(set->byte_items);
    free(set);
}

/* Matching at one position */

enum scan { SCAN_NONE, SCAN_HOLD, SCAN_MATCH };

/* At p with rem bytes known (more may follow unless final): the longest
 * string matching there, or SCAN_HOLD when a longer one still could. */
static enum scan scan_at(const struct mask_set *set, const unsigned char *p, size_t rem, bool final,
                         uint32_t *found)
{
    const uint32_t *items;
    uint32_t n;
    if (rem >= 4) {
        uint32_t h = hash4(p, set->bits);
        items = set->hash_items + set->hash_start[h];
        n = set->hash_start[h + 1] - set->hash_start[h];
    } else {
        if (final)
            return SCAN_NONE;
        items = set->byte_items + set->byte_start[p[0]];
        n = set->byte_start[p[0] + 1] - set->byte_start[p[0]];
    }
    for (uint32_t i = 0; i < n; i++) {
        const struct mask_pattern *pat = &set->pats[items[i]];
        if (pat->len > rem) {
            if (!final && memcmp(pat->bytes, p, rem) == 0)
                return SCAN_HOLD;
        } else if (memcmp(pat->bytes, p, pat->len) == 0) {
            *found = items[i];
            return SCAN_MATCH;
        }
    }
    return SCAN_NONE;
}

/* The stream */

struct mask_stream *mask_stream_new(const struct mask_set *set)
{
    struct mask_stream *s = xcalloc(1, sizeof(*s));
    s->set = set;
    return s;
}

void mask_stream_keep_matches(struct mask_stream *s, size_t max)
{
    s->match_max = max;
}

static void stream_emit(struct mask_stream *s, const void *data, size_t len, mask_emit_fn emit,
                        void *userdata)
{
    if (len == 0)
        return;
    emit(userdata, data, len);
    s->out_pos += len;
}

static void stream_note(struct mask_stream *s, uint32_t pattern)
{
    if (s->nmatches == s->match_max) {
        s->matches_lost = s->matches_lost || s->match_max > 0;
        return;
    }
    if (s->nmatches == 0)
        s->matches = xmalloc(s->match_max * sizeof(*s->matches));
    s->matches[s->nmatches++] = (struct mask_match){.offset = s->out_pos, .pattern = pattern};
}

/* Scans the buffer, emits what is decided and keeps the rest at its start. */
static void stream_scan(struct mask_stream *s, bool final, mask_emit_fn emit, void *userdata)
{
    const struct mask_set *set = s->set;
    const unsigned char *b = s->buf;
    size_t n = s->len, p = 0, run = 0;
    while (p < n) {
        size_t rem = n - p;
        if (rem >= 4) {
            uint32_t h = hash4(b + p, set->bits);
            if (set->hash_start[h] == set->hash_start[h + 1]) {
                p++;
                continue;
            }
        }
        uint32_t found = 0;
        enum scan r = scan_at(set, b + p, rem, final, &found);
        if (r == SCAN_NONE) {
            p++;
            continue;
        }
        stream_emit(s, b + run, p - run, emit, userdata);
        run = p;
        if (r == SCAN_HOLD)
            break;
        stream_note(s, found);
        stream_emit(s, MASK_TEXT, MASK_TEXT_LEN, emit, userdata);
        p += set->pats[found].len;
        run = p;
    }
    if (p >= n)
        stream_emit(s, b + run, n - run, emit, userdata);
    size_t held = p >= n ? 0 : n - run;
    memmove(s->buf, s->buf + (n - held), held);
    secure_zero(s->buf + held, n - held);
    s->len = held;
}

/* Room for len more bytes; the old buffer is wiped, it may hold a secret. */
static void stream_reserve(struct mask_stream *s, size_t len)
{
    if (s->len + len <= s->cap)
        return;
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < s->len + len)
        cap *= 2;
    unsigned char *buf = xmalloc(cap);
    if (s->len)
        memcpy(buf, s->buf, s->len);
    if (s->buf) {
        secure_zero(s->buf, s->cap);
        free(s->buf);
    }
    s->buf = buf;
    s->cap = cap;
}

void mask_stream_write(struct mask_stream *s, const void *data, size_t len, mask_emit_fn emit,
                       void *userdata)
{
    if (len == 0)
        return;
    if (s->set->count == 0) {
        stream_emit(s, data, len, emit, userdata);
        return;
    }
    stream_reserve(s, len);
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    stream_scan(s, false, emit, userdata);
}

void mask_stream_flush(struct mask_stream *s, mask_emit_fn emit, void *userdata)
{
    if (s->len > 0)
        stream_scan(s, true, emit, userdata);
}

size_t mask_stream_held(const struct mask_stream *s)
{
    return s->len;
}

bool mask_stream_matches(const struct mask_stream *s, const struct mask_match **matches,
                         size_t *count)
{
    *matches = s->matches;
    *count = s->nmatches;
    return !s->matches_lost;
}

void mask_stream_free(struct mask_stream *s)
{
    if (!s)
        return;
    if (s->buf) {
        secure_zero(s->buf, s->cap);
        free(s->buf);
    }
    free(s->matches);
    free(s);
}

/* Whole buffers */

static void append_to(void *userdata, const void *data, size_t len)
{
    strbuf_append(userdata, data, len);
}

void mask_buffer(const struct mask_set *set, const void *text, size_t len, struct strbuf *out)
{
    struct mask_stream s = {.set = set};
    mask_stream_write(&s, text, len, append_to, out);
    mask_stream_flush(&s, append_to, out);
    if (s.buf) {
        secure_zero(s.buf, s.cap);
        free(s.buf);
    }
}

void mask_unmask(const struct mask_set *set, const char *masked, size_t len,
                 const struct mask_match *matches, size_t count, struct strbuf *out)
{
    size_t pos = 0;
    for (size_t i = 0; i < count; i++) {
        uint64_t at = matches[i].offset;
        if (at < pos || at > len || len - at < MASK_TEXT_LEN ||
            memcmp(masked + at, MASK_TEXT, MASK_TEXT_LEN) != 0 || matches[i].pattern >= set->count)
            continue;
        const struct mask_pattern *pat = &set->pats[matches[i].pattern];
        strbuf_append(out, masked + pos, (size_t)at - pos);
        strbuf_append(out, pat->bytes, pat->len);
        pos = (size_t)at + MASK_TEXT_LEN;
    }
    strbuf_append(out, masked + pos, len - pos);
}
