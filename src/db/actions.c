/* The action table (see actions.h). */
#include "db/actions.h"

#include <stdlib.h>

#include "core/util.h"
#include "db/query.h"

struct action_call {
    db_action_fn done;
    void *userdata;
};

static void on_action(struct db *db, const PGresult *res, const char *error, void *userdata)
{
    struct action_call *c = userdata;
    (void)db;
    if (error || PQntuples(res) != 1) {
        c->done(NULL, error, c->userdata);
        free(c);
        return;
    }
    struct action_row row = {
        .id = db_int64(res, 0, 0),
        .ref = db_text(res, 0, 1),
        .pack_ref = db_text(res, 0, 2),
        .name = db_text(res, 0, 3),
        .entry_point = db_text(res, 0, 4),
        .label = db_text(res, 0, 5),
        .description = db_text(res, 0, 6),
        .param_schema = db_json(res, 0, 7, NULL, 0),
        .parameter_delivery = db_text(res, 0, 8),
        .parameter_format = db_text(res, 0, 9),
        .output_format = db_text(res, 0, 10),
        .timeout_seconds = (int)db_int64(res, 0, 11),
        .runtime_name = db_text(res, 0, 12),
        .enabled = db_bool(res, 0, 13),
        .pack_id = db_int64(res, 0, 14),
        .is_adhoc = db_bool(res, 0, 15),
        .runtime_config = db_json(res, 0, 16, NULL, 0),
        .out_schema = db_json(res, 0, 17, NULL, 0),
    };
    c->done(&row, NULL, c->userdata);
    json_decref(row.param_schema);
    json_decref(row.runtime_config);
    json_decref(row.out_schema);
    free(c);
}

void db_action_find(struct db *db, const char *ref, db_action_fn done, void *userdata)
{
    static const char sql[] =
        "SELECT a.id, a.ref, a.pack_ref, substr(a.ref, length(a.pack_ref) + 2), a.entrypoint, "
        "a.label, a.description, a.param_schema, a.parameter_delivery, a.parameter_format, "
        "a.output_format, a.timeout_seconds, r.name, a.enabled, a.pack, a.is_adhoc, "
        "r.execution_config, a.out_schema FROM attune.action a "
        "LEFT JOIN attune.runtime r ON r.id = a.runtime WHERE a.ref = $1";
    const char *values[] = {ref};
    struct action_call *c = xcalloc(1, sizeof(*c));
    c->done = done;
    c->userdata = userdata;
    db_query(db, sql, 1, values, on_action, c);
}
