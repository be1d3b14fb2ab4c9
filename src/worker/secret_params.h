/* Secret parameters: Attune stores the value of each secret parameter of an
 * execution encrypted in execution_secret_value (encrypt_json, at an RFC 6901
 * path) and leaves the marker {"$attune_secret": true, "redacted": true} at
 * that path of execution.config. Before the action runs, each value is
 * decrypted and written back at its path. */
#ifndef ATTUNE_WORKER_SECRET_PARAMS_H
#define ATTUNE_WORKER_SECRET_PARAMS_H

#include <jansson.h>
#include <stddef.h>

#include "db/secret_values.h"

/* Writes value at the RFC 6901 pointer path of *doc as Attune does: "" replaces
 * the document; missing objects on the way are created; an array index is
 * written only when the element exists; a path through anything else changes
 * nothing. Steals value. */
void secret_params_set(json_t **doc, const char *path, json_t *value);

/* Restores each row into *config: its encryption_key_hash, when set, must be
 * the configured key's, and its value must decrypt (decrypt_json). An error
 * names the path, never the value; on error *config may hold some of the
 * values already and must be wiped. The first segment of each path is
 * appended to names (when not NULL), so that messages about those parameters
 * can leave their values out. Returns 0 or a negative errno. */
int secret_params_restore(json_t **config, const struct secret_value_row *rows, size_t count,
                          const char *key_string, json_t *names, char *err, size_t errlen);

#endif
