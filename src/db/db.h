/* The database connection on the event loop: non-blocking libpq in pipeline
 * mode, a FIFO of parameterized queries each with a callback (each sent when
 * queued, answered in order; each text prepared once per connection), and
 * reconnection with capped exponential backoff when the server goes away. The
 * statements live in the table modules beside it (executions, actions, keys,
 * workers), which hand out typed rows; callers never see libpq. */
#ifndef ATTUNE_DB_DB_H
#define ATTUNE_DB_DB_H

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "core/config.h"

struct db;

/* Called when the connection comes up (true) or goes down (false). */
typedef void (*db_state_fn)(struct db *db, bool connected, void *userdata);

/* Creates the connection cfg's database.* keys describe (url, the schema of
 * the tables, connect_timeout, prepared_statements) and starts connecting;
 * queries may be queued at once. A connection attempt that takes longer than
 * connect_timeout seconds is abandoned and retried. */
struct db *db_new(sd_event *loop, const struct config *cfg, db_state_fn on_state, void *userdata);
void db_free(struct db *db);

bool db_is_connected(const struct db *db);
/* Queries waiting or running. */
size_t db_pending(const struct db *db);

#endif
