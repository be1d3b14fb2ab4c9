/* Killing, as root, every process of a set of uids that are not ours: the
 * processes are found in /proc by their real uid, and each uid found is swept
 * (spawn_kill_uid) until a scan finds none alive. The guardian runs it for the
 * uids of a dead worker's executions, the worker at start for whatever an
 * earlier worker left on sandbox.uid_range. */
#ifndef ATTUNE_EXEC_UID_REAPER_H
#define ATTUNE_EXEC_UID_REAPER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Whether uid is one to kill; set is the caller's. */
typedef bool (*uid_reaper_match_fn)(uid_t uid, const void *set);

struct uid_reaper_report {
    int found;  /* live processes the first scan saw */
    int uids;   /* distinct uids among them */
    int left;   /* still alive after the last round (0 unless stuck) */
    int rounds; /* scans made */
};

/* Kills every live (not zombie) process whose real uid matches, uid 0 never:
 * scans /proc, sweeps each uid seen, and scans again (a process may fork while
 * it is being killed, or take a moment to die) until none is seen, at most
 * UID_REAPER_ROUNDS times 1 ms apart. Returns 0, or a negative errno when
 * /proc cannot be read or a uid cannot be swept (not root); rep says what was
 * found either way. */
#define UID_REAPER_ROUNDS 200
int uid_reaper_kill(uid_reaper_match_fn match, const void *set, struct uid_reaper_report *rep);

/* A match for a range of uids: set points to one. */
struct uid_reaper_range {
    uint32_t first, count;
};
bool uid_reaper_in_range(uid_t uid, const void *range);

#endif
