/* A claim on a sandbox uid shared by every worker and run-action of the host:
 * whoever holds it runs an execution on that uid, so two processes given the
 * same sandbox.uid_range never put two executions on one uid, and a sweep
 * leaves alone the uids a live process holds. The claim is an abstract unix
 * socket name: taken atomically, and dropped by the kernel when its holder
 * exits, however it exits. */
#ifndef ATTUNE_EXEC_UID_LOCK_H
#define ATTUNE_EXEC_UID_LOCK_H

#include <stdbool.h>
#include <sys/types.h>

/* Claims uid: returns the descriptor that holds the claim (close it to give
 * the uid back), -EADDRINUSE when another process holds it, or another
 * negative errno. */
int uid_lock_take(uid_t uid);

/* Whether a live process (the caller included) holds uid's claim now. */
bool uid_lock_held(uid_t uid);

#endif
