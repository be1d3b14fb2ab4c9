/* Cancel requests for executions no job of this worker holds: Attune's API
 * or executor may send one before the dispatch arrives, or while it is on
 * its way, and the dispatch must then not run. A request is kept for
 * CANCELS_MAX_AGE_MS, and at most CANCELS_MAX of them (the oldest go first),
 * so a flood of cancels for executions that never come costs bounded memory. */
#ifndef ATTUNE_WORKER_CANCELS_H
#define ATTUNE_WORKER_CANCELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CANCELS_MAX 1024
#define CANCELS_MAX_AGE_MS ((uint64_t)10 * 60 * 1000)

struct pending_cancel {
    int64_t execution_id;
    uint64_t received_ms;
};

/* Oldest first. Zero-initialise. */
struct cancels {
    struct pending_cancel items[CANCELS_MAX];
    size_t count;
};

/* Keeps a cancel request received at now_ms (again: its age starts anew). */
void cancels_add(struct cancels *c, int64_t execution_id, uint64_t now_ms);

/* Whether a request younger than CANCELS_MAX_AGE_MS is kept for the
 * execution; it is forgotten either way. */
bool cancels_take(struct cancels *c, int64_t execution_id, uint64_t now_ms);

#endif
