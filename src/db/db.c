/* The database connection on the event loop (see db.h). */
#include "db/db.h"

#include <libpq-fe.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backoff.h"
#include "core/log.h"
#include "core/util.h"
#include "db/query.h"
#include "db/schema.h"
#include "db/statements.h"

#define DB_BACKOFF_MIN_MS 100
#define DB_BACKOFF_MAX_MS 5000

struct db_query {
    struct db_query *next;
    char *sql;
    int nparams;
    char **values;
    db_result_fn done;
    void *userdata;
    uint64_t sent_us;               /* monotonic, for the debug line of each round trip */
    struct db_statement *statement; /* its named statement; NULL: sent unnamed */
    /* How it was last sent: as statement's Prepare number prepare_number and
     * an execute, or (sent_named false) unnamed. */
    bool sent_named;
    bool prepare_pending; /* the head's Prepare is answered before its query */
    unsigned prepare_number;
    char *prepare_error; /* its own Prepare failed with this message */
};

struct db {
    sd_event *loop;
    char *url;
    char *schema;
    PGconn *conn;
    bool connected;
    /* Pipeline mode: every query is sent as soon as it is queued, with a
     * sync of its own (its own transaction; an error ends only it), and the
     * answers come back in order. */
    struct db_query *unsent; /* the first query not sent on this connection */
    size_t in_flight;        /* queries sent whose sync has not come back */
    bool awaiting_sync;      /* the head's results are over: its sync comes next */
    PGresult *result;        /* the head's first result, until the query is over */
    int watched_fd;
    sd_event_source *io_src;
    sd_event_source *retry_src;
    sd_event_source *connect_timer_src;
    int connect_timeout;
    struct backoff backoff;
    struct db_query *head, *tail;
    size_t pending;
    struct db_statements statements;
    /* The server lost a prepared statement of this session (a pooler in
     * transaction mode that does not keep them): unnamed from then on. */
    bool unnamed_only;
    db_state_fn on_state;
    void *userdata;
};

static void db_start_connect(struct db *db);
static void db_send_next(struct db *db);
static int on_db_retry(sd_event_source *s, uint64_t usec, void *userdata);

static void db_query_free(struct db_query *q)
{
    for (int i = 0; i < q->nparams; i++)
        free(q->values[i]);
    free(q->values);
    free(q->sql);
    free(q->prepare_error);
    free(q);
}

static struct db_query *db_pop(struct db *db)
{
    struct db_query *q = db->head;
    db->head = q->next;
    if (!db->head)
        db->tail = NULL;
    db->pending--;
    return q;
}

static void db_watch(struct db *db, uint32_t events);

static void db_connection_lost(struct db *db, const char *reason)
{
    /* reason may be PQerrorMessage's text, which PQfinish frees. */
    char why[512];
    snprintf(why, sizeof(why), "%s", reason);
    why[strcspn(why, "\n")] = '\0';
    bool was_connected = db->connected;
    db->connected = false;
    /* Every query not answered is sent again on the next connection. */
    db->unsent = db->head;
    db->in_flight = 0;
    db->awaiting_sync = false;
    PQclear(db->result);
    db->result = NULL;
    db_statements_reset(&db->statements);
    db->io_src = sd_event_source_disable_unref(db->io_src);
    db->connect_timer_src = sd_event_source_disable_unref(db->connect_timer_src);
    db->watched_fd = -1;
    if (db->conn)
        PQfinish(db->conn);
    db->conn = NULL;
    uint64_t delay_ms = backoff_failed(&db->backoff, "database", was_connected, why);
    if (was_connected && db->on_state)
        db->on_state(db, false, db->userdata);
    sd_event_add_time_relative(db->loop, &db->retry_src, CLOCK_MONOTONIC, delay_ms * 1000, 1000,
                               on_db_retry, db);
}

