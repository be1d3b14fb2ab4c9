/* The worker table: this worker's row, inserted or reactivated by name, its
 * heartbeat, and its status `inactive` when it stops. */
#ifndef ATTUNE_DB_WORKERS_H
#define ATTUNE_DB_WORKERS_H

#include <jansson.h>
#include <stdint.h>

#include "db/db.h"

struct worker_row {
    const char *name;
    const char *worker_type;
    const char *host;
    const json_t *capabilities;
};

/* worker_id is 0 when error is set. */
typedef void (*db_worker_fn)(int64_t worker_id, const char *error, void *userdata);

/* Inserts the worker, or reactivates the row of the same name; status active. */
void db_worker_register(struct db *db, const struct worker_row *row, db_worker_fn done,
                        void *userdata);
/* Records a heartbeat now with the given status ("active" or "busy"). */
void db_worker_heartbeat(struct db *db, int64_t worker_id, const char *status, db_worker_fn done,
                         void *userdata);
/* Marks the worker inactive. */
void db_worker_deactivate(struct db *db, int64_t worker_id, db_worker_fn done, void *userdata);

#endif
