/* The action a job runs: from the live action row, or, for an execution
 * pinned to a pack release, from its executable_snapshot and the release's
 * own folder, so that neither a newer action row nor another copy of the
 * pack can change what runs. No I/O beyond looking at the pack's files. */
#ifndef ATTUNE_WORKER_JOB_ACTION_H
#define ATTUNE_WORKER_JOB_ACTION_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "db/actions.h"
#include "exec/action.h"
#include "runtime/registry.h"
#include "worker/job_inputs.h"

/* The action of an action row, checked as an action file would be, its pack
 * under packs_base_dir; the runtime row's name maps to a runner type, its
 * execution_config (when not empty) is the runtime's definition, and an
 * ad-hoc shell action's entry point is its code. */
int job_action_from_row(const struct action_row *row, const char *packs_base_dir,
                        struct action **out, char *err, size_t errlen);

/* The folder of a release: {packs_base_dir}/.releases/sha256/{digest}/pack.
 * The digest must be 64 lowercase hex digits. Returns a new string or NULL. */
char *job_action_release_dir(const char *packs_base_dir, const char *digest);

/* The action of a pinned execution: executable.action and .runtime of its
 * executable_snapshot, its code in the folder of the release it is pinned to
 * (never re-hashed; a missing folder is an error naming it). The runtime's
 * definition is that of the snapshot's runtime_versions entry Attune's worker
 * would choose for the action's runtime_version_constraint among what reg
 * advertises (registry_version_config), else the runtime's own; reg NULL
 * skips the versions. Sets the action's id and its pack's id (for the keys). */
int job_action_from_snapshot(const struct job_execution *ex, const char *packs_base_dir,
                             const struct registry *reg, struct action **out, int64_t *action_id,
                             int64_t *pack_id, char *err, size_t errlen);

#endif
