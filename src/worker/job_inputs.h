/* What a job makes of the rows it loads before the action can start: the
 * action from its row, the parameters from the execution's config. No I/O
 * beyond looking at the pack's files. */
#ifndef ATTUNE_WORKER_JOB_INPUTS_H
#define ATTUNE_WORKER_JOB_INPUTS_H

#include <jansson.h>
#include <stddef.h>

#include "db/actions.h"
#include "exec/action.h"

/* The action of an action row, checked as an action file would be, its pack
 * under packs_base_dir; the runtime row's name maps to a runner type. */
int job_inputs_action(const struct action_row *row, const char *packs_base_dir, struct action **out,
                      char *err, size_t errlen);

/* The parameters in an execution's config: config.parameters, or the whole
 * config minus context and env; an empty object when there is no config;
 * NULL when config.parameters is not an object. */
json_t *job_inputs_parameters(const json_t *config);

#endif
