/* Names for the kind of a jansson value, shared by every message that says
 * what a configuration, action file or parameter held instead. */
#ifndef ATTUNE_CORE_JSON_H
#define ATTUNE_CORE_JSON_H

#include <jansson.h>
#include <stdbool.h>

/* The kind in YAML words with its article: "a mapping", "a list",
 * "a string", "an integer", "a number", "a boolean" or "null". */
const char *json_kind(const json_t *v);

/* The kind as a JSON Schema type name: "object", "array", "string",
 * "integer", "number", "boolean" or "null". */
const char *json_type_name(const json_t *v);

/* Whether array (any value; not an array: no) holds the string s. */
bool json_array_has_string(const json_t *array, const char *s);

#endif