static void db_became_ready(struct db *db)
{
    db->connect_timer_src = sd_event_source_disable_unref(db->connect_timer_src);
    PQsetnonblocking(db->conn, 1);
    if (!PQenterPipelineMode(db->conn)) {
        db_connection_lost(db, PQerrorMessage(db->conn));
        return;
    }
    db->connected = true;
    backoff_connected(&db->backoff, "database");
    db_watch(db, EPOLLIN);
    if (db->on_state)
        db->on_state(db, true, db->userdata);
    db_send_next(db);
}

static void db_continue_connect(struct db *db)
{
    switch (PQconnectPoll(db->conn)) {
    case PGRES_POLLING_READING:
        db_watch(db, EPOLLIN);
        break;
    case PGRES_POLLING_WRITING:
        db_watch(db, EPOLLOUT);
        break;
    case PGRES_POLLING_OK:
        db_became_ready(db);
        break;
    default:
        db_connection_lost(db, PQerrorMessage(db->conn));
        break;
    }
}

/* Results */

/* The first line of a result's error message, allocated. */
static char *db_result_error(const PGresult *res)
{
    char *msg = xstrdup(PQresultErrorMessage(res));
    msg[strcspn(msg, "\n")] = '\0';
    return msg;
}

/* The message a failed query is failed with: that of the Prepare it relied
 * on when that failed (the query itself did not run then), else its own. */
static char *db_query_error(const struct db_query *q, const PGresult *res)
{
    if (q->prepare_error)
        return xstrdup(q->prepare_error);
    const char *failure =
        q->sent_named ? db_statement_failure(q->statement, q->prepare_number) : NULL;
    return failure ? xstrdup(failure) : db_result_error(res);
}

static void db_deliver(struct db *db, PGresult *res)
{
    struct db_query *q = db_pop(db);
    ExecStatusType st = PQresultStatus(res);
    /* One line per round trip: what bench/e2e --trace counts. */
    log_debug("round trip of %llu us: %.60s",
              (unsigned long long)(time_monotonic_us() - q->sent_us), q->sql);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        q->done(db, res, NULL, q->userdata);
    } else {
        char *msg = db_query_error(q, res);
        q->done(db, NULL, msg, q->userdata);
        free(msg);
    }
    db_query_free(q);
}

/* An error that says the server is going away (admin shutdown, crash
 * recovery, connection failure): the query will be sent again, not failed. */
static bool db_error_is_transient(const struct db *db, const PGresult *res)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (!state) /* made by libpq itself: transient only if the connection broke */
        return PQstatus(db->conn) != CONNECTION_OK;
    return str_starts_with(state, "08") || str_starts_with(state, "57P");
}

/* The connection is given up for res's error: its queries are sent again. */
static void db_lost_for(struct db *db, PGresult *res)
{
    char *why = db_result_error(res);
    PQclear(res);
    db_connection_lost(db, why);
    free(why);
}

/* The session is not this connection's alone (see db_statement_missing):
 * the queries are sent again, unnamed, on a new connection. */
static void db_use_unnamed(struct db *db, PGresult *res)
{
    char *why = db_result_error(res);
    log_warn("the database session lost a prepared statement (%s; a pooler in transaction "
             "mode?): sending every statement unnamed from now on",
             why);
    free(why);
    db->unnamed_only = true;
    db_lost_for(db, res);
}

/* The head's Prepare answered (on its NULL result); its query's results come
 * next. A failed Prepare fails the query with the Prepare's message. */
static void db_finish_prepare(struct db *db)
{
    struct db_query *q = db->head;
    PGresult *res = db->result;
    db->result = NULL;
    q->prepare_pending = false;
    if (!res) {
        db_connection_lost(db, "the prepare returned no result");
        return;
    }
    if (PQresultStatus(res) == PGRES_COMMAND_OK) {
        db_statement_answered(q->statement, q->prepare_number, NULL);
    } else if (db_error_is_transient(db, res)) {
        db_lost_for(db, res);
        return;
    } else if (db_statement_missing(res)) {
        db_use_unnamed(db, res);
        return;
    } else {
        q->prepare_error = db_result_error(res);
        db_statement_answered(q->statement, q->prepare_number, q->prepare_error);
    }
    PQclear(res);
}

