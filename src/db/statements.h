/* The named prepared statements of the database connection (db.c): each SQL
 * text is parsed and planned by the server once per connection, not at every
 * execution. The name is a digest of the text, so that one name means one
 * text on any server session, also behind a pooler that shares sessions. */
#ifndef ATTUNE_DB_STATEMENTS_H
#define ATTUNE_DB_STATEMENTS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The worker has about twenty statements; texts past this many are sent
 * unnamed (parsed at every execution), as all were before. */
#define DB_STATEMENTS_MAX 48

enum db_statement_state {
    DB_STATEMENT_UNPREPARED, /* not on this connection: its next use prepares it */
    DB_STATEMENT_PREPARING,  /* its Prepare is sent, unanswered: later uses only execute */
    DB_STATEMENT_PREPARED,
};

struct db_statement {
    char *sql;
    uint64_t hash; /* of sql, for the lookup */
    char name[32]; /* "attune_" and 24 hex digits of the SHA-256 of sql */
    enum db_statement_state state;
    unsigned prepares;  /* Prepares sent, on every connection: each one's number */
    unsigned failed;    /* the number of the last Prepare that failed, 0 for none */
    char *failed_error; /* its message, for the uses sent before it was answered */
};

struct db_statements {
    struct db_statement items[DB_STATEMENTS_MAX];
    size_t count;
};

/* The statement of sql, added (unprepared) when new; NULL when there is no
 * room for another. The pointer stays valid until db_statements_clear. */
struct db_statement *db_statements_get(struct db_statements *s, const char *sql);
/* The connection closed: none is prepared on the next one. */
void db_statements_reset(struct db_statements *s);
void db_statements_clear(struct db_statements *s);

/* Prepare number `number` of st was answered: error NULL for success, else
 * the server's message. A Prepare sent after it decides the state. */
void db_statement_answered(struct db_statement *st, unsigned number, const char *error);
/* The message of the failed Prepare a use numbered `number` relied on (sent
 * after that Prepare, before its answer), or NULL. */
const char *db_statement_failure(const struct db_statement *st, unsigned number);

/* Queues a use of st on conn (pipeline mode) with these parameters: st's
 * Prepare first when conn does not have it yet (*prepare_sent true; its
 * answer comes before the use's), then its execution; *number is the
 * Prepare the use relies on. False when libpq refused (PQerrorMessage). */
bool db_statement_send(PGconn *conn, struct db_statement *st, int nparams,
                       const char *const *values, unsigned *number, bool *prepare_sent);

/* Whether res says a prepared statement the session should hold is missing,
 * or one about to be prepared is there already: the session is not the
 * connection's alone (a pooler in transaction mode that does not keep
 * prepared statements). */
bool db_statement_missing(const PGresult *res);

#endif
