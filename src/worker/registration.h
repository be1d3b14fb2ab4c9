/* The worker's presence in the database: registration (insert or reactivate
 * by name) with its capabilities, the periodic heartbeat, executions a
 * previous run of this worker left `running` (finished as abandoned), and the
 * status `inactive` at shutdown. */
#ifndef ATTUNE_WORKER_REGISTRATION_H
#define ATTUNE_WORKER_REGISTRATION_H

#include <jansson.h>
#include <stdint.h>

#include "core/config.h"
#include "db/executions.h"
#include "db/workers.h"
#include "runtime/registry.h"

/* Inserts or reactivates the worker named cfg->worker_name with status
 * active and its capabilities (slots, version, the usable runtimes as
 * Attune names them, the interpreters' versions, host, pid); calls done with
 * its id. The first call asks the interpreters their versions. */
void registration_register(struct db *db, const struct config *cfg, struct registry *registry,
                           db_worker_fn done, void *userdata);

/* Finishes as `abandoned` every execution still `running` under this worker
 * (left by a run that died); calls done with their rows (none on error). */
void registration_abandon_stale(struct db *db, int64_t worker_id, db_abandoned_fn done,
                                void *userdata);

/* Records a heartbeat now, with the status `active`. */
void registration_heartbeat(struct db *db, int64_t worker_id);

/* Marks the worker inactive; calls done when recorded (or failed). */
void registration_deregister(struct db *db, int64_t worker_id, void (*done)(void *userdata),
                             void *userdata);

#endif
