/* The worker service: wires configuration, database, broker, runtimes and
 * the executor together on one event loop; registers the worker, keeps its
 * heartbeat, runs execution requests, and shuts down gracefully. */
#ifndef ATTUNE_WORKER_SERVICE_H
#define ATTUNE_WORKER_SERVICE_H

#include "core/config.h"

/* Runs until stopped by SIGTERM/SIGINT; returns the exit status. */
int service_run(const struct config *cfg);

#endif
