/* The parameter schema of an action: the two forms an action file may use
 * normalised into {"type":"object","properties":{NAME:{...}},"required":[...]}
 * (each property may hold type, description, default, enum, secret). */
#ifndef ATTUNE_EXEC_ACTION_SCHEMA_H
#define ATTUNE_EXEC_ACTION_SCHEMA_H

#include <jansson.h>
#include <stddef.h>

/* Turns the `parameters` value of an action file (the map form
 * `name: {type, description, default, required, secret, enum}` or a JSON-schema
 * object with `properties` and `required`) into the normalised schema. */
int action_normalise_schema(const json_t *parameters, json_t **out, char *err, size_t errlen);

/* The normalised schema of an action without parameters (a new reference). */
json_t *action_schema_empty(void);

#endif
