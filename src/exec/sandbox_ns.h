/* The sandbox's userns mode (docs/configuration.md, "sandbox"): for a worker
 * that is not root, each execution's process starts in new user, PID, mount
 * and IPC namespaces, with a fresh /proc, a private /tmp and /dev/shm, the
 * pack's folder (and packs_base_dir, runtime_envs_dir) read-only, the
 * artifacts root covered but for the execution's own files/ and home/, and
 * the configuration file out of sight. Its first process starts the action,
 * then becomes attune-sandbox-init (src/sandbox_init/), which hands the
 * action's wait status back over a pipe; when it exits the kernel kills the
 * namespace. */
#ifndef ATTUNE_EXEC_SANDBOX_NS_H
#define ATTUNE_EXEC_SANDBOX_NS_H

#include <stddef.h>

#include "core/config.h"
#include "core/util.h"
#include "exec/spawn.h"

/* Where the sandbox's init finds the pipe of the action's wait status. */
#define SANDBOX_NS_STATUS_FD 5

/* What every execution shares: found once at start. */
struct sandbox_ns_conf {
    char *init_path, *init_dir;
    char *config_path; /* absolute; NULL without a file */
    char *packs_base_dir, *runtime_envs_dir;
    char *artifacts_dir; /* worker.artifacts_dir, resolved; NULL if not there */
    char uid_map[32], gid_map[32];
    struct strv hidden; /* files covered by an empty one (sandbox_hide) */
};

/* The init's path (to free): beside the running program, else where it is
 * installed; NULL when it is in neither place. */
char *sandbox_ns_find_init(void);

/* Finds the init and what the plans need from the configuration. On failure
 * returns a negative errno with the reason in err. */
int sandbox_ns_conf_init(struct sandbox_ns_conf *c, const struct config *cfg, char *err,
                         size_t errlen);
void sandbox_ns_conf_free(struct sandbox_ns_conf *c);

struct sandbox_ns;

/* One execution's namespaces: dir is its folder,
 * {artifacts root}/{worker}/{id}, which holds its files/ and home/. */
struct sandbox_ns *sandbox_ns_new(const struct sandbox_ns_conf *conf, const char *dir);
void sandbox_ns_free(struct sandbox_ns *ns);

/* The plan for spawning program with cwd pack_dir (NULL: none), valid while
 * ns lives: the pack's folder, packs_base_dir and runtime_envs_dir are kept
 * read-only, files/ and home/ writable, around private /tmp, /dev/shm and
 * /proc and covers over the artifacts root and the configuration. The
 * namespace's first process starts the program, then becomes the init, which
 * writes the program's wait status to SANDBOX_NS_STATUS_FD (spawn.h).
 * Returns NULL with errno set when pack_dir cannot be resolved. */
const struct spawn_ns *sandbox_ns_prepare(struct sandbox_ns *ns, const char *pack_dir,
                                          const char *program);

#endif
