/* The action table as the worker reads it: one action, with the name and
 * execution_config of its runtime row, read within the execution's claim
 * (src/db/executions.c). The row is borrowed: valid during the callback
 * only. */
#ifndef ATTUNE_DB_ACTIONS_H
#define ATTUNE_DB_ACTIONS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"

struct action_row {
    int64_t id;
    int64_t pack_id;
    const char *ref;
    const char *pack_ref;
    const char *name; /* ref without the pack prefix */
    const char *entry_point;
    const char *label;       /* may be NULL */
    const char *description; /* may be NULL */
    json_t *param_schema;    /* NULL when the column does not parse */
    const char *parameter_delivery;
    const char *parameter_format;
    const char *output_format;
    int timeout_seconds;      /* 0 when NULL */
    const char *runtime_name; /* the runtime row's name; NULL when none */
    json_t *runtime_config;   /* its execution_config; NULL when none */
    bool enabled;
    bool is_adhoc;      /* the entry point is code, not a file */
    json_t *out_schema; /* NULL when NULL or it does not parse */
};

/* For the table modules of src/db: the columns of an action_row, in its
 * reader's order (db_action_read in query.h), of the action a joined with
 * its runtime r. */
#define DB_ACTION_COLUMNS                                                                          \
    "a.id, a.ref, a.pack_ref, substr(a.ref, length(a.pack_ref) + 2), a.entrypoint, a.label, "      \
    "a.description, a.param_schema, a.parameter_delivery, a.parameter_format, a.output_format, "   \
    "a.timeout_seconds, r.name, a.enabled, a.pack, a.is_adhoc, r.execution_config, a.out_schema"
#define DB_ACTION_COLUMN_COUNT 18

#endif
