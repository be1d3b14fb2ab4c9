/* The state and parent of a process, read from /proc/PID/stat: what the
 * sandbox's sweep and its cgroup check need to know of another process. */
#ifndef ATTUNE_EXEC_PROC_STAT_H
#define ATTUNE_EXEC_PROC_STAT_H

#include <stdbool.h>
#include <sys/types.h>

/* Fills state (R, S, Z...) and ppid; false when the process is gone or the
 * line is not understood. */
bool proc_stat_read(pid_t pid, char *state, pid_t *ppid);

#endif
