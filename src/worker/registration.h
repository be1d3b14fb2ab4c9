/* The worker's row in the database: registration (insert or reactivate by
 * name) with its capabilities, the periodic heartbeat, executions a previous
 * run of this worker left `running` (finished as abandoned), and the status
 * `inactive` at shutdown. */
#ifndef ATTUNE_WORKER_REGISTRATION_H
#define ATTUNE_WORKER_REGISTRATION_H

#include <jansson.h>
#include <stdint.h>

#include "core/config.h"
#include "db/db.h"

typedef void (*registration_done_fn)(int64_t worker_id, const char *error, void *userdata);

/* Inserts or reactivates the worker named cfg->worker_name with status
 * active; calls done with its id. capabilities is borrowed. */
void registration_register(struct db *db, const struct config *cfg, const json_t *capabilities,
                           registration_done_fn done, void *userdata);

/* Finishes as `abandoned` every execution still `running` under this worker
 * (left by a run that died); calls done with their rows (id, action_ref,
 * action, result), or with NULL on error. */
void registration_abandon_stale(struct db *db, int64_t worker_id,
                                void (*done)(const PGresult *rows, void *userdata), void *userdata);

/* Records a heartbeat now (status stays as given: "active" or "busy"). */
void registration_heartbeat(struct db *db, int64_t worker_id, const char *status);

/* Marks the worker inactive; calls done when recorded (or failed). */
void registration_deregister(struct db *db, int64_t worker_id, void (*done)(void *userdata),
                             void *userdata);

#endif
