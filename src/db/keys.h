/* The key table as the worker reads it: every key an action may see (system,
 * its pack's, its own). Rows are borrowed: valid during the callback only. */
#ifndef ATTUNE_DB_KEYS_H
#define ATTUNE_DB_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "db/db.h"

struct key_row {
    const char *name;
    const char *owner_type; /* "system", "pack", "action", ... */
    bool encrypted;
    const char *encryption_key_hash; /* may be NULL */
    const char *value;
};

typedef void (*db_keys_fn)(const struct key_row *rows, size_t count, const char *error,
                           void *userdata);

void db_keys_for_action(struct db *db, const char *pack_ref, const char *action_ref,
                        db_keys_fn done, void *userdata);

#endif
