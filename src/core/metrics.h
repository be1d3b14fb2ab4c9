/* The worker's counters and histograms for /metrics (worker/observability.c):
 * one process-wide set, incremented where the events are already logged,
 * rendered in Prometheus' text format 0.0.4. One thread, so no locking. */
#ifndef ATTUNE_CORE_METRICS_H
#define ATTUNE_CORE_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "core/util.h"

enum metrics_server { METRICS_SERVER_DATABASE, METRICS_SERVER_MESSAGE_QUEUE, METRICS_SERVER_COUNT };

/* An execution claimed by this worker (it is now running). */
void metrics_execution_started(void);
/* An execution whose end the database holds: its runtime (the action's
 * runner_type; NULL when no action was loaded), final status and how long
 * it took from its claim. */
void metrics_execution_finished(const char *runtime, const char *status, double seconds);
/* From the time the request message was created to its claim here;
 * timestamp is the envelope's RFC 3339 time (ignored when it does not parse
 * or lies in the future). */
void metrics_queue_wait(const char *timestamp);
void metrics_message_received(void);
void metrics_message_dead_lettered(void);
void metrics_message_requeued(void);
/* The server's connection came or went: every connection after the first
 * is a reconnect. */
void metrics_server_state(enum metrics_server server, bool connected);
void metrics_output_truncated(int64_t bytes);

/* The python fork server (exec/fork_server.h). */
enum metrics_fork_server_event {
    METRICS_FORK_SERVED,  /* a child forked from the zygote */
    METRICS_FORK_COLD,    /* a launch it could serve ran cold: the zygote was down or refused */
    METRICS_FORK_RESTART, /* a zygote replaced: it died, hung or grew */
    METRICS_FORK_EVENT_COUNT,
};
void metrics_fork_server(enum metrics_fork_server_event event);
/* The sandbox (core/metrics_sandbox.c): what exec/sandbox.c and the
 * executor tell of each execution's uid, its sweep and its limits. */
enum metrics_sandbox_limit { METRICS_LIMIT_MEMORY, METRICS_LIMIT_TASKS, METRICS_LIMIT_COUNT };
/* The mode resolved at start: none, uid or userns. */
void metrics_sandbox_mode(enum sandbox_mode mode);
/* uid mode: uids of sandbox.uid_range held by this worker's executions, of size. */
void metrics_sandbox_uids(uint32_t in_use, uint32_t size);
/* A uid's sweep at an execution's end: whether it had processes to kill,
 * and how many were still alive after its last round. */
void metrics_sandbox_swept(bool killed, int left);
/* An execution that failed or timed out over sandbox.memory_max or tasks_max. */
void metrics_sandbox_limit_exceeded(enum metrics_sandbox_limit limit);
void metrics_sandbox_render(struct strbuf *out);
void metrics_sandbox_reset(void);

/* Spare processes (core/metrics_spares.c), per runtime that has them: an
 * execution started in a spare or without one, and the spares ready now. */
void metrics_spare_start(const char *runtime, bool in_spare);
void metrics_spares_idle(const char *runtime, size_t idle);
void metrics_spares_render(struct strbuf *out);
void metrics_spares_reset(void);

/* "# HELP" and "# TYPE" of one family, for the render functions of each file. */
static inline void metrics_family(struct strbuf *out, const char *name, const char *type,
                                  const char *help)
{
    strbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* What only the service knows at scrape time. */
struct metrics_gauges {
    int64_t running, slots;
    int64_t unconfirmed_publishes, db_queries_pending;
    bool database_connected, message_queue_connected;
};

/* Appends every metric to out in text format 0.0.4. */
void metrics_render(struct strbuf *out, const struct metrics_gauges *g);

/* Forgets every count (for tests). */
void metrics_reset(void);

#endif
