/* The artifact store on disk: {artifacts_dir}/{worker_name}/{execution_id}/
 * per execution (directories 0700), and removal of execution directories
 * older than the retention period. */
#ifndef ATTUNE_WORKER_ARTIFACTS_H
#define ATTUNE_WORKER_ARTIFACTS_H

#include <stddef.h>

/* The execution's directory path (not created; the executor creates it).
 * execution_id must be a plain name (no '/', not "." or ".."). */
char *artifacts_execution_dir(const char *artifacts_dir, const char *worker_name,
                              const char *execution_id);

/* A file of the execution's directory as a path relative to artifacts_dir,
 * as Attune's artifact_version.file_path records it:
 * {worker_name}/{execution_id}/{file}. */
char *artifacts_relative_path(const char *worker_name, const char *execution_id, const char *file);

/* Makes sure the root can hold artifacts safely: created when missing (its
 * parents 0755, itself 0700), then refused (-EPERM, the reason in err) unless
 * it is a directory owned by the worker's user that neither group nor others
 * can write. */
int artifacts_root_check(const char *root, char *err, size_t errlen);

/* Removes execution directories under {artifacts_dir}/{worker_name} whose
 * last change is older than retention_days (0 keeps everything), through
 * directory descriptors that never follow a symlink. Returns the number
 * removed, or a negative errno. */
int artifacts_remove_expired(const char *artifacts_dir, const char *worker_name,
                             int retention_days);

#endif
