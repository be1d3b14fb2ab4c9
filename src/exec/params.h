/* Action parameters: typed assignment from the command line, validation
 * against the action's schema (defaults, required, types, enums), and the
 * delivery formats (json, yaml, dotenv, and PARAM_<NAME> variables). */
#ifndef ATTUNE_EXEC_PARAMS_H
#define ATTUNE_EXEC_PARAMS_H

#include <jansson.h>
#include <stddef.h>

#include "core/util.h"
#include "exec/action.h"

/* Applies "NAME=VALUE" to the params object. The value is converted to the
 * type the schema gives NAME (integer, number, boolean, array and object are
 * parsed; string is taken as is); a name unknown to the schema takes the
 * value as a string. Error messages name the parameter. */
int params_assign(json_t *params, const json_t *schema, const char *assignment, char *err,
                  size_t errlen);

/* Fills in defaults, then checks that every required parameter is present
 * and that each value has its declared type (string, integer, number,
 * boolean, array, object) and is one of its enum values. Parameters that the
 * schema does not declare are kept. The message names the parameter:
 * "parameter 'count' must be an integer, got string". */
int params_validate(json_t *params, const json_t *schema, char *err, size_t errlen);

/* Serialises params in the given format, newline-terminated:
 * json: one compact line; yaml: a block document; dotenv: one key='value'
 * line per scalar, with ' written as '\'' , nested object keys joined with
 * '.', arrays as compact JSON text, booleans true/false, null as empty. */
void params_format(const json_t *params, enum param_format format, struct strbuf *out);

/* Adds PARAM_<NAME>=value for each top-level parameter to env: NAME upper
 * case with every character outside [A-Z0-9_] replaced by '_'; strings as
 * they are, numbers and booleans as text, null as empty, arrays and objects
 * as compact JSON. Parameters the (normalised) schema marks secret and names
 * listed in hidden (a JSON array of strings; either may be NULL) are left
 * out: their values are secret, and a process's environment can be read
 * from /proc. */
void params_to_env(const json_t *params, const json_t *schema, const json_t *hidden,
                   struct strv *env);

#endif
