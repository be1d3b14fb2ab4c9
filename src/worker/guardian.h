/* The guardian: a tiny process the service starts beside itself that knows
 * the process group and the sandbox uid of every running action. If the
 * worker dies without saying goodbye (kill -9, a crash), the guardian sees its
 * pipe close and kills those groups at once, then every process left on those
 * uids (setsid escapers included), so no action outlives its worker. */
#ifndef ATTUNE_WORKER_GUARDIAN_H
#define ATTUNE_WORKER_GUARDIAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct executor_settings;
struct guardian;

/* Starts the guardian process; call it before opening anything else.
 * Returns NULL, with the reason logged, if it cannot be started: the worker
 * then runs without it. */
struct guardian *guardian_start(void);
/* Tells the guardian about an action's process group, and that it ended. */
void guardian_watch(struct guardian *g, pid_t pgid);
void guardian_forget(struct guardian *g, pid_t pgid);
/* Tells the guardian that an execution took a sandbox uid (before its process
 * is spawned), and that the uid was swept and given back. */
void guardian_watch_uid(struct guardian *g, uid_t uid);
void guardian_forget_uid(struct guardian *g, uid_t uid);
/* Points the spawn hooks of s, and the uid hook of its sandbox (once made by
 * executor_settings_init), at g. A NULL g tells nobody. */
void guardian_attach(struct guardian *g, struct executor_settings *s);
/* A clean stop: the guardian exits without killing anything. */
void guardian_stop(struct guardian *g);

/* The guardian process's body: reads its orders from fd. */
int guardian_main(int fd);

/* What the orders read so far say (the guardian's side of the protocol). */
struct guardian_ids {
    int64_t *items; /* unordered; one entry per "+" not yet undone */
    size_t len, cap;
};
struct guardian_orders {
    struct guardian_ids groups, uids;
    bool bye;
};

/* Applies one order line, without its newline: "+PGID", "-PGID", "+uUID",
 * "-uUID" or "bye". Returns false (and changes nothing) for a line not
 * understood, a group below 2 or a uid of 0 (never to be killed). */
bool guardian_orders_apply(struct guardian_orders *o, const char *line);
void guardian_orders_free(struct guardian_orders *o);

#endif
