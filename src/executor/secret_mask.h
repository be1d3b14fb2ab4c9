/* Which values of an execution are masked in its output and result: the
 * key store's secrets, the parameters that are secret (hidden, or marked
 * secret by the schema) and the execution's API token, each with its
 * encodings (exec/mask.h). */
#ifndef ATTUNE_EXECUTOR_SECRET_MASK_H
#define ATTUNE_EXECUTOR_SECRET_MASK_H

#include <jansson.h>

#include "exec/mask.h"
#include "exec/output.h"
#include "executor/exec_files.h"
#include "executor/executor.h"

/* A new, built set (possibly empty). */
struct mask_set *execution_mask_set(const struct execution_request *req);

/* Masks, in place, what of a result can hold text the worker did not read
 * from its masked logs: error, data and queue_ack. */
void execution_mask_result(const struct mask_set *set, json_t *result);

/* Most matches a stdout sink records for execution_unmask_log. */
#define EXECUTION_MASK_MATCHES_MAX 65536

/* The stdout log of sink (read from files' descriptor) with the secrets the masking replaced
 * put back, as text (invalid UTF-8 replaced), for parsing stdout into data:
 * the result filter must see a secret output field's real value to seal it.
 * NULL when nothing was replaced, or not every replacement was recorded. */
char *execution_unmask_log(const struct exec_files *files, const struct mask_set *set,
                           const struct output_sink *sink);

#endif
