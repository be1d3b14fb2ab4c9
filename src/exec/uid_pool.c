/* The uid allocator of the sandbox's uid mode (see uid_pool.h). At most
 * max_concurrent_tasks uids are taken at once, so a small list is enough. */
#include "exec/uid_pool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"
#include "exec/uid_lock.h"

void uid_pool_init(struct uid_pool *pool, uint32_t first, uint32_t count)
{
    memset(pool, 0, sizeof(*pool));
    pool->first = first;
    pool->count = count;
}

void uid_pool_free(struct uid_pool *pool)
{
    for (size_t i = 0; i < pool->n_in_use; i++)
        if (pool->in_use[i].lock_fd >= 0)
            close(pool->in_use[i].lock_fd);
    free(pool->in_use);
    memset(pool, 0, sizeof(*pool));
}

bool uid_pool_contains(const struct uid_pool *pool, uid_t uid)
{
    return pool->count > 0 && uid >= pool->first && uid - pool->first < pool->count;
}

bool uid_pool_taken(const struct uid_pool *pool, uid_t uid)
{
    for (size_t i = 0; i < pool->n_in_use; i++)
        if (pool->in_use[i].uid == uid)
            return true;
    return false;
}

int uid_pool_acquire(struct uid_pool *pool, uid_t *uid)
{
    if (pool->n_in_use >= pool->count)
        return -EAGAIN;
    for (uint32_t tries = 0; tries < pool->count; tries++) {
        uid_t candidate = pool->first + pool->next;
        pool->next = pool->next + 1 < pool->count ? pool->next + 1 : 0;
        if (uid_pool_taken(pool, candidate))
            continue;
        int lock_fd = uid_lock_take(candidate);
        if (lock_fd == -EADDRINUSE)
            continue; /* another worker's execution runs on it */
        if (pool->n_in_use == pool->cap) {
            pool->cap = pool->cap ? pool->cap * 2 : 16;
            pool->in_use = xrealloc(pool->in_use, pool->cap * sizeof(*pool->in_use));
        }
        /* Without a claim (no descriptor left, say) the uid is still ours
         * within this process, as before claims existed. */
        pool->in_use[pool->n_in_use++] =
            (struct uid_pool_entry){.uid = candidate, .lock_fd = lock_fd < 0 ? -1 : lock_fd};
        *uid = candidate;
        return 0;
    }
    return -EAGAIN;
}

void uid_pool_release(struct uid_pool *pool, uid_t uid)
{
    for (size_t i = 0; i < pool->n_in_use; i++) {
        if (pool->in_use[i].uid == uid) {
            if (pool->in_use[i].lock_fd >= 0)
                close(pool->in_use[i].lock_fd);
            pool->in_use[i] = pool->in_use[--pool->n_in_use];
            return;
        }
    }
}
