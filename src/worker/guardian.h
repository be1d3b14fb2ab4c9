/* The guardian: a tiny process the service starts beside itself that knows
 * the process group of every running action. If the worker dies without
 * saying goodbye (kill -9, a crash), the guardian sees its pipe close and kills
 * those groups at once, so no action outlives its worker. */
#ifndef ATTUNE_WORKER_GUARDIAN_H
#define ATTUNE_WORKER_GUARDIAN_H

#include <stdbool.h>
#include <sys/types.h>

struct guardian;

/* Starts the guardian process; call it before opening anything else.
 * Returns NULL, with the reason logged, if it cannot be started: the worker
 * then runs without it. */
struct guardian *guardian_start(void);
/* Tells the guardian about an action's process group, and that it ended. */
void guardian_watch(struct guardian *g, pid_t pgid);
void guardian_forget(struct guardian *g, pid_t pgid);
/* A clean stop: the guardian exits without killing anything. */
void guardian_stop(struct guardian *g);

/* The guardian process's body: reads its orders from fd. */
int guardian_main(int fd);

#endif
