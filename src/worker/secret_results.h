/* Secret values in an execution's result, as Attune's worker treats them
 * (redact_action_result): each value of result.data at a path the action's
 * out_schema marks "secret": true is replaced by the marker
 * {"$attune_secret": true, "redacted": true}, and so are the captured stdout,
 * stderr and error once anything of the execution is secret (an output field
 * the schema marks, or a secret parameter). Every value taken out is sealed
 * with encrypt_json into a row of execution_secret_value (entity_type
 * execution_result, json_path "/data/..." or "/stdout"...), which the final
 * update of the execution writes in the same statement. No I/O. */
#ifndef ATTUNE_WORKER_SECRET_RESULTS_H
#define ATTUNE_WORKER_SECRET_RESULTS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "db/secret_values.h"
#include "executor/executor.h"

/* The RFC 6901 paths (relative to the data) that out_schema marks secret. An
 * object with "properties" is a JSON schema, read from its properties down;
 * any other object is a flat map of name to definition. A definition marked
 * secret is one path and nothing below it is read; any other is read on
 * through its own "properties". A new array of strings, sorted bytewise,
 * empty when nothing is marked (or out_schema is not an object). */
json_t *secret_results_schema_paths(const json_t *out_schema);

/* The json_path of each secret parameter of the execution (the claim's
 * execution_config rows), sorted bytewise; a new array. */
json_t *secret_results_config_paths(const struct secret_value_row *rows, size_t count);

/* Masks result in place as described above and returns what it took out: a
 * new array of {"json_path", "value", "source_kind", "source_ref"} with
 * source_kind "provenance" and source_ref the provenance JSON Attune writes
 * (the schema path, or the execution's secret parameters when it has some);
 * empty when nothing was secret. result.queue_ack, a copy of data.queue_ack,
 * follows the masked data. The values are in the clear: release the array
 * with secrets_json_wipe_free. */
json_t *secret_results_redact(json_t *result, const json_t *out_schema, int64_t execution_id,
                              const json_t *config_paths);

/* The rows for execution_secret_value (json_path, source_kind, source_ref,
 * encrypted_value, encryption_key_hash) of what secret_results_redact took
 * out; *rows is NULL when it took nothing. Without a key (NULL or empty), or
 * when a value cannot be encrypted, returns a negative errno and a message
 * naming the paths, never a value. */
int secret_results_seal(const json_t *taken, const char *key_string, json_t **rows, char *err,
                        size_t errlen);

/* One execution's secret results, applied as the executor's result filter:
 * out_schema, config_paths and key_string are borrowed and must outlive it
 * (each may be NULL). */
struct secret_results *secret_results_new(const json_t *out_schema, int64_t execution_id,
                                          const json_t *config_paths, const char *key_string);

/* The executor's result filter (userdata: a struct secret_results): masks the
 * result and seals what it took out. When that cannot be sealed, the values
 * are dropped and the execution fails: succeeded false, status failed, and
 * error says why, naming the paths. */
void secret_results_filter(json_t *result, enum execution_status *status, void *userdata);

/* The rows the filter sealed (NULL when none, or before it ran). */
const json_t *secret_results_rows(const struct secret_results *sr);
void secret_results_free(struct secret_results *sr);

#endif
