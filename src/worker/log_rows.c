/* The log rows of the service's executions (see log_rows.h). */
#include "worker/log_rows.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "db/log_artifacts.h"
#include "worker/artifacts.h"

/* A version number taken by a concurrent writer leaves a stream without its
 * rows; the statement is sent again this many times in all. */
#define LOG_ROWS_ATTEMPTS 3
/* How long the artifacts of an action are taken as known: the statement that
 * finds them also gives them the retention the action sets now, so a change
 * of it reaches the artifacts within this time (Attune's worker caches the
 * action itself for 30 s). */
#define LOG_ROWS_ARTIFACTS_TTL_MS 60000
#define LOG_ROWS_ARTIFACTS_MAX 256

enum log_rows_state { LOG_ROWS_UNKNOWN, LOG_ROWS_READY, LOG_ROWS_UNAVAILABLE };

/* One execution whose action has started. */
struct log_rows_entry {
    struct log_rows_entry *next;
    const void *owner;
    const struct execution *ex;
    int64_t execution_id;
    char *action_ref;
    char *stdout_path, *stderr_path; /* relative to artifacts_dir */
    int attempts;
    bool known;       /* the statement in flight named the artifacts */
    bool failed;      /* the rows could not be created */
    bool seal_handed; /* log_rows_seal gave it out */
    json_t *seal;     /* what it gave out, for rows made after the final UPDATE */
};

/* The stdout and stderr artifacts of an action, as a recent answer gave them. */
struct log_rows_artifacts {
    struct log_rows_artifacts *next;
    char *action_ref;
    int64_t stdout_artifact, stderr_artifact;
    uint64_t expires_ms;
};

struct log_rows {
    struct db *db;
    const struct config *cfg;
    enum log_rows_state state;
    struct log_rows_entry *entries;
    struct log_rows_artifacts *artifacts; /* newest first */
};

/* What a create statement carries: found again by execution id, since the
 * entry may be gone by the time a late answer comes; and the seal, when the
 * final UPDATE went before these rows existed. */
struct log_rows_ticket {
    struct log_rows *lr;
    int64_t execution_id;
    json_t *seal;
};

struct log_rows *log_rows_new(struct db *db, const struct config *cfg)
{
    if (!cfg->log_rows)
        return NULL;
    struct log_rows *lr = xcalloc(1, sizeof(*lr));
    lr->db = db;
    lr->cfg = cfg;
    return lr;
}

static void entry_free(struct log_rows_entry *e)
{
    json_decref(e->seal);
    free(e->action_ref);
    free(e->stdout_path);
    free(e->stderr_path);
    free(e);
}

static void artifacts_free(struct log_rows_artifacts *a)
{
    free(a->action_ref);
    free(a);
}

void log_rows_free(struct log_rows *lr)
{
    if (!lr)
        return;
    while (lr->entries) {
        struct log_rows_entry *e = lr->entries;
        lr->entries = e->next;
        entry_free(e);
    }
    while (lr->artifacts) {
        struct log_rows_artifacts *a = lr->artifacts;
        lr->artifacts = a->next;
        artifacts_free(a);
    }
    free(lr);
}

/* Known artifacts */

/* The link that points at the action's artifacts, or at the list's end. */
static struct log_rows_artifacts **artifacts_link(struct log_rows *lr, const char *action_ref)
{
    struct log_rows_artifacts **p = &lr->artifacts;
    while (*p && strcmp((*p)->action_ref, action_ref) != 0)
        p = &(*p)->next;
    return p;
}

static void artifacts_forget(struct log_rows *lr, const char *action_ref)
{
    struct log_rows_artifacts **p = artifacts_link(lr, action_ref);
    if (*p) {
        struct log_rows_artifacts *a = *p;
        *p = a->next;
        artifacts_free(a);
    }
}

