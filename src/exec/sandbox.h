/* The per-execution sandbox (docs/configuration.md, "sandbox"). In uid mode
 * each running execution holds a uid and gid of sandbox.uid_range of its own:
 * its files/ and a private home are handed to that uid while it runs, and when
 * it ends every process left on the uid is killed before the uid is reused.
 * The worker is a child subreaper, so that escapers are re-parented to it. */
#ifndef ATTUNE_EXEC_SANDBOX_H
#define ATTUNE_EXEC_SANDBOX_H

#include <stddef.h>
#include <sys/types.h>

#include "core/config.h"
#include "core/util.h"
#include "exec/uid_pool.h"

struct sandbox {
    struct uid_pool uids;
};

/* What one execution holds: uid 0 when it runs unsandboxed. */
struct sandbox_slot {
    uid_t uid;
    int files_fd;   /* files/, handed to uid while it runs */
    int home_fd;    /* home/, the same */
    char *home_dir; /* HOME and TMPDIR of the execution */
};

/* The mode this process will use for sandbox.mode: auto is uid as root and
 * none otherwise (sandbox_new warns then), uid needs root, userns is refused. On a
 * refusal returns -EINVAL with a message naming the key. */
int sandbox_resolve_mode(const struct config *cfg, enum sandbox_mode *mode, char *err,
                         size_t errlen);

/* NULL unless the resolved mode is uid. Makes the process a child subreaper.
 * On failure returns a negative errno with the reason in err. */
int sandbox_new(const struct config *cfg, struct sandbox **out, char *err, size_t errlen);
void sandbox_free(struct sandbox *sb);

/* Takes a uid for the execution whose new folder dir is open at dir_fd, with
 * its files/ open at files_fd: hands it files/ and a new private home/, and
 * lets it pass through dir (0711) and the worker's folders above it. slot
 * says what to give back. A NULL sandbox leaves slot empty. */
int sandbox_enter(struct sandbox *sb, const char *dir, int dir_fd, int files_fd,
                  struct sandbox_slot *slot, char *err, size_t errlen);

/* HOME and TMPDIR of a sandboxed execution: its private home, so that
 * executions share no dotfiles, user site packages or temporary files; and
 * SHELL unless set, which spares bash a user database lookup of the uid. */
void sandbox_env(const struct sandbox_slot *slot, struct strv *env);

/* Once the execution's process is gone: kills whatever is left on its uid
 * (when the kernel counts any process of it beyond main_pid's zombie),
 * takes files/ and the home back and frees the uid. main_pid (-1: none) is
 * the action's own process, left for the event loop to reap. Safe on a slot
 * that never took a uid. */
void sandbox_leave(struct sandbox *sb, struct sandbox_slot *slot, pid_t main_pid);

#endif
