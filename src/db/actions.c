/* The action table (see actions.h). */
#include "db/actions.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "db/query.h"

struct action_call {
    db_action_fn done;
    void *userdata;
};

void db_action_read(const PGresult *res, int row, int col, struct action_row *out)
{
    *out = (struct action_row){
        .id = db_int64(res, row, col),
        .ref = db_text(res, row, col + 1),
        .pack_ref = db_text(res, row, col + 2),
        .name = db_text(res, row, col + 3),
        .entry_point = db_text(res, row, col + 4),
        .label = db_text(res, row, col + 5),
        .description = db_text(res, row, col + 6),
        .param_schema = db_json(res, row, col + 7, NULL, 0),
        .parameter_delivery = db_text(res, row, col + 8),
        .parameter_format = db_text(res, row, col + 9),
        .output_format = db_text(res, row, col + 10),
        .timeout_seconds = (int)db_int64(res, row, col + 11),
        .runtime_name = db_text(res, row, col + 12),
        .enabled = db_bool(res, row, col + 13),
        .pack_id = db_int64(res, row, col + 14),
        .is_adhoc = db_bool(res, row, col + 15),
        .runtime_config = db_json(res, row, col + 16, NULL, 0),
        .out_schema = db_json(res, row, col + 17, NULL, 0),
    };
}

void db_action_row_clear(struct action_row *row)
{
    json_decref(row->param_schema);
    json_decref(row->runtime_config);
    json_decref(row->out_schema);
    memset(row, 0, sizeof(*row));
}

static void on_action(struct db *db, const PGresult *res, const char *error, void *userdata)
{
    struct action_call *c = userdata;
    (void)db;
    if (error || PQntuples(res) != 1) {
        c->done(NULL, error, c->userdata);
        free(c);
        return;
    }
    struct action_row row;
    db_action_read(res, 0, 0, &row);
    c->done(&row, NULL, c->userdata);
    db_action_row_clear(&row);
    free(c);
}

void db_action_find(struct db *db, const char *ref, db_action_fn done, void *userdata)
{
    static const char sql[] = "SELECT " DB_ACTION_COLUMNS " FROM attune.action a "
                              "LEFT JOIN attune.runtime r ON r.id = a.runtime WHERE a.ref = $1";
    const char *values[] = {ref};
    struct action_call *c = xcalloc(1, sizeof(*c));
    c->done = done;
    c->userdata = userdata;
    db_query(db, sql, 1, values, on_action, c);
}
