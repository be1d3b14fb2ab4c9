/* The fake world the tests of worker/job drive a job in: ports that count
 * what the job did (no database, broker or process) and keep what it gave
 * the executor, the rows each event carries, and the roads that bring a
 * fresh job to each state. Included by the test_job*.c files. */
#ifndef ATTUNE_TESTS_JOB_FAKES_H
#define ATTUNE_TESTS_JOB_FAKES_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/util.h"
#include "worker/job.h"

#define WORKER_ID 7
#define EXECUTION_ID 42
#define FAKE_RUN ((void *)0x5eed)

/* What the job did to the fake world. */
struct effects {
    int claims, owner_checks, resumes, key_loads;
    int finishes, finish_checks;
    int acks, dead_letters, requeues;
    int status_msgs, completed_msgs;
    int starts, stops, releases, dones;
    char finished_status[32];    /* status of the last finish */
    char finished_error[512];    /* its result's error, "" when none */
    char status_from[32];        /* "from" of the last status message */
    char status_to[32];          /* "to" of the last status message */
    char completed_status[32];   /* status of the completed message */
    int64_t completed_action_id; /* its action_id */
    int start_timeout;           /* timeout_seconds the executor was given */
    int finished_secrets;        /* secret values the last finish wrote */
    uint64_t stop_grace_ms;      /* the grace of the last stop */
};

/* What the executor was given at the last start (copies). */
struct started {
    json_t *params, *secrets, *context, *runtime_config;
    char *pack_dir, *entry_point, *digest, *trace_tag, *rule_ref, *trigger_ref;
    char *api_token;
    bool inline_code;
};

struct fake_io {
    struct effects fx;
    struct started got;
    json_t *finished_result, *finished_rows; /* of the last finish */
    /* The executor's result filter, applied to the result of EXITED. */
    void (*result_filter)(json_t *result, enum execution_status *status, void *userdata);
    void *result_filter_userdata;
    bool held_here;
    int start_rc;
};

