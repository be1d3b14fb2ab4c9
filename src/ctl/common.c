/* What attunectl's subcommands share (see ctl.h): messages, the blocking
 * database connection, and parameterized statements that report their errors. */
#include "ctl/ctl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void vprint(const char *prefix, const char *fmt, va_list ap)
{
    fprintf(stderr, "attunectl: %s", prefix);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int ctl_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprint("", fmt, ap);
    va_end(ap);
    return CTL_EXIT_FAILED;
}

int ctl_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprint("", fmt, ap);
    va_end(ap);
    return CTL_EXIT_USAGE;
}

void ctl_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprint("warning: ", fmt, ap);
    va_end(ap);
}

static void first_line(const char *text, char *buf, size_t buflen)
{
    size_t n = strcspn(text, "\n");
    while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\r'))
        n--;
    snprintf(buf, buflen, "%.*s", (int)n, text);
}

const char *ctl_db_message(PGconn *db, const PGresult *res, char *buf, size_t buflen)
{
    const char *text = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!text || !*text)
        text = PQerrorMessage(db);
    first_line(text && *text ? text : "unknown error", buf, buflen);
    /* libpq prefixes some messages with "ERROR:  " */
    if (str_starts_with(buf, "ERROR:  "))
        memmove(buf, buf + 8, strlen(buf + 8) + 1);
    return buf;
}

/* Notices ("schema already exists, skipping") are not for the operator. */
static void quiet_notices(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* database.schema of the connection ctl_db_connect made: statements are
 * written for the default schema and rewritten for this one. */
static char ctl_schema[64] = DB_DEFAULT_SCHEMA;

PGconn *ctl_db_connect(const struct config *cfg)
{
    char timeout[16], msg[512];
    snprintf(timeout, sizeof(timeout), "%d", cfg->database_connect_timeout);
    snprintf(ctl_schema, sizeof(ctl_schema), "%s", cfg->database_schema);
    char *options = db_schema_options(cfg->database_schema);
    const char *const keys[] = {"dbname", "connect_timeout", "application_name", "options", NULL};
    const char *const values[] = {cfg->database_url, timeout, "attunectl", options, NULL};
    PGconn *db = PQconnectdbParams(keys, values, 1);
    free(options);
    if (!db || PQstatus(db) != CONNECTION_OK) {
        ctl_error("cannot connect to the database (database.url): %s",
                  db ? ctl_db_message(db, NULL, msg, sizeof(msg)) : "out of memory");
        PQfinish(db);
        return NULL;
    }
    PQsetNoticeProcessor(db, quiet_notices, NULL);
    return db;
}

PGresult *ctl_query_quiet(PGconn *db, const char *sql, int nparams, const char *const *values)
{
    char *text = db_schema_sql(sql, ctl_schema);
    PGresult *res = PQexecParams(db, text, nparams, NULL, values, NULL, NULL, 0);
    free(text);
    return res;
}

PGresult *ctl_query(PGconn *db, const char *what, const char *sql, int nparams,
                    const char *const *values)
{
    char msg[512];
    PGresult *res = ctl_query_quiet(db, sql, nparams, values);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return res;
    ctl_error("%s: %s", what, ctl_db_message(db, res, msg, sizeof(msg)));
    PQclear(res);
    return NULL;
}

int ctl_exec(PGconn *db, const char *what, const char *sql, int nparams, const char *const *values)
{
    PGresult *res = ctl_query(db, what, sql, nparams, values);
    if (!res)
        return -1;
    PQclear(res);
    return 0;
}

bool ctl_status_is_final(const char *status)
{
    static const char *const finals[] = {"completed", "failed", "timeout", "cancelled",
                                         "abandoned"};
    for (size_t i = 0; i < ARRAY_SIZE(finals); i++)
        if (strcmp(status, finals[i]) == 0)
            return true;
    return false;
}

bool ctl_parse_id(const char *text, long long *out)
{
    int64_t v;
    if (!parse_int64(text, &v) || v <= 0)
        return false;
    *out = (long long)v;
    return true;
}
