/* The key table (see keys.h). */
#include "db/keys.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

int db_keys_parse(const char *text, struct key_set *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (!text)
        return 0;
    out->doc = json_loads(text, 0, NULL);
    if (!json_is_array(out->doc))
        return set_error(err, errlen, EINVAL, "the keys cannot be read");
    size_t n = json_array_size(out->doc);
    out->rows = xcalloc(n + 1, sizeof(*out->rows));
    for (size_t i = 0; i < n; i++) {
        const json_t *item = json_array_get(out->doc, i);
        struct key_row row = {
            .name = json_string_value(json_object_get(item, "name")),
            .owner_type = json_string_value(json_object_get(item, "owner_type")),
            .encrypted = json_is_true(json_object_get(item, "encrypted")),
            .encryption_key_hash = json_string_value(json_object_get(item, "encryption_key_hash")),
            .value = json_string_value(json_object_get(item, "value")),
        };
        if (!row.name || !row.owner_type || !row.value)
            return set_error(err, errlen, EINVAL, "a key has no name, owner type or value");
        out->rows[out->count++] = row;
    }
    return 0;
}

void db_keys_free(struct key_set *keys)
{
    if (!keys)
        return;
    for (size_t i = 0; i < keys->count; i++)
        secure_zero((char *)keys->rows[i].value, strlen(keys->rows[i].value));
    free(keys->rows);
    json_decref(keys->doc);
    memset(keys, 0, sizeof(*keys));
}