static inline char *dup_opt(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static inline json_t *copy_opt(const json_t *v)
{
    return v ? json_deep_copy(v) : NULL;
}

static inline void started_clear(struct started *g)
{
    json_decref(g->params);
    json_decref(g->secrets);
    json_decref(g->context);
    json_decref(g->runtime_config);
    free(g->pack_dir);
    free(g->entry_point);
    free(g->digest);
    free(g->trace_tag);
    free(g->rule_ref);
    free(g->trigger_ref);
    free(g->api_token);
    memset(g, 0, sizeof(*g));
}

static inline void fake_claim(void *io, struct job *job, int64_t id, int64_t worker_id,
                              bool with_keys)
{
    (void)job;
    (void)with_keys;
    assert_int_equal(id, EXECUTION_ID);
    assert_int_equal(worker_id, WORKER_ID);
    ((struct fake_io *)io)->fx.claims++;
}

static inline void fake_find_owner(void *io, struct job *job, int64_t id)
{
    (void)job;
    (void)id;
    ((struct fake_io *)io)->fx.owner_checks++;
}

static inline void fake_resume(void *io, struct job *job, int64_t id, int64_t worker_id,
                               bool with_keys)
{
    (void)job;
    (void)with_keys;
    (void)id;
    assert_int_equal(worker_id, WORKER_ID);
    ((struct fake_io *)io)->fx.resumes++;
}

static inline void fake_load_keys(void *io, struct job *job, int64_t pack_id, int64_t action_id)
{
    (void)job;
    assert_int_equal(pack_id, 3);
    assert_int_equal(action_id, 5);
    ((struct fake_io *)io)->fx.key_loads++;
}

static inline void note_finish(struct effects *fx, const char *status, const json_t *result)
{
    snprintf(fx->finished_status, sizeof(fx->finished_status), "%s", status);
    const char *error = json_string_value(json_object_get(result, "error"));
    snprintf(fx->finished_error, sizeof(fx->finished_error), "%s", error ? error : "");
}

static inline void fake_finish(void *io, struct job *job, int64_t id, const char *status,
                               const json_t *result, const json_t *secrets)
{
    (void)job;
    assert_int_equal(id, EXECUTION_ID);
    struct fake_io *f = io;
    f->fx.finishes++;
    note_finish(&f->fx, status, result);
    f->fx.finished_secrets = (int)json_array_size(secrets);
    json_decref(f->finished_result);
    json_decref(f->finished_rows);
    f->finished_result = copy_opt(result);
    f->finished_rows = copy_opt(secrets);
}

static inline void fake_check_finished(void *io, struct job *job, int64_t id, const char *status,
                                       const json_t *result)
{
    (void)job;
    (void)id;
    (void)result;
    struct effects *fx = &((struct fake_io *)io)->fx;
    fx->finish_checks++;
    assert_string_equal(status, fx->finished_status);
}

static inline void fake_ack(void *io, uint64_t connection, uint64_t tag)
{
    assert_int_equal(connection, 1);
    assert_int_equal(tag, 99);
    ((struct fake_io *)io)->fx.acks++;
}

static inline void fake_reject(void *io, uint64_t connection, uint64_t tag, bool requeue)
{
    (void)connection;
    (void)tag;
    struct effects *fx = &((struct fake_io *)io)->fx;
    if (requeue)
        fx->requeues++;
    else
        fx->dead_letters++;
}

static inline void fake_publish_status(void *io, const struct report_subject *s, const char *from,
                                       const char *to)
{
    assert_int_equal(s->execution_id, EXECUTION_ID);
    struct effects *fx = &((struct fake_io *)io)->fx;
    fx->status_msgs++;
    snprintf(fx->status_from, sizeof(fx->status_from), "%s", from);
    snprintf(fx->status_to, sizeof(fx->status_to), "%s", to);
}

static inline void fake_publish_completed(void *io, const struct report_subject *s,
                                          const char *status, const json_t *result)
{
    assert_non_null(result);
    assert_int_equal(s->execution_id, EXECUTION_ID);
    struct effects *fx = &((struct fake_io *)io)->fx;
    fx->completed_msgs++;
    snprintf(fx->completed_status, sizeof(fx->completed_status), "%s", status);
    fx->completed_action_id = s->action_id;
}

static inline int fake_start(void *io, struct job *job, const struct execution_request *req,
                             void **run, char *err, size_t errlen)
{
    (void)job;
    struct fake_io *f = io;
    f->fx.starts++;
    f->fx.start_timeout = req->timeout_seconds;
    started_clear(&f->got);
    f->got = (struct started){
        .params = copy_opt(req->params),
        .secrets = copy_opt(req->secrets),
        .context = copy_opt(req->context),
        .runtime_config = copy_opt(req->action->runtime_config),
        .pack_dir = dup_opt(req->action->pack_dir),
        .entry_point = dup_opt(req->action->entry_point),
        .digest = dup_opt(req->pack_release_digest),
        .trace_tag = dup_opt(req->trace_tag),
        .rule_ref = dup_opt(req->rule_ref),
        .trigger_ref = dup_opt(req->trigger_ref),
        .api_token = dup_opt(req->api_token),
        .inline_code = req->action->inline_code,
    };
    f->result_filter = req->result_filter;
    f->result_filter_userdata = req->result_filter_userdata;
    if (f->start_rc < 0)
        return set_error(err, errlen, ENOEXEC, "cannot start: fake failure");
    *run = FAKE_RUN;
    return 0;
}

static inline void fake_stop(void *io, void *run, uint64_t grace_ms)
{
    assert_ptr_equal(run, FAKE_RUN);
    ((struct fake_io *)io)->fx.stops++;
    ((struct fake_io *)io)->fx.stop_grace_ms = grace_ms;
}

static inline void fake_release(void *io, void *run)
{
    assert_ptr_equal(run, FAKE_RUN);
    ((struct fake_io *)io)->fx.releases++;
}

static inline bool fake_held_here(void *io, int64_t id)
{
    (void)id;
    return ((struct fake_io *)io)->held_here;
}

static inline void fake_done(void *io, struct job *job)
{
    assert_int_equal(job_state(job), JOB_DONE);
    ((struct fake_io *)io)->fx.dones++;
}

static const struct job_ports fake_ports = {
    .claim = fake_claim,
    .find_owner = fake_find_owner,
    .resume = fake_resume,
    .load_keys = fake_load_keys,
    .finish = fake_finish,
    .check_finished = fake_check_finished,
    .ack = fake_ack,
    .reject = fake_reject,
    .publish_status = fake_publish_status,
    .publish_completed = fake_publish_completed,
    .start = fake_start,
    .stop = fake_stop,
    .release = fake_release,
    .held_here = fake_held_here,
    .done = fake_done,
};

/* The world one test case runs in. The rows the events carry are these;
 * a test changes them before the event that reads them. The claim's row
 * comes with the action, without its keys (the keys are then loaded). */
struct world {
    struct config cfg;
    struct fake_io io;
    struct job *job;
    char packs_dir[512];
    struct execution_row execution; /* config: w->config */
    json_t *config;
    struct execution_owner owner;
    struct action_row action;
    const struct key_row *keys;
    size_t n_keys;
};

#define REQUEST_HEAD                                                                               \
    "{\"message_id\":\"6f1c2b4e-8a9d-4e3f-b2c1-0d9e8f7a6b5c\","                                    \
    "\"correlation_id\":\"7a2d3c5f-9b0e-4f40-83d2-1e0f9a8b7c6d\","                                 \
    "\"message_type\":\"ExecutionScheduled\",\"version\":\"1.0\","                                 \
    "\"timestamp\":\"2026-01-27T10:00:00Z\",\"headers\":{},"                                       \
    "\"payload\":{\"execution_id\":42,\"worker_id\":7,\"action_ref\":\"testpack.echo\","

static const char valid_request[] = REQUEST_HEAD "\"config\":null}}";

/* The configuration keeps its secrets in secmem: set them as the programs do. */
static inline void set_encryption_key(struct config *cfg, const char *key)
{
    char err[256];
    assert_int_equal(config_set(cfg, "security.encryption_key", key ? key : "", err, sizeof(err)),
                     0);
}

/* Opens the world on body, with packs under packs_dir (NULL: the fixtures). */
static inline void world_open_in(struct world *w, const char *body, const char *packs_dir)
{
    memset(w, 0, sizeof(*w));
    config_init_defaults(&w->cfg);
    const char *src = getenv("ATTUNE_SOURCE_DIR");
    snprintf(w->packs_dir, sizeof(w->packs_dir), "%s/tests/fixtures/packs", src ? src : ".");
    free(w->cfg.packs_base_dir);
    w->cfg.packs_base_dir = xstrdup(packs_dir ? packs_dir : w->packs_dir);
    free(w->cfg.artifacts_dir);
    w->cfg.artifacts_dir = xstrdup("/nonexistent/artifacts");
    w->config = json_object();
    w->execution = (struct execution_row){
        .id = EXECUTION_ID,
        .previous_status = "scheduled",
        .action_ref = "testpack.echo",
    };
    w->owner = (struct execution_owner){
        .status = "completed", .worker_id = 3, .action_ref = "testpack.echo"};
    w->execution.action = &w->action;
    w->action = (struct action_row){
        .id = 5,
        .pack_id = 3,
        .ref = "testpack.echo",
        .pack_ref = "testpack",
        .name = "echo",
        .entry_point = "echo.sh",
        .runtime_name = "Shell",
        .timeout_seconds = 30,
        .enabled = true,
    };
    struct job_context ctx = {
        .cfg = &w->cfg, .worker_id = WORKER_ID, .ports = &fake_ports, .io = &w->io};
    struct mq_delivery d = {.connection = 1, .delivery_tag = 99, .body = body, .len = strlen(body)};
    w->job = job_start(&ctx, &d);
}

static inline void world_open(struct world *w, const char *body)
{
    world_open_in(w, body, NULL);
}

static inline void world_close(struct world *w)
{
    job_free(w->job);
    json_decref(w->config);
    started_clear(&w->io.got);
    json_decref(w->io.finished_result);
    json_decref(w->io.finished_rows);
    config_free(&w->cfg);
}

/* Sends one event; a ROW carries the world's rows. */
static inline void send_result(struct world *w, enum job_event_kind kind, json_t *result)
{
    w->execution.config = w->config;
    enum execution_status status = EXECUTION_COMPLETED;
    if (kind == JOB_EVENT_EXITED && w->io.result_filter)
        w->io.result_filter(result, &status, w->io.result_filter_userdata);
    struct job_event ev = {
        .kind = kind,
        .error = kind == JOB_EVENT_DB_ERROR ? "fake database error" : NULL,
        .execution = &w->execution,
        .owner = &w->owner,
        .keys = w->keys,
        .n_keys = w->n_keys,
        .exit_status = status,
        .result = result,
    };
    job_step(w->job, &ev);
    json_decref(result);
}

static inline void send(struct world *w, enum job_event_kind kind)
{
    send_result(w, kind, json_pack("{s:b, s:i}", "succeeded", 1, "exit_code", 0));
}

/* Brings a fresh job to a state by the ordinary road. */
static inline void world_reach(struct world *w, enum job_state target)
{
    if (target == JOB_VERIFYING) {
        world_reach(w, JOB_RECORDING);
        send(w, JOB_EVENT_NO_ROW);
        assert_int_equal(job_state(w->job), JOB_VERIFYING);
        return;
    }
    world_open(w, valid_request);
    static const struct {
        enum job_state from;
        enum job_event_kind kind;
    } road[] = {
        {JOB_CLAIMING, JOB_EVENT_ROW},
        {JOB_LOADING_KEYS, JOB_EVENT_ROW},
        {JOB_RUNNING, JOB_EVENT_EXITED},
        {JOB_RECORDING, JOB_EVENT_DB_ERROR},
    };
    if (target == JOB_CHECKING || target == JOB_RESUMING) {
        /* The roads that begin with "nothing matched". */
        send(w, JOB_EVENT_NO_ROW);
        if (target == JOB_RESUMING) {
            w->owner = (struct execution_owner){.status = "running", .worker_id = WORKER_ID};
            send(w, JOB_EVENT_ROW);
            w->owner = (struct execution_owner){.status = "completed", .worker_id = 3};
        }
        assert_int_equal(job_state(w->job), target);
        return;
    }
    for (size_t i = 0; i < ARRAY_SIZE(road) && job_state(w->job) != target; i++) {
        assert_int_equal(job_state(w->job), road[i].from);
        send(w, road[i].kind);
    }
    assert_int_equal(job_state(w->job), target);
}

#endif
