/* Python's marshal format (version 4) for the values JSON can hold: the python
 * wrapper reads its control message and writes its answer with the builtin
 * marshal module, because importing json costs a python action more time than
 * the rest of its start-up together. */
#ifndef ATTUNE_RUNTIME_PYMARSHAL_H
#define ATTUNE_RUNTIME_PYMARSHAL_H

#include <jansson.h>
#include <stddef.h>

#include "core/util.h"

/* Appends value in marshal format: objects as dicts, arrays as lists,
 * strings, integers (any int64), reals, booleans, null as None. */
void pymarshal_encode(const json_t *value, struct strbuf *out);

/* Decodes one marshalled value made of None, booleans, ints (any size that
 * fits int64), floats, str, tuples, lists, sets, frozensets and dicts; tuples
 * and sets become arrays, non-string dict keys become their JSON text. Anything
 * else (bytes, code, huge ints, NaN...) is an error naming the problem.
 * Nesting is limited to 64 levels. Returns a new reference or NULL with the
 * reason in err. */
json_t *pymarshal_decode(const void *data, size_t len, char *err, size_t errlen);

#endif
