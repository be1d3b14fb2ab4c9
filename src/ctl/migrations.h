/* The database migrations embedded in attunectl (generated from migrations/
 * by scripts/embed-migrations.cmake), in the order they are applied. */
#ifndef ATTUNE_CTL_MIGRATIONS_H
#define ATTUNE_CTL_MIGRATIONS_H

#include <stddef.h>

struct ctl_migration {
    const char *name; /* file name without ".sql", e.g. "0001_initial_schema" */
    const char *sql;
};

extern const struct ctl_migration ctl_migrations[];
extern const size_t ctl_migrations_count;

#endif
