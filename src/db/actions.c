/* The action table (see actions.h). */
#include "db/actions.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "db/query.h"

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