/* Drops what has expired, and the oldest beyond the bound. */
static void artifacts_trim(struct log_rows *lr, uint64_t now)
{
    size_t kept = 0;
    for (struct log_rows_artifacts **p = &lr->artifacts; *p;) {
        if ((*p)->expires_ms <= now || kept >= LOG_ROWS_ARTIFACTS_MAX - 1) {
            struct log_rows_artifacts *a = *p;
            *p = a->next;
            artifacts_free(a);
        } else {
            kept++;
            p = &(*p)->next;
        }
    }
}

static void artifacts_remember(struct log_rows *lr, const char *action_ref,
                               const struct log_artifacts_answer *answer)
{
    uint64_t now = time_monotonic_ms();
    artifacts_forget(lr, action_ref);
    artifacts_trim(lr, now);
    struct log_rows_artifacts *a = xcalloc(1, sizeof(*a));
    a->action_ref = xstrdup(action_ref);
    a->stdout_artifact = answer->stdout_artifact;
    a->stderr_artifact = answer->stderr_artifact;
    a->expires_ms = now + LOG_ROWS_ARTIFACTS_TTL_MS;
    a->next = lr->artifacts;
    lr->artifacts = a;
}

static const struct log_rows_artifacts *artifacts_known(struct log_rows *lr, const char *action_ref)
{
    struct log_rows_artifacts *a = *artifacts_link(lr, action_ref);
    return a && a->expires_ms > time_monotonic_ms() ? a : NULL;
}

static void on_probed(const char *error, void *userdata)
{
    struct log_rows *lr = userdata;
    if (!error) {
        lr->state = LOG_ROWS_READY;
        return;
    }
    lr->state = LOG_ROWS_UNAVAILABLE;
    log_warn("log rows are off: the database cannot take Attune's artifact, artifact_version "
             "and log_stream rows (%s); run `attunectl migrate`, or set artifacts.log_rows: false",
             error);
}

void log_rows_probe(struct log_rows *lr)
{
    if (lr)
        db_log_artifacts_probe(lr->db, on_probed, lr);
}

/* Creation */

static struct log_rows_entry *entry_by_id(struct log_rows *lr, int64_t execution_id)
{
    for (struct log_rows_entry *e = lr->entries; e; e = e->next)
        if (e->execution_id == execution_id)
            return e;
    return NULL;
}

static void entry_send(struct log_rows *lr, struct log_rows_entry *e);

/* What an answer leaves to do: nothing, the statement again (finding the
 * artifacts anew), or a warning. */
static void entry_answered(struct log_rows *lr, struct log_rows_entry *e,
                           const struct log_artifacts_answer *answer, const char *error)
{
    bool done = !error && answer->streams >= 2;
    if (done && !e->known)
        artifacts_remember(lr, e->action_ref, answer);
    if (done)
        return;
    /* A known artifact may be gone (Attune's retention deletes empty ones).
     * Rows made after the final UPDATE took the seal are sealed on their own. */
    artifacts_forget(lr, e->action_ref);
    if (e->attempts < LOG_ROWS_ATTEMPTS && (e->known || !error) && (!e->seal_handed || e->seal)) {
        entry_send(lr, e);
    } else if (error) {
        e->failed = true;
        log_warn("execution %lld: its log rows could not be recorded: %s",
                 (long long)e->execution_id, error);
    } else {
        log_warn("execution %lld: %d of its 2 log rows recorded (their version numbers kept "
                 "being taken by other writers)",
                 (long long)e->execution_id, answer->streams);
    }
}

static void on_late_sealed(const char *error, void *userdata)
{
    int64_t *execution_id = userdata;
    if (error)
        log_warn("execution %lld: its log rows could not be sealed: %s", (long long)*execution_id,
                 error);
    free(execution_id);
}

static void ticket_seal(struct log_rows_ticket *t)
{
    char *text = json_dumps(t->seal, JSON_COMPACT);
    int64_t *id = xmalloc(sizeof(*id));
    *id = t->execution_id;
    db_log_artifacts_seal(t->lr->db, t->execution_id, text, on_late_sealed, id);
    free(text);
}

