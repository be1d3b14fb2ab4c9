/* Pending cancel requests (see cancels.h): a small array, oldest first. */
#include "worker/cancels.h"

#include <string.h>

static void cancels_remove(struct cancels *c, size_t i)
{
    memmove(&c->items[i], &c->items[i + 1], (c->count - i - 1) * sizeof(c->items[0]));
    c->count--;
}

static void cancels_expire(struct cancels *c, uint64_t now_ms)
{
    size_t old = 0;
    while (old < c->count && now_ms - c->items[old].received_ms >= CANCELS_MAX_AGE_MS)
        old++;
    memmove(&c->items[0], &c->items[old], (c->count - old) * sizeof(c->items[0]));
    c->count -= old;
}

static size_t cancels_find(const struct cancels *c, int64_t execution_id)
{
    size_t i = 0;
    while (i < c->count && c->items[i].execution_id != execution_id)
        i++;
    return i;
}

void cancels_add(struct cancels *c, int64_t execution_id, uint64_t now_ms)
{
    cancels_expire(c, now_ms);
    size_t i = cancels_find(c, execution_id);
    if (i < c->count)
        cancels_remove(c, i);
    else if (c->count == CANCELS_MAX)
        cancels_remove(c, 0);
    c->items[c->count++] = (struct pending_cancel){execution_id, now_ms};
}

bool cancels_take(struct cancels *c, int64_t execution_id, uint64_t now_ms)
{
    cancels_expire(c, now_ms);
    size_t i = cancels_find(c, execution_id);
    if (i == c->count)
        return false;
    cancels_remove(c, i);
    return true;
}
