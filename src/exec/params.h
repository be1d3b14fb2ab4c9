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

/* The largest --params-json file or standard input read. */
#define PARAMS_JSON_MAX (16 << 20)

/* The value of --params-json (run-action, attunectl run): the JSON text
 * itself, "@FILE" for the text of FILE, or "-" for standard input, so that
 * no secret value needs a command line. It must be a JSON object, at most
 * PARAMS_JSON_MAX bytes. The text read is wiped. Returns 0, or a negative
 * errno with a message starting "--params-json" in err. */
int params_load_json_arg(const char *arg, json_t **out, char *err, size_t errlen);

/* Fills in defaults, then checks that every required parameter is present
 * and that each value has its declared type (string, integer, number,
 * boolean, array, object) and is one of its enum values. Parameters that the
 * schema does not declare are kept. The message names the parameter:
 * "parameter 'count' must be an integer, got string". */
int params_validate(json_t *params, const json_t *schema, char *err, size_t errlen);

/* Appends PARAM_ and the name in upper case (ASCII letters), every character
 * outside [A-Z0-9_] made '_' (one per multi-byte character). */
void params_env_name(struct strbuf *out, const char *key);
/* Appends a dotenv key: every character but ASCII letters, digits, '_', '-'
 * and '.' made '_' (one per multi-byte character), case kept. */
void params_dotenv_key(struct strbuf *out, const char *key);

/* Refuses parameters that an action could not tell apart once their names
 * are mapped: to PARAM_<NAME> (for every action, whatever its runtime) or,
 * with the dotenv format, to dotenv keys (nested ones included). Two given
 * parameters that map to the same name, or an undeclared one that maps to
 * the name of a declared one (given or not: MODE or run_mode beside a
 * declared mode or run-mode), fail with -EINVAL and a message naming both,
 * never a value: "parameters 'mode' and 'MODE' map to the same name
 * PARAM_MODE; ...". Call it after params_validate. */
int params_check_names(const json_t *params, const json_t *schema, enum param_format format,
                       char *err, size_t errlen);

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
