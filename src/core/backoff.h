/* Capped exponential backoff with jitter for reconnecting to a server (the
 * database, the broker) that went away. */
#ifndef ATTUNE_CORE_BACKOFF_H
#define ATTUNE_CORE_BACKOFF_H

#include <stdint.h>

struct backoff {
    uint64_t min_ms;
    uint64_t max_ms;
    uint64_t step_ms; /* the delay before jitter of the next attempt */
};

void backoff_init(struct backoff *b, uint64_t min_ms, uint64_t max_ms);
/* The delay before the next attempt: the current step plus up to half of it
 * at random, so that many workers do not return at once; the step then
 * doubles, up to max_ms. */
uint64_t backoff_next_ms(struct backoff *b);
/* Back to min_ms, once a connection succeeded. */
void backoff_reset(struct backoff *b);

#endif
