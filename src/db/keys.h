/* The key table as the worker reads it: every key an action may see (system,
 * its pack's, its own), matched by the owners' ids. Rows are borrowed: valid
 * during the callback only. */
#ifndef ATTUNE_DB_KEYS_H
#define ATTUNE_DB_KEYS_H

#include <jansson.h>
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

/* For the table modules of src/db: the same keys as one JSON array (or NULL:
 * none) in id order, for the pack and the action whose ids are the SQL
 * expressions pack_expr and action_expr, so that another statement reads
 * them in its own round trip. */
#define DB_ACTION_KEYS(pack_expr, action_expr)                                                     \
    "(SELECT json_agg(json_build_object('name', k.name, 'owner_type', k.owner_type::text, "        \
    "'encrypted', k.encrypted, 'encryption_key_hash', k.encryption_key_hash, 'value', "            \
    "k.value::text) ORDER BY k.id) FROM attune.key k WHERE k.owner_type = 'system' "               \
    "OR (k.owner_type = 'pack' AND k.owner_pack = " pack_expr ") "                                 \
    "OR (k.owner_type = 'action' AND k.owner_action = " action_expr "))"

/* Rows parsed out of that array's text; they point into doc. */
struct key_set {
    json_t *doc;
    struct key_row *rows;
    size_t count;
};

/* Parses the subquery's text (NULL: no keys). A text that does not parse, or
 * an element without a string name or value, is an error (the message holds
 * no value). Returns 0 or -EINVAL; out is always safe to free. */
int db_keys_parse(const char *text, struct key_set *out, char *err, size_t errlen);
/* Overwrites the values (a key may be stored unencrypted) and frees. */
void db_keys_free(struct key_set *keys);

#endif
