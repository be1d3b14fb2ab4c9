/* The log rows of the service's executions (artifacts.log_rows, the tables
 * of db/log_artifacts.h): asked once at start whether the database can take
 * them; created by one statement queued when an action has started, which no
 * job waits for; sealed by the execution's final UPDATE with what the log
 * files hold. A failure costs the rows, never the execution. */
#ifndef ATTUNE_WORKER_LOG_ROWS_H
#define ATTUNE_WORKER_LOG_ROWS_H

#include <jansson.h>
#include <stdint.h>

#include "core/config.h"
#include "db/db.h"
#include "executor/executor.h"

struct log_rows;

/* NULL when cfg->log_rows is off; every function takes NULL and then does
 * nothing (log_rows_seal returns NULL). */
struct log_rows *log_rows_new(struct db *db, const struct config *cfg);
void log_rows_free(struct log_rows *lr);

/* Queues the question to the database; rows are written only once it has
 * answered yes. Queue it before any claim, so the answer comes first. */
void log_rows_probe(struct log_rows *lr);

/* The action (action_ref) of the execution, started as ex for owner (the
 * job), writes its logs: queue their rows. ex is borrowed until
 * log_rows_forget. The action's two artifacts, once an answer names them,
 * are taken as known for a while, so that later executions only add their
 * versions: a statement several times cheaper for the database. */
void log_rows_started(struct log_rows *lr, const void *owner, int64_t execution_id,
                      const char *action_ref, const char *execution_dir_name,
                      const struct execution *ex);

/* The seal of owner's finished logs for db_execution_finish (a new
 * reference), or NULL: no rows, their creation failed, no digest, or the
 * seal was already handed out (a second final UPDATE goes without it). */
json_t *log_rows_seal(struct log_rows *lr, const void *owner);

/* ex is about to be freed. */
void log_rows_forget(struct log_rows *lr, const struct execution *ex);

#endif
