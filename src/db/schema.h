/* The database schema Attune's tables live in (database.schema). Statements
 * are written against the default schema `attune`; for another schema they
 * are rewritten once as they are queued. The connection also puts the schema
 * first on its search_path, because Attune's own triggers name tables
 * without a schema. */
#ifndef ATTUNE_DB_SCHEMA_H
#define ATTUNE_DB_SCHEMA_H

#define DB_DEFAULT_SCHEMA "attune"

/* A new copy of sql with every `attune.` qualifier naming schema instead
 * (quoted as an identifier); a plain copy for the default schema. */
char *db_schema_sql(const char *sql, const char *schema);

/* The libpq `options` value for a connection: search_path schema, public. */
char *db_schema_options(const char *schema);

#endif
