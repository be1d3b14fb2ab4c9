/* Secret masking: a set of byte strings (the secret values of an execution and
 * their encodings) and a streaming matcher that replaces every occurrence by
 * MASK_TEXT in output that arrives in chunks, so that a value split across
 * two reads is still caught. Pure logic, no I/O. */
#ifndef ATTUNE_EXEC_MASK_H
#define ATTUNE_EXEC_MASK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/util.h"

#define MASK_TEXT "********"
#define MASK_TEXT_LEN 8
/* Shorter values are not masked: a value of one to three bytes ("1", "yes",
 * "abc") turns up by chance in almost any output, so masking it would wreck
 * the output and, by where the stars fall, show the value anyway; and a
 * secret that short is found by trying every value, masked or not. Four is
 * also the width of the matcher's prefix filter. */
#define MASK_MIN_LEN 4

struct mask_set;

struct mask_set *mask_set_new(void);
/* Adds one byte string as it is; ignored when shorter than MASK_MIN_LEN or
 * made of '*' only (the mask itself). Not after mask_set_build. */
void mask_set_add(struct mask_set *set, const void *data, size_t len);
/* Readies the set for matching (dropping duplicates); call once, after the
 * last add. */
void mask_set_build(struct mask_set *set);
/* The number of distinct strings (after mask_set_build), and the longest. */
size_t mask_set_count(const struct mask_set *set);
size_t mask_set_max_len(const struct mask_set *set);
/* Wipes the strings and frees the set; NULL-safe. */
void mask_set_free(struct mask_set *set);

/* Where a stream replaced a string: the offset of MASK_TEXT in what it
 * emitted, and which string of the set it stood for. */
struct mask_match {
    uint64_t offset;
    uint32_t pattern;
};

typedef void (*mask_emit_fn)(void *userdata, const void *data, size_t len);

struct mask_stream;

/* A stream over a built set (borrowed; it must outlive the stream). */
struct mask_stream *mask_stream_new(const struct mask_set *set);
/* Records up to max matches (mask_stream_matches), so that the original
 * text can be restored from the masked one (mask_unmask). */
void mask_stream_keep_matches(struct mask_stream *s, size_t max);
/* Takes the next chunk of the stream and emits what is decided: every
 * occurrence replaced (the longest string matching at the earliest
 * position), and the shortest tail that could still begin a string held back
 * for the next chunk (at most the longest string's length minus one). */
void mask_stream_write(struct mask_stream *s, const void *data, size_t len, mask_emit_fn emit,
                       void *userdata);
/* Emits what is held back (the end of the stream). */
void mask_stream_flush(struct mask_stream *s, mask_emit_fn emit, void *userdata);
/* Bytes taken and not yet emitted. */
size_t mask_stream_held(const struct mask_stream *s);
/* The matches recorded, in order; false when more happened than were kept. */
bool mask_stream_matches(const struct mask_stream *s, const struct mask_match **matches,
                         size_t *count);
/* Wipes what it holds and frees the stream; NULL-safe. */
void mask_stream_free(struct mask_stream *s);

/* The whole of text masked into out (appended). */
void mask_buffer(const struct mask_set *set, const void *text, size_t len, struct strbuf *out);
/* Puts back into out the strings the matches stand for, where masked still
 * holds MASK_TEXT at the match's offset (a mask cut by an output cap stays). */
void mask_unmask(const struct mask_set *set, const char *masked, size_t len,
                 const struct mask_match *matches, size_t count, struct strbuf *out);

/* Adds value and its encodings: standard base64 and base64url, each with and
 * without padding; percent-encoding as curl, Python's urllib (quote, also
 * keeping '/', and quote_plus) and JavaScript's encodeURIComponent write it,
 * and with lower-case hex digits; hex in lower and upper case; the text
 * inside a JSON string (as is and ASCII-only); and each line of a value of
 * several lines. */
void mask_set_add_secret(struct mask_set *set, const char *value, size_t len);
/* Adds a JSON value: a string as mask_set_add_secret; a number as its text;
 * an array or object as its compact text and each string and number inside.
 * true, false and null add nothing. */
void mask_set_add_json(struct mask_set *set, const json_t *value);
/* Masks every string of value, at any depth, object keys too, in place.
 * Returns whether anything changed. */
bool mask_json(const struct mask_set *set, json_t *value);

#endif
