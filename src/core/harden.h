/* Process hardening for the programs that hold secrets (the service,
 * run-action, attunectl): no core dumps, and no reading of the process's
 * memory or /proc files by other processes of the same user. */
#ifndef ATTUNE_CORE_HARDEN_H
#define ATTUNE_CORE_HARDEN_H

/* Makes the calling process non-dumpable (PR_SET_DUMPABLE 0: its /proc/PID
 * files belong to root and other processes of its uid cannot ptrace it or
 * read its memory or environment) and sets RLIMIT_CORE to 0, soft and hard,
 * so that no core file is written even if a crash happens. Children inherit
 * the limit; dumpability is reset by execve, so actions are not affected by
 * the first. A failure is reported on stderr and the program goes on.
 * Returns 0, or a negative errno of the first failure. */
int harden_process(const char *program);

#endif
