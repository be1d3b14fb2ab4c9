/* Reconnecting to a server (the database, the broker) that went away: capped
 * exponential backoff with jitter, and the count of failed attempts the log
 * tells. */
#ifndef ATTUNE_CORE_BACKOFF_H
#define ATTUNE_CORE_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

struct backoff {
    uint64_t min_ms;
    uint64_t max_ms;
    uint64_t step_ms;  /* the delay before jitter of the next attempt */
    unsigned failures; /* attempts failed since the last connection */
};

void backoff_init(struct backoff *b, uint64_t min_ms, uint64_t max_ms);
/* The delay before the next attempt: the current step plus up to half of it
 * at random, so that many workers do not return at once; the step then
 * doubles, up to max_ms. */
uint64_t backoff_next_ms(struct backoff *b);
/* Back to min_ms, once a connection succeeded. */
void backoff_reset(struct backoff *b);

/* The connection to server ("database", "broker") was lost (was_connected)
 * or an attempt failed, for why: counts the failure, logs it (a warning for
 * a loss or the first failure, debug for each retry after) and returns the
 * delay in ms before the next attempt. */
uint64_t backoff_failed(struct backoff *b, const char *server, bool was_connected, const char *why);
/* Connected: logs after how many failed attempts, and starts over. */
void backoff_connected(struct backoff *b, const char *server);

#endif
