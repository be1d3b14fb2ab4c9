/* Inside the database layer only: the raw parameterized query on the loop
 * and the readers that turn a libpq result into the typed rows the table
 * modules hand out. Nothing outside src/db/ includes this header. */
#ifndef ATTUNE_DB_QUERY_H
#define ATTUNE_DB_QUERY_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"

/* Called once per query. On success res is the query's result (owned by the
 * db, valid during the call) and error NULL; on failure res is NULL and error
 * says why. */
typedef void (*db_result_fn)(struct db *db, const PGresult *res, const char *error, void *userdata);

/* Queues a query and sends it at once, without waiting for the answers to
 * the queries before it (libpq's pipeline mode: each query is its own
 * transaction, answered in order); values are copied (NULL is SQL NULL).
 * Every query not answered when the connection dropped is sent again after
 * reconnecting, so every statement sent through here must be safe to
 * repeat. Each distinct SQL text is prepared once per connection and then
 * executed by name (statements.h): pass fixed texts, with the values as
 * parameters, never a text built from values. */
void db_query(struct db *db, const char *sql, int nparams, const char *const *values,
              db_result_fn done, void *userdata);

/* Column readers for row `row`, column `col`: NULL / 0 / false for SQL NULL. */
const char *db_text(const PGresult *res, int row, int col);
int64_t db_int64(const PGresult *res, int row, int col);
bool db_bool(const PGresult *res, int row, int col);
/* A new reference to the parsed JSON object or array in the column, NULL for
 * SQL NULL; anything else is NULL with the parser's message in err. */
json_t *db_json(const PGresult *res, int row, int col, char *err, size_t errlen);
/* Rows changed by an INSERT/UPDATE/DELETE. */
long db_changed(const PGresult *res);

/* Rows of one table read out of another's statement. */
struct action_row;
/* The DB_ACTION_COLUMNS (actions.h) that start at column col; the JSON
 * members are new references: release them with db_action_row_clear. */
void db_action_read(const PGresult *res, int row, int col, struct action_row *out);
void db_action_row_clear(struct action_row *row);

/* An id as the decimal text a parameter needs. */
struct db_id_text {
    char text[24];
};
struct db_id_text db_id(int64_t id);

#endif
