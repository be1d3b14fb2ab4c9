/* Reconnecting with capped exponential backoff (see backoff.h). */
#include "core/backoff.h"

#include <stdlib.h>

#include "core/log.h"

void backoff_init(struct backoff *b, uint64_t min_ms, uint64_t max_ms)
{
    b->min_ms = min_ms;
    b->max_ms = max_ms;
    b->step_ms = min_ms;
    b->failures = 0;
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

uint64_t backoff_failed(struct backoff *b, const char *server, bool was_connected, const char *why)
{
    b->failures++;
    if (was_connected || b->failures == 1)
        log_warn("%s connection lost: %s; reconnecting", server, why);
    else
        log_debug("%s reconnect attempt %u failed: %s", server, b->failures, why);
    return backoff_next_ms(b);
}

void backoff_connected(struct backoff *b, const char *server)
{
    if (b->failures > 0)
        log_info("%s connection restored after %u failed attempts", server, b->failures);
    b->failures = 0;
    backoff_reset(b);
}
