/* The named prepared statements of the database connection (see
 * statements.h). */
#include "db/statements.h"

#include <openssl/evp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"

/* FNV-1a: a cheap first test before the texts are compared. */
static uint64_t sql_hash(const char *sql)
{
    uint64_t h = 14695981039346656037u;
    for (const unsigned char *p = (const unsigned char *)sql; *p; p++)
        h = (h ^ *p) * 1099511628211u;
    return h;
}

static void statement_name(const char *sql, char *name, size_t size)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!EVP_Digest(sql, strlen(sql), digest, &len, EVP_sha256(), NULL))
        abort(); /* SHA-256 is always there; only allocation can fail */
    int n = snprintf(name, size, "attune_");
    for (unsigned i = 0; i < 12 && (size_t)n + 2 < size; i++)
        n += snprintf(name + n, size - (size_t)n, "%02x", digest[i]);
}

struct db_statement *db_statements_get(struct db_statements *s, const char *sql)
{
    uint64_t hash = sql_hash(sql);
    for (size_t i = 0; i < s->count; i++) {
        struct db_statement *st = &s->items[i];
        if (st->hash == hash && strcmp(st->sql, sql) == 0)
            return st;
    }
    if (s->count == DB_STATEMENTS_MAX)
        return NULL;
    struct db_statement *st = &s->items[s->count++];
    *st = (struct db_statement){.sql = xstrdup(sql), .hash = hash};
    statement_name(sql, st->name, sizeof(st->name));
    return st;
}

void db_statements_reset(struct db_statements *s)
{
    for (size_t i = 0; i < s->count; i++)
        s->items[i].state = DB_STATEMENT_UNPREPARED;
}

void db_statements_clear(struct db_statements *s)
{
    for (size_t i = 0; i < s->count; i++) {
        free(s->items[i].sql);
        free(s->items[i].failed_error);
    }
    memset(s, 0, sizeof(*s));
}

void db_statement_answered(struct db_statement *st, unsigned number, const char *error)
{
    if (error) {
        free(st->failed_error);
        st->failed_error = xstrdup(error);
        st->failed = number;
    }
    if (number != st->prepares)
        return; /* a newer Prepare (on a newer connection) decides */
    st->state = error ? DB_STATEMENT_UNPREPARED : DB_STATEMENT_PREPARED;
}

const char *db_statement_failure(const struct db_statement *st, unsigned number)
{
    return st->failed && st->failed == number ? st->failed_error : NULL;
}

bool db_statement_send(PGconn *conn, struct db_statement *st, int nparams,
                       const char *const *values, unsigned *number, bool *prepare_sent)
{
    *prepare_sent = false;
    if (st->state == DB_STATEMENT_UNPREPARED) {
        if (!PQsendPrepare(conn, st->name, st->sql, nparams, NULL))
            return false;
        st->state = DB_STATEMENT_PREPARING;
        st->prepares++;
        *prepare_sent = true;
        /* What tests count: one per statement and connection. */
        log_debug("preparing statement %s on this connection: %.60s", st->name, st->sql);
    }
    *number = st->prepares;
    return PQsendQueryPrepared(conn, st->name, nparams, values, NULL, NULL, 0);
}

bool db_statement_missing(const PGresult *res)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    return state && (strcmp(state, "26000") == 0 || strcmp(state, "42P05") == 0);
}
