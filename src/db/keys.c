/* The key table (see keys.h). */
#include "db/keys.h"

#include <stdlib.h>

#include "core/util.h"
#include "db/query.h"

struct keys_call {
    db_keys_fn done;
    void *userdata;
};

static void on_keys(struct db *db, const PGresult *res, const char *error, void *userdata)
{
    struct keys_call *c = userdata;
    (void)db;
    size_t n = error ? 0 : (size_t)PQntuples(res);
    struct key_row *rows = xcalloc(n + 1, sizeof(*rows));
    for (size_t i = 0; i < n; i++) {
        int r = (int)i;
        rows[i] = (struct key_row){
            .name = db_text(res, r, 0),
            .owner_type = db_text(res, r, 1),
            .encrypted = db_bool(res, r, 2),
            .encryption_key_hash = db_text(res, r, 3),
            .value = PQgetvalue(res, r, 4),
        };
    }
    c->done(rows, n, error, c->userdata);
    free(rows);
    free(c);
}

void db_keys_for_action(struct db *db, int64_t pack_id, int64_t action_id, db_keys_fn done,
                        void *userdata)
{
    static const char sql[] =
        "SELECT name, owner_type::text, encrypted, encryption_key_hash, value::text FROM "
        "attune.key "
        "WHERE owner_type = 'system' OR (owner_type = 'pack' AND owner_pack = $1::bigint) "
        "OR (owner_type = 'action' AND owner_action = $2::bigint) ORDER BY id";
    struct db_id_text pack = db_id(pack_id), action = db_id(action_id);
    const char *values[] = {pack.text, action.text};
    struct keys_call *c = xcalloc(1, sizeof(*c));
    c->done = done;
    c->userdata = userdata;
    db_query(db, sql, 2, values, on_keys, c);
}
