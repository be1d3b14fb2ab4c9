/* One execution request in service mode as one explicit state machine: from
 * the broker message to the final database row and the outbound messages.
 * The job does nothing to the world itself: every round trip, message and
 * process goes through struct job_ports, whose answers come back as events
 * to job_step. The service wires the real ports (job_io.h); the unit tests
 * drive the job with fakes. docs/execution-lifecycle.md draws the table. */
#ifndef ATTUNE_WORKER_JOB_H
#define ATTUNE_WORKER_JOB_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "db/actions.h"
#include "db/executions.h"
#include "db/keys.h"
#include "executor/executor.h"
#include "mq/mq.h"
#include "runtime/registry.h"
#include "worker/report.h"

/* Where a job is, in lifecycle order. Each state but DONE waits for exactly
 * one thing. */
enum job_state {
    JOB_CLAIMING,          /* the guarded claim UPDATE is in flight */
    JOB_CHECKING,          /* the claim matched nothing: who holds it? */
    JOB_RESUMING,          /* ours, the claim's reply was lost: read it again */
    JOB_LOADING_KEYS,      /* the key rows are being read */
    JOB_RUNNING,           /* the action's process runs */
    JOB_RECORDING,         /* the final UPDATE is in flight */
    JOB_RECORDING_REFUSAL, /* the result was refused: recording a failure instead */
    JOB_VERIFYING,         /* the final UPDATE changed nothing: is it there anyway? */
    JOB_REPORTING,         /* publishing the last two messages */
    JOB_DONE,              /* over; the owner frees the job */
};
#define JOB_STATE_COUNT (JOB_DONE + 1)

const char *job_state_name(enum job_state state);

/* What can reach a job. */
enum job_event_kind {
    JOB_EVENT_ROW,      /* the round trip answered with its row(s), or changed its row */
    JOB_EVENT_NO_ROW,   /* the round trip answered with nothing (no row, nothing changed) */
    JOB_EVENT_DB_ERROR, /* the database refused the statement */
    JOB_EVENT_EXITED,   /* the action is over (exit, timeout or kill); its result is ready */
    JOB_EVENT_SHUTDOWN, /* the worker is stopping: cancel the action */
    JOB_EVENT_CANCEL,   /* a user cancelled the execution (ExecutionCancelRequested) */
};
#define JOB_EVENT_COUNT (JOB_EVENT_CANCEL + 1)

const char *job_event_name(enum job_event_kind kind);

struct job_event {
    enum job_event_kind kind;
    const char *error; /* JOB_EVENT_DB_ERROR */
    /* JOB_EVENT_ROW, by state; borrowed for the call */
    const struct execution_row *execution; /* CLAIMING, RESUMING */
    const struct execution_owner *owner;   /* CHECKING */
    const struct key_row *keys;            /* LOADING_KEYS */
    size_t n_keys;
    /* JOB_EVENT_EXITED */
    /* Its process never started: stopped (or failed to start) while the
     * fork server was still to fork it. */
    bool never_started;
    enum execution_status exit_status;
    json_t *result; /* borrowed; the job takes a reference */
};

struct job;

/* The world as the job sees it. Each database call starts one round trip
 * whose answer the port delivers later as one event to job_step (never from
 * inside the call). io is the ports' own context. The claim and the resume
 * answer with the execution row, its action and, with_keys, the keys; the
 * key load is for keys the row does not carry (those of a pinned
 * execution's other action). */
struct job_ports {
    void (*claim)(void *io, struct job *job, int64_t execution_id, int64_t worker_id,
                  bool with_keys);
    void (*find_owner)(void *io, struct job *job, int64_t execution_id);
    void (*resume)(void *io, struct job *job, int64_t execution_id, int64_t worker_id,
                   bool with_keys);
    void (*load_keys)(void *io, struct job *job, int64_t pack_id, int64_t action_id);
    /* secrets: the result's secret values (db_execution_finish), or NULL. */
    void (*finish)(void *io, struct job *job, int64_t execution_id, const char *status,
                   const json_t *result, const json_t *secrets);
    void (*check_finished)(void *io, struct job *job, int64_t execution_id, const char *status,
                           const json_t *result);
    /* Broker: settle the delivery, publish the reports. */
    void (*ack)(void *io, uint64_t connection, uint64_t delivery_tag);
    void (*reject)(void *io, uint64_t connection, uint64_t delivery_tag, bool requeue);
    void (*publish_status)(void *io, const struct report_subject *subject, const char *from,
                           const char *to);
    void (*publish_completed)(void *io, const struct report_subject *subject, const char *status,
                              const json_t *result);
    /* The action: start it (its end arrives as JOB_EVENT_EXITED), stop it
     * (SIGKILL grace_ms after SIGTERM), release what start returned. start
     * fails with a message in err. */
    int (*start)(void *io, struct job *job, const struct execution_request *req, void **run,
                 char *err, size_t errlen);
    void (*stop)(void *io, void *run, uint64_t grace_ms);
    void (*release)(void *io, void *run);
    /* Whether another job of this process is running the execution now. */
    bool (*held_here)(void *io, int64_t execution_id);
    /* The job reached JOB_DONE; the owner frees it later, from the loop. */
    void (*done)(void *io, struct job *job);
};

struct job_context {
    const struct config *cfg;
    const struct registry *registry; /* the runtimes; NULL: no runtime versions chosen */
    int64_t worker_id;
    const struct job_ports *ports;
    void *io;
};

/* Starts handling one delivery (copied). Never fails: bad input ends in the
 * dead-letter queue or in a failed execution, and ports->done is called. */
struct job *job_start(const struct job_context *ctx, const struct mq_delivery *delivery);

/* Delivers one event. An event a state does not wait for changes nothing. */
void job_step(struct job *job, const struct job_event *event);

enum job_state job_state(const struct job *job);
/* True from the claim until the final state is in the database. */
bool job_holds_execution(const struct job *job);
/* Whether a cancel request for the execution can still change what the job
 * does: from the claim until the action's end is being recorded. */
bool job_cancellable(const struct job *job);
/* The execution id, 0 before the message parsed. */
int64_t job_execution_id(const struct job *job);
/* Whether the broker message has been acknowledged or rejected. */
bool job_settled(const struct job *job);
void job_free(struct job *job);

#endif
