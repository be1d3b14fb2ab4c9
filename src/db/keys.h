/* The key table as the worker reads it: every key an action may see (system,
 * its pack's, its own), matched by the owners' ids. Rows are borrowed: valid
 * during the callback only. */
#ifndef ATTUNE_DB_KEYS_H
#define ATTUNE_DB_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

struct key_row {
    const char *name;
    const char *owner_type; /* "system", "pack", "action", ... */
    bool encrypted;
    const char *encryption_key_hash; /* may be NULL */
    const char *value; /* key.value (JSONB) as JSON text; encrypted: encrypt_json output */
};

typedef void (*db_keys_fn)(const struct key_row *rows, size_t count, const char *error,
                           void *userdata);

/* System keys, the keys whose owner_pack is pack_id and those whose
 * owner_action is action_id. */
void db_keys_for_action(struct db *db, int64_t pack_id, int64_t action_id, db_keys_fn done,
                        void *userdata);

#endif
