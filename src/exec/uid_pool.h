/* The uids of sandbox.uid_range handed to running executions: one free uid
 * per execution, never two executions on one uid (of this process or of any
 * other worker or run-action of the host: see uid_lock.h), released when it
 * ends. */
#ifndef ATTUNE_EXEC_UID_POOL_H
#define ATTUNE_EXEC_UID_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct uid_pool {
    uint32_t first, count;
    uint32_t next; /* offset tried first: uids are handed out in turn */
    struct uid_pool_entry {
        uid_t uid;
        int lock_fd; /* the host-wide claim, -1 without one */
    } * in_use;      /* unordered */
    size_t n_in_use, cap;
};

void uid_pool_init(struct uid_pool *pool, uint32_t first, uint32_t count);
void uid_pool_free(struct uid_pool *pool);

/* Takes a free uid, the one after the last handed out where possible, so
 * that a uid just released is reused last, skipping uids another process
 * holds. Returns 0, or -EAGAIN when every uid of the range is taken. */
int uid_pool_acquire(struct uid_pool *pool, uid_t *uid);

/* Gives uid back; a uid that was not taken is ignored. */
void uid_pool_release(struct uid_pool *pool, uid_t uid);

bool uid_pool_contains(const struct uid_pool *pool, uid_t uid);
bool uid_pool_taken(const struct uid_pool *pool, uid_t uid);

#endif
