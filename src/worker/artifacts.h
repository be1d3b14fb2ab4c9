/* The artifact store on disk: {artifacts_dir}/{worker_name}/{execution_id}/
 * per execution (directories 0700), and removal of execution directories
 * older than the retention period. */
#ifndef ATTUNE_WORKER_ARTIFACTS_H
#define ATTUNE_WORKER_ARTIFACTS_H

/* The execution's directory path (not created; the executor creates it).
 * execution_id must be a plain name (no '/', not "." or ".."). */
char *artifacts_execution_dir(const char *artifacts_dir, const char *worker_name,
                              const char *execution_id);

/* A file of the execution's directory as a path relative to artifacts_dir,
 * as Attune's artifact_version.file_path records it:
 * {worker_name}/{execution_id}/{file}. */
char *artifacts_relative_path(const char *worker_name, const char *execution_id, const char *file);

/* Removes execution directories under {artifacts_dir}/{worker_name} whose
 * last change is older than retention_days (0 keeps everything). Returns the
 * number removed, or a negative errno. */
int artifacts_remove_expired(const char *artifacts_dir, const char *worker_name,
                             int retention_days);

#endif