/* The query's first result is kept until libpq says the query is over (a
 * NULL result); PQgetResult is only called when PQisBusy says it will not
 * block. */
static void db_finish_query(struct db *db)
{
    const struct db_query *q = db->head;
    PGresult *res = db->result;
    db->result = NULL;
    if (!res) {
        db_connection_lost(db, "the query returned no result");
        return;
    }
    if (PQresultStatus(res) == PGRES_FATAL_ERROR && db_error_is_transient(db, res)) {
        db_lost_for(db, res);
        return;
    }
    if (q->sent_named && PQresultStatus(res) == PGRES_FATAL_ERROR && db_statement_missing(res) &&
        !db_statement_failure(q->statement, q->prepare_number)) {
        db_use_unnamed(db, res);
        return;
    }
    db->awaiting_sync = true;
    db_deliver(db, res);
    PQclear(res);
}

static void db_read_results(struct db *db)
{
    if (!PQconsumeInput(db->conn)) {
        db_connection_lost(db, PQerrorMessage(db->conn));
        return;
    }
    while (db->connected && db->in_flight > 0 && !PQisBusy(db->conn)) {
        PGresult *res = PQgetResult(db->conn);
        if (db->awaiting_sync) {
            if (!res || PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
                PQclear(res);
                db_connection_lost(db, "the database answered out of order");
                return;
            }
            PQclear(res);
            db->awaiting_sync = false;
            db->in_flight--;
        } else if (!res && db->head->prepare_pending) {
            db_finish_prepare(db);
        } else if (!res) {
            db_finish_query(db);
        } else if (db->result) {
            PQclear(res); /* one statement per query: later results are dropped */
        } else {
            db->result = res;
        }
    }
}

static int on_db_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    struct db *db = userdata;
    (void)s;
    (void)fd;
    if (!db->connected) {
        db_continue_connect(db);
        return 0;
    }
    if (revents & EPOLLOUT) {
        int rc = PQflush(db->conn);
        if (rc < 0) {
            db_connection_lost(db, PQerrorMessage(db->conn));
            return 0;
        }
        db_watch(db, rc ? (EPOLLIN | EPOLLOUT) : EPOLLIN);
    }
    if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
        db_read_results(db);
    return 0;
}

static void db_watch(struct db *db, uint32_t events)
{
    int fd = PQsocket(db->conn);
    if (fd != db->watched_fd) {
        /* libpq may change sockets while connecting (one per address tried). */
        db->io_src = sd_event_source_disable_unref(db->io_src);
        if (sd_event_add_io(db->loop, &db->io_src, fd, events, on_db_io, db) < 0) {
            db_connection_lost(db, "cannot watch the database socket");
            return;
        }
        db->watched_fd = fd;
        return;
    }
    sd_event_source_set_io_events(db->io_src, events);
}

/* Sends q through its named statement, or unnamed. */
static bool db_send_query(struct db *db, struct db_query *q)
{
    const char *const *values = (const char *const *)q->values;
    free(q->prepare_error);
    q->prepare_error = NULL;
    q->prepare_pending = false;
    q->sent_named = q->statement && !db->unnamed_only;
    if (!q->sent_named)
        return PQsendQueryParams(db->conn, q->sql, q->nparams, NULL, values, NULL, NULL, 0);
    return db_statement_send(db->conn, q->statement, q->nparams, values, &q->prepare_number,
                             &q->prepare_pending);
}

/* Sends every query not sent yet, without waiting for the answers before. */
static void db_send_next(struct db *db)
{
    if (!db->connected || !db->unsent)
        return;
    for (struct db_query *q = db->unsent; q; q = q->next) {
        if (!db_send_query(db, q) || !PQpipelineSync(db->conn)) {
            db_connection_lost(db, PQerrorMessage(db->conn));
            return;
        }
        q->sent_us = time_monotonic_us();
        db->in_flight++;
    }
    db->unsent = NULL;
    int rc = PQflush(db->conn);
    if (rc < 0)
        db_connection_lost(db, PQerrorMessage(db->conn));
    else
        db_watch(db, rc ? (EPOLLIN | EPOLLOUT) : EPOLLIN);
}

