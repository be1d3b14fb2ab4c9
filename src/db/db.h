/* The database connection on the event loop: non-blocking libpq, a FIFO of
 * parameterized queries each with a callback, and reconnection with capped
 * exponential backoff when the server goes away. */
#ifndef ATTUNE_DB_DB_H
#define ATTUNE_DB_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <systemd/sd-event.h>

struct db;

/* Called once per query. On success res is the query's result (owned by the
 * db, valid during the call) and error NULL; on failure res is NULL and error
 * says why. */
typedef void (*db_result_fn)(struct db *db, const PGresult *res, const char *error, void *userdata);
/* Called when the connection comes up (true) or goes down (false). */
typedef void (*db_state_fn)(struct db *db, bool connected, void *userdata);

/* Creates the connection and starts connecting; queries may be queued at once.
 * A connection attempt that takes longer than connect_timeout seconds is
 * abandoned and retried. */
struct db *db_new(sd_event *loop, const char *url, int connect_timeout, db_state_fn on_state,
                  void *userdata);
void db_free(struct db *db);

bool db_is_connected(const struct db *db);
/* Queries waiting or running. */
size_t db_pending(const struct db *db);

/* Queues a query; values are copied (NULL is SQL NULL). A query that was
 * running when the connection dropped is sent again after reconnecting, so
 * every statement sent through here must be safe to repeat. */
void db_query(struct db *db, const char *sql, int nparams, const char *const *values,
              db_result_fn done, void *userdata);

#endif
