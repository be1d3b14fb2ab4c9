/* The per-execution sandbox (docs/configuration.md, "sandbox"). In uid mode
 * each running execution holds a uid and gid of sandbox.uid_range of its own:
 * its files/ and a private home are handed to that uid while it runs, and when
 * it ends every process left on the uid is killed before the uid is reused.
 * The worker is a child subreaper, so that escapers are re-parented to it. */
#ifndef ATTUNE_EXEC_SANDBOX_H
#define ATTUNE_EXEC_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/config.h"
#include "core/util.h"
#include "exec/sandbox_ns.h"
#include "exec/uid_home.h"
#include "exec/uid_pool.h"

/* Told, when set, that an execution took uid (taken), before anything runs
 * on it, and that the uid was given back, after its sweep. */
typedef void (*sandbox_uid_hook)(uid_t uid, bool taken, void *userdata);

struct sandbox {
    enum sandbox_mode mode; /* uid or userns */
    struct uid_pool uids;
    struct uid_homes homes; /* made ahead, off the executions' starts */
    sandbox_uid_hook on_uid;
    void *on_uid_userdata;
    struct sandbox_ns_conf ns;
};

/* What one execution holds: uid 0 when it runs unsandboxed. */
struct sandbox_slot {
    uid_t uid;
    int files_fd;          /* files/, handed to uid while it runs */
    int home_fd;           /* home/, the same */
    char *home_dir;        /* HOME and TMPDIR of the execution */
    struct sandbox_ns *ns; /* userns mode: the execution's namespaces */
};

/* The mode this process will use for sandbox.mode: auto is uid as root and
 * userns otherwise when user namespaces work here (probed once), uid needs
 * root, userns needs a worker that is not root and namespaces that work. On a
 * refusal (auto where neither can work, too) returns -EINVAL with a message
 * saying what to configure. */
int sandbox_resolve_mode(const struct config *cfg, enum sandbox_mode *mode, char *err,
                         size_t errlen);

/* For a program that starts one execution (run-action): the trial child
 * that tells whether user namespaces work is skipped, since the execution's
 * own start tells as much. Call before anything resolves the mode. */
void sandbox_defer_userns_probe(void);

/* After an execution failed to start, with the probe deferred: probes now,
 * and when user namespaces are what failed returns -EINVAL with the message
 * sandbox_resolve_mode would have given in err; else 0. */
int sandbox_userns_refusal(const struct config *cfg, char *err, size_t errlen);

/* The warning every start with sandbox.mode none gives, NULL in other modes. */
const char *sandbox_none_warning(enum sandbox_mode mode);

/* NULL when the resolved mode is none (with a warning logged). Makes the
 * process a child subreaper.
 * On failure returns a negative errno with the reason in err. */
int sandbox_new(const struct config *cfg, struct sandbox **out, char *err, size_t errlen);
void sandbox_free(struct sandbox *sb);

/* Sets the hook told of every uid taken and given back (NULL: none). */
void sandbox_set_uid_hook(struct sandbox *sb, sandbox_uid_hook fn, void *userdata);

/* A file of the worker's that actions must not read (run-action's secrets
 * file): covered in userns mode. uid mode needs nothing (the file is not the
 * execution's uid's); a NULL sandbox ignores it. */
void sandbox_hide(struct sandbox *sb, const char *path);

/* userns mode: makes the execution's private home/ and its namespaces' plan
 * (slot->ns). uid mode: takes a uid for the execution whose new folder dir is
 * open at dir_fd, with
 * its files/ open at files_fd: hands it files/ and a new private home/, and
 * lets it pass through dir (0711) and the worker's folders above it. slot
 * says what to give back. A NULL sandbox leaves slot empty. */
int sandbox_enter(struct sandbox *sb, const char *dir, int dir_fd, int files_fd,
                  struct sandbox_slot *slot, char *err, size_t errlen);

/* uid mode: takes a uid for a process started ahead of its execution (a
 * spare, executor/spares.h), telling the hook as sandbox_enter does; *uid is
 * 0 (nothing taken) in other modes and with a NULL sandbox. Returns 0, or
 * -EAGAIN when every uid of the range is taken. */
int sandbox_take_uid(struct sandbox *sb, uid_t *uid);

/* Gives back a uid of sandbox_take_uid that no execution got: kills what runs
 * on it (main_pid as in sandbox_leave) and frees it. 0 is ignored. */
void sandbox_drop_uid(struct sandbox *sb, uid_t uid, pid_t main_pid);

/* sandbox_enter in uid mode on a uid sandbox_take_uid took: the slot owns it
 * from the call on, whatever fails (sandbox_leave gives it back). A NULL
 * sandbox or uid 0 leaves the slot empty. */
int sandbox_enter_on_uid(struct sandbox *sb, uid_t uid, const char *dir, int dir_fd, int files_fd,
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