static void on_created(const struct log_artifacts_answer *answer, const char *error, void *userdata)
{
    struct log_rows_ticket *t = userdata;
    struct log_rows_entry *e = entry_by_id(t->lr, t->execution_id);
    if (t->seal && !error && answer->streams >= 2)
        ticket_seal(t);
    else if (e)
        entry_answered(t->lr, e, answer, error);
    json_decref(t->seal);
    free(t);
}

static void entry_send(struct log_rows *lr, struct log_rows_entry *e)
{
    struct log_rows_ticket *t = xcalloc(1, sizeof(*t));
    t->lr = lr;
    t->execution_id = e->execution_id;
    t->seal = e->seal_handed ? json_incref(e->seal) : NULL;
    const struct log_rows_artifacts *known = artifacts_known(lr, e->action_ref);
    struct log_artifacts_request req = {
        .execution_id = e->execution_id,
        .stdout_path = e->stdout_path,
        .stderr_path = e->stderr_path,
        .retention_policy = lr->cfg->log_retention_policy,
        .retention_limit = lr->cfg->log_retention_limit,
        .stdout_artifact = known ? known->stdout_artifact : 0,
        .stderr_artifact = known ? known->stderr_artifact : 0,
    };
    e->known = known != NULL;
    e->attempts++;
    db_log_artifacts_create(lr->db, &req, on_created, t);
}

void log_rows_started(struct log_rows *lr, const void *owner, int64_t execution_id,
                      const char *action_ref, const char *execution_dir_name,
                      const struct execution *ex)
{
    if (!lr || lr->state != LOG_ROWS_READY)
        return;
    struct log_rows_entry *e = xcalloc(1, sizeof(*e));
    e->owner = owner;
    e->ex = ex;
    e->execution_id = execution_id;
    e->action_ref = xstrdup(action_ref);
    e->stdout_path =
        artifacts_relative_path(lr->cfg->worker_name, execution_dir_name, "stdout.log");
    e->stderr_path =
        artifacts_relative_path(lr->cfg->worker_name, execution_dir_name, "stderr.log");
    e->next = lr->entries;
    lr->entries = e;
    entry_send(lr, e);
}

/* The seal */

/* Adds {"path", "size", "sha256", "truncated"} of one log to seal, unless
 * a write to it failed: what the file holds is not known then. */
static void seal_add(json_t *seal, const struct log_rows_entry *e, bool is_stderr)
{
    const char *stream = is_stderr ? "stderr" : "stdout";
    struct execution_log_digest d;
    if (!execution_log_digest(e->ex, is_stderr, &d)) {
        log_warn("execution %lld: its %s was not all written; its log rows stay pending",
                 (long long)e->execution_id, stream);
        return;
    }
    json_object_set_new(
        seal, stream,
        json_pack("{s:s, s:I, s:s, s:b}", "path", is_stderr ? e->stderr_path : e->stdout_path,
                  "size", (json_int_t)d.size, "sha256", d.sha256, "truncated", d.truncated));
}

json_t *log_rows_seal(struct log_rows *lr, const void *owner)
{
    if (!lr)
        return NULL;
    struct log_rows_entry *e = lr->entries;
    while (e && e->owner != owner)
        e = e->next;
    if (!e || e->failed || e->seal_handed)
        return NULL;
    e->seal_handed = true;
    json_t *seal = json_object();
    seal_add(seal, e, false);
    seal_add(seal, e, true);
    if (json_object_size(seal) == 0) {
        json_decref(seal);
        return NULL;
    }
    e->seal = json_incref(seal);
    return seal;
}

void log_rows_forget(struct log_rows *lr, const struct execution *ex)
{
    if (!lr)
        return;
    for (struct log_rows_entry **p = &lr->entries; *p; p = &(*p)->next) {
        if ((*p)->ex == ex) {
            struct log_rows_entry *e = *p;
            *p = e->next;
            entry_free(e);
            return;
        }
    }
}
