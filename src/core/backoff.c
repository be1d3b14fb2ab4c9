/* Capped exponential backoff with jitter (see backoff.h). */
#include "core/backoff.h"

#include <stdlib.h>

void backoff_init(struct backoff *b, uint64_t min_ms, uint64_t max_ms)
{
    b->min_ms = min_ms;
    b->max_ms = max_ms;
    b->step_ms = min_ms;
}

uint64_t backoff_next_ms(struct backoff *b)
{
    uint64_t delay = b->step_ms + (uint64_t)rand() % (b->step_ms / 2 + 1);
    b->step_ms = b->step_ms * 2 > b->max_ms ? b->max_ms : b->step_ms * 2;
    return delay;
}

void backoff_reset(struct backoff *b)
{
    b->step_ms = b->min_ms;
}
