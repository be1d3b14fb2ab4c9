/* The worker's HTTP endpoint (observability.listen): GET /metrics in
 * Prometheus' text format, /healthz (answers while the loop turns) and
 * /readyz (200 only while the worker can take work). libmicrohttpd in its
 * external epoll mode, driven from the event loop: no thread, nothing that
 * blocks; a connection cap, a request size limit and an idle timeout. */
#ifndef ATTUNE_WORKER_OBSERVABILITY_H
#define ATTUNE_WORKER_OBSERVABILITY_H

#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#include "core/config.h"
#include "core/metrics.h" /* for whoever starts the endpoint, the counters' calls */

struct db;
struct mq;

/* What the service tells at each request. */
struct observability_status {
    /* Registered and taking work; false before (starting) and again once
     * stopping, which is told apart by having been true. */
    bool registered;
    bool paused; /* flow control: too much waits for the broker or database */
    const struct db *db;
    const struct mq *mq; /* NULL until registered */
    size_t running;      /* executions in hand */
};

typedef void (*observability_status_fn)(void *userdata, struct observability_status *st);

struct observability;

/* Listens on cfg->observability_listen ("HOST:PORT"; "": no endpoint,
 * returns NULL). A failure to listen is logged and the worker runs without
 * the endpoint. */
struct observability *observability_start(sd_event *loop, const struct config *cfg,
                                          observability_status_fn status, void *userdata);
void observability_free(struct observability *obs);

/* The same endpoint listening nowhere: each connection is handed to it by
 * observability_add_connection (the fuzz target, tests/fuzz/fuzz_http.c,
 * feeds it so). NULL when libmicrohttpd refuses. */
struct observability *observability_start_unlistening(sd_event *loop, size_t slots,
                                                      observability_status_fn status,
                                                      void *userdata);
/* Serves the connected stream socket fd, which the endpoint takes over,
 * closing it on failure too. Returns 0 or a negative errno. */
int observability_add_connection(struct observability *obs, int fd);

#endif
