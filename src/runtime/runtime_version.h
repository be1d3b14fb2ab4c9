/* Choosing among a runtime's versions (the runtime_version rows) as Attune
 * does (version_matching.rs, executor.rs resolve_runtime_version): lenient
 * version strings ("3.12", "v20"), its constraint syntax (">=3.10", "~3.12",
 * "^3", "3.11.*", "=3.12.1", ">=3.12,<4.0"; a bare "3.12" means "~3.12"), and
 * the pick: the highest available version that satisfies the constraint, or
 * without one the default version, else the highest. */
#ifndef ATTUNE_RUNTIME_RUNTIME_VERSION_H
#define ATTUNE_RUNTIME_RUNTIME_VERSION_H

#include <jansson.h>

/* 1 when version satisfies constraint (NULL or blank: any release), 0 when
 * not, -EINVAL when either does not parse. */
int runtime_version_matches(const char *version, const char *constraint);

/* The chosen row of versions, a JSON array of runtime_version rows (objects
 * with "version", "execution_config", "is_default" and "available"; a
 * missing "available" counts as true), for the action's
 * runtime_version_constraint (NULL or "" for none). advertised, when not
 * NULL, is the array of version strings this worker advertises for the
 * runtime (capabilities.runtime_versions[name]): only rows one of them
 * matches are considered, as Attune's worker does; NULL considers every row.
 * Returns a borrowed row, or NULL when none qualifies (or the constraint
 * does not parse). */
const json_t *runtime_version_select(const json_t *versions, const char *constraint,
                                     const json_t *advertised);

/* The chosen row's execution_config (borrowed), or NULL when no row is
 * chosen or its execution_config is not a non-empty object: the runtime
 * row's own execution_config applies then. */
const json_t *runtime_version_config(const json_t *versions, const char *constraint,
                                     const json_t *advertised);

#endif
