/* `attunectl migrate`: applies the embedded migrations in name order, each in
 * its own transaction, recorded in attune.schema_migrations. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"
#include "ctl/migrations.h"

/* The advisory lock that serialises concurrent migrate runs ("attune" in ASCII). */
#define MIGRATE_LOCK_KEY "107152797953637"

static const char bootstrap_sql[] = "CREATE SCHEMA IF NOT EXISTS attune;"
                                    "CREATE TABLE IF NOT EXISTS attune.schema_migrations ("
                                    " name TEXT PRIMARY KEY,"
                                    " applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW())";

static bool is_applied(const PGresult *applied, const char *name)
{
    for (int i = 0; i < PQntuples(applied); i++)
        if (strcmp(PQgetvalue(applied, i, 0), name) == 0)
            return true;
    return false;
}

static bool is_known(const char *name)
{
    for (size_t i = 0; i < ctl_migrations_count; i++)
        if (strcmp(ctl_migrations[i].name, name) == 0)
            return true;
    return false;
}

/* Runs text that may hold several statements (a migration file). */
static int exec_script(PGconn *db, const char *what, const char *sql)
{
    char msg[512];
    PGresult *res = PQexec(db, sql);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        ctl_error("%s: %s", what, ctl_db_message(db, res, msg, sizeof(msg)));
        rc = -1;
    }
    PQclear(res);
    return rc;
}

static int apply_one(PGconn *db, const struct ctl_migration *m)
{
    char *what = xasprintf("migration %s failed", m->name);
    const char *values[] = {m->name};
    int rc = exec_script(db, "cannot start a transaction", "BEGIN");
    if (rc == 0)
        rc = exec_script(db, what, m->sql);
    if (rc == 0)
        rc = ctl_exec(db, what, "INSERT INTO attune.schema_migrations (name) VALUES ($1)", 1,
                      values);
    if (rc == 0)
        rc = exec_script(db, what, "COMMIT");
    if (rc < 0)
        PQclear(PQexec(db, "ROLLBACK"));
    else
        printf("applied %s\n", m->name);
    free(what);
    return rc;
}

static void warn_unknown(const PGresult *applied)
{
    for (int i = 0; i < PQntuples(applied); i++)
        if (!is_known(PQgetvalue(applied, i, 0)))
            ctl_warn("the database has migration %s, which this attunectl does not know "
                     "(is it older than the one that migrated the database?)",
                     PQgetvalue(applied, i, 0));
}

static int apply_missing(PGconn *db)
{
    PGresult *applied =
        ctl_query(db, "cannot read attune.schema_migrations",
                  "SELECT name FROM attune.schema_migrations ORDER BY name", 0, NULL);
    if (!applied)
        return CTL_EXIT_FAILED;
    warn_unknown(applied);
    int count = 0, rc = 0;
    for (size_t i = 0; rc == 0 && i < ctl_migrations_count; i++) {
        if (is_applied(applied, ctl_migrations[i].name))
            continue;
        rc = apply_one(db, &ctl_migrations[i]);
        count += rc == 0;
    }
    PQclear(applied);
    if (rc == 0 && count == 0)
        puts("database is up to date");
    return rc == 0 ? CTL_EXIT_OK : CTL_EXIT_FAILED;
}

int ctl_migrate(const struct config *cfg, const struct ctl_options *opts)
{
    (void)opts;
    PGconn *db = ctl_db_connect(cfg);
    if (!db)
        return CTL_EXIT_FAILED;
    const char *key[] = {MIGRATE_LOCK_KEY};
    int status = CTL_EXIT_FAILED;
    /* Held for the session: a second migrate waits here, then finds nothing to do. */
    if (ctl_exec(db, "cannot take the migration lock", "SELECT pg_advisory_lock($1::bigint)", 1,
                 key) == 0 &&
        exec_script(db, "cannot create attune.schema_migrations", bootstrap_sql) == 0)
        status = apply_missing(db);
    PQfinish(db);
    return status;
}