/* Connecting */

static int on_db_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
    struct db *db = userdata;
    (void)s;
    (void)usec;
    db->retry_src = sd_event_source_disable_unref(db->retry_src);
    db_start_connect(db);
    return 0;
}

/* libpq's own connect_timeout applies only to blocking connects. */
static int on_db_connect_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
    struct db *db = userdata;
    (void)s;
    (void)usec;
    char why[96];
    snprintf(why, sizeof(why), "no connection within %d s (database.connect_timeout)",
             db->connect_timeout);
    db_connection_lost(db, why);
    return 0;
}

static void db_start_connect(struct db *db)
{
    sd_event_add_time_relative(db->loop, &db->connect_timer_src, CLOCK_MONOTONIC,
                               (uint64_t)db->connect_timeout * 1000000u, 10000,
                               on_db_connect_timeout, db);
    char *options = db_schema_options(db->schema);
    const char *const keys[] = {"dbname", "options", "application_name", NULL};
    const char *const values[] = {db->url, options, "attune-worker", NULL};
    db->conn = PQconnectStartParams(keys, values, 1);
    free(options);
    if (!db->conn || PQstatus(db->conn) == CONNECTION_BAD) {
        db_connection_lost(db, db->conn ? PQerrorMessage(db->conn) : "out of memory");
        return;
    }
    db_watch(db, EPOLLOUT);
}

struct db *db_new(sd_event *loop, const struct config *cfg, db_state_fn on_state, void *userdata)
{
    struct db *db = xcalloc(1, sizeof(*db));
    db->connect_timeout = cfg->database_connect_timeout > 0 ? cfg->database_connect_timeout : 10;
    db->loop = sd_event_ref(loop);
    db->url = xstrdup(cfg->database_url);
    db->schema = xstrdup(cfg->database_schema ? cfg->database_schema : DB_DEFAULT_SCHEMA);
    db->unnamed_only = !cfg->database_prepared_statements;
    db->watched_fd = -1;
    backoff_init(&db->backoff, DB_BACKOFF_MIN_MS, DB_BACKOFF_MAX_MS);
    db->on_state = on_state;
    db->userdata = userdata;
    db_start_connect(db);
    return db;
}

void db_free(struct db *db)
{
    if (!db)
        return;
    while (db->head)
        db_query_free(db_pop(db));
    PQclear(db->result);
    db_statements_clear(&db->statements);
    db->io_src = sd_event_source_disable_unref(db->io_src);
    db->retry_src = sd_event_source_disable_unref(db->retry_src);
    db->connect_timer_src = sd_event_source_disable_unref(db->connect_timer_src);
    if (db->conn)
        PQfinish(db->conn);
    secure_zero(db->url, strlen(db->url));
    free(db->url);
    free(db->schema);
    sd_event_unref(db->loop);
    free(db);
}

bool db_is_connected(const struct db *db)
{
    return db->connected;
}

size_t db_pending(const struct db *db)
{
    return db->pending;
}

void db_query(struct db *db, const char *sql, int nparams, const char *const *values,
              db_result_fn done, void *userdata)
{
    struct db_query *q = xcalloc(1, sizeof(*q));
    q->sql = db_schema_sql(sql, db->schema);
    q->statement = db_statements_get(&db->statements, q->sql);
    q->nparams = nparams;
    q->values = xcalloc((size_t)nparams + 1, sizeof(char *));
    for (int i = 0; i < nparams; i++)
        q->values[i] = values[i] ? xstrdup(values[i]) : NULL;
    q->done = done;
    q->userdata = userdata;
    if (db->tail)
        db->tail->next = q;
    else
        db->head = q;
    db->tail = q;
    if (!db->unsent)
        db->unsent = q;
    db->pending++;
    db_send_next(db);
}
