/* The worker's presence in the database (see registration.h): what the
 * statements in db/workers and db/executions need, and the log lines. */
#include "worker/registration.h"

#include <stdlib.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"

#define ABANDONED_ERROR "the worker stopped while the action was running (worker restarted)"
/* How long an interpreter may take to tell its version before it is left
 * out of runtime_versions (a cold pyenv shim takes half a second). */
#define REGISTRATION_PROBE_MS 3000

static json_t *registration_capabilities(const struct config *cfg, const struct registry *registry,
                                         const char *host)
{
    return json_pack("{s:i, s:s, s:o, s:o, s:s, s:i}", "max_concurrent_executions",
                     cfg->max_concurrent_tasks, "worker_version", ATTUNE_VERSION, "runtimes",
                     registry_capability_runtimes(registry), "runtime_versions",
                     registry_capability_versions(registry), "host", host, "pid", (int)getpid());
}

void registration_register(struct db *db, const struct config *cfg, struct registry *registry,
                           db_worker_fn done, void *userdata)
{
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    /* Once: a registration again after a reconnection reuses the versions. */
    registry_detect_versions(registry, REGISTRATION_PROBE_MS);
    json_t *capabilities = registration_capabilities(cfg, registry, host);
    struct worker_row row = {
        .name = cfg->worker_name,
        .worker_type = cfg->worker_type,
        .host = host,
        .capabilities = capabilities,
    };
    db_worker_register(db, &row, done, userdata);
    json_decref(capabilities);
}

/* The caller's callback, to log an error before handing the rows on. */
struct abandon_call {
    db_abandoned_fn done;
    void *userdata;
};

static void on_abandoned(const struct abandoned_row *rows, size_t count, const char *error,
                         void *userdata)
{
    struct abandon_call *c = userdata;
    if (error)
        log_error("cannot finish executions left running: %s", error);
    c->done(rows, count, error, c->userdata);
    free(c);
}

void registration_abandon_stale(struct db *db, int64_t worker_id, db_abandoned_fn done,
                                void *userdata)
{
    struct abandon_call *c = xcalloc(1, sizeof(*c));
    c->done = done;
    c->userdata = userdata;
    db_execution_abandon_stale(db, worker_id, ABANDONED_ERROR, on_abandoned, c);
}

static void on_heartbeat(int64_t worker_id, const char *error, void *userdata)
{
    (void)worker_id;
    (void)userdata;
    if (error)
        log_warn("heartbeat not recorded: %s", error);
}

void registration_heartbeat(struct db *db, int64_t worker_id)
{
    /* Never `busy`, even with every slot taken: Attune's scheduler only picks
     * active workers, and a full one still queues what it is sent. */
    db_worker_heartbeat(db, worker_id, "active", on_heartbeat, NULL);
}

struct deregister_call {
    void (*done)(void *userdata);
    void *userdata;
};

static void on_deregistered(int64_t worker_id, const char *error, void *userdata)
{
    struct deregister_call *c = userdata;
    (void)worker_id;
    if (error)
        log_warn("cannot mark the worker inactive: %s", error);
    c->done(c->userdata);
    free(c);
}

void registration_deregister(struct db *db, int64_t worker_id, void (*done)(void *userdata),
                             void *userdata)
{
    struct deregister_call *c = xcalloc(1, sizeof(*c));
    c->done = done;
    c->userdata = userdata;
    db_worker_deactivate(db, worker_id, on_deregistered, c);
}
