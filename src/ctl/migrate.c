/* `attunectl migrate`: applies the embedded migrations in name order, each in
 * its own transaction with the key conversion SQL cannot do (migrate_keys.c),
 * recorded in attune.schema_migrations; leaves a database whose schema
 * Attune's own migrations manage as it is. */
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

/* Ends the transaction: COMMIT when status is CTL_EXIT_OK, else ROLLBACK. */
static int finish(PGconn *db, const char *what, int status)
{
    if (status == CTL_EXIT_OK && exec_script(db, what, "COMMIT") < 0)
        status = CTL_EXIT_FAILED;
    if (status != CTL_EXIT_OK)
        PQclear(PQexec(db, "ROLLBACK"));
    return status;
}

static void print_converted(int converted)
{
    if (converted > 0)
        printf("re-encrypted %d key%s in Attune's JSON format (encrypt_json)\n", converted,
               converted == 1 ? "" : "s");
}

/* The migration's SQL and the keys it leaves to convert, in one transaction:
 * when the conversion cannot be done, nothing of the migration stays. */
static int apply_one(PGconn *db, const struct config *cfg, const struct ctl_migration *m)
{
    char *what = xasprintf("migration %s failed", m->name);
    const char *values[] = {m->name};
    int converted = 0, status = CTL_EXIT_FAILED;
    if (exec_script(db, "cannot start a transaction", "BEGIN") == 0 &&
        exec_script(db, what, m->sql) == 0)
        status = ctl_migrate_keys(db, cfg, &converted);
    if (status == CTL_EXIT_OK &&
        ctl_exec(db, what, "INSERT INTO attune.schema_migrations (name) VALUES ($1)", 1, values) <
            0)
        status = CTL_EXIT_FAILED;
    status = finish(db, what, status);
    if (status == CTL_EXIT_OK) {
        printf("applied %s\n", m->name);
        print_converted(converted);
    }
    free(what);
    return status;
}

/* Keys left by a migration applied some other way (psql). */
static int convert_left_over_keys(PGconn *db, const struct config *cfg, bool *any)
{
    int converted = 0;
    int status = exec_script(db, "cannot start a transaction", "BEGIN") == 0
                     ? ctl_migrate_keys(db, cfg, &converted)
                     : CTL_EXIT_FAILED;
    status = finish(db, "cannot convert the keys", status);
    if (status == CTL_EXIT_OK)
        print_converted(converted);
    *any = converted > 0;
    return status;
}

static void warn_unknown(const PGresult *applied)
{
    for (int i = 0; i < PQntuples(applied); i++)
        if (!is_known(PQgetvalue(applied, i, 0)))
            ctl_warn("the database has migration %s, which this attunectl does not know "
                     "(is it older than the one that migrated the database?)",
                     PQgetvalue(applied, i, 0));
}

static int apply_missing(PGconn *db, const struct config *cfg)
{
    PGresult *applied =
        ctl_query(db, "cannot read attune.schema_migrations",
                  "SELECT name FROM attune.schema_migrations ORDER BY name", 0, NULL);
    if (!applied)
        return CTL_EXIT_FAILED;
    warn_unknown(applied);
    int count = 0, status = CTL_EXIT_OK;
    for (size_t i = 0; status == CTL_EXIT_OK && i < ctl_migrations_count; i++) {
        if (is_applied(applied, ctl_migrations[i].name))
            continue;
        status = apply_one(db, cfg, &ctl_migrations[i]);
        count += status == CTL_EXIT_OK;
    }
    PQclear(applied);
    bool converted = false;
    if (status == CTL_EXIT_OK && count == 0)
        status = convert_left_over_keys(db, cfg, &converted);
    if (status == CTL_EXIT_OK && count == 0 && !converted)
        puts("database is up to date");
    return status;
}

/* Upstream's runners record their history in _sqlx_migrations (sqlx) or
 * _migrations (its Docker image), in schema attune or public, and claim the
 * database in public._attune_migration_runner (db.rs,
 * 20240101000000_migration_runner_claim.sql). Returns the table found, or
 * NULL; *failed on a query error. */
static char *upstream_history(PGconn *db, bool *failed)
{
    static const char sql[] =
        "SELECT t FROM unnest(ARRAY['attune._sqlx_migrations', 'public._sqlx_migrations', "
        "'attune._migrations', 'public._migrations', 'public._attune_migration_runner']) AS t "
        "WHERE to_regclass(t) IS NOT NULL LIMIT 1";
    PGresult *res = ctl_query(db, "cannot look for Attune's migration history", sql, 0, NULL);
    *failed = !res;
    char *found = res && PQntuples(res) == 1 ? xstrdup(PQgetvalue(res, 0, 0)) : NULL;
    PQclear(res);
    return found;
}

static int migrate_locked(PGconn *db, const struct config *cfg)
{
    bool failed = false;
    char *upstream = upstream_history(db, &failed);
    if (failed)
        return CTL_EXIT_FAILED;
    if (upstream) {
        printf("the schema is managed by Attune's own migrations (%s exists): nothing to do\n",
               upstream);
        free(upstream);
        return CTL_EXIT_OK;
    }
    if (exec_script(db, "cannot create attune.schema_migrations", bootstrap_sql) < 0)
        return CTL_EXIT_FAILED;
    return apply_missing(db, cfg);
}

int ctl_migrate(const struct config *cfg, const struct ctl_options *opts)
{
    (void)opts;
    if (strcmp(cfg->database_schema, DB_DEFAULT_SCHEMA) != 0)
        return ctl_error("attunectl migrate creates Attune's tables in the schema \"%s\" only "
                         "(database.schema is \"%s\"): run it with the default schema, or let "
                         "Attune's own migrations manage this one",
                         DB_DEFAULT_SCHEMA, cfg->database_schema);
    PGconn *db = ctl_db_connect(cfg);
    if (!db)
        return CTL_EXIT_FAILED;
    const char *key[] = {MIGRATE_LOCK_KEY};
    int status = CTL_EXIT_FAILED;
    /* Held for the session: a second migrate waits here, then finds nothing to do. */
    if (ctl_exec(db, "cannot take the migration lock", "SELECT pg_advisory_lock($1::bigint)", 1,
                 key) == 0)
        status = migrate_locked(db, cfg);
    PQfinish(db);
    return status;
}
