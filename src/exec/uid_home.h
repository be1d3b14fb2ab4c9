/* Empty home folders made ahead of the executions of the sandbox's uid mode:
 * creating a folder costs ext4 an inode allocation (a hundred microseconds and
 * more on a busy host), which an execution's start then saves by renaming one
 * made earlier, off its path, into its own folder. They wait, the worker's and
 * 0700, beside the executions' folders (the same file system), as
 * ".home-PID-N". */
#ifndef ATTUNE_EXEC_UID_HOME_H
#define ATTUNE_EXEC_UID_HOME_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define UID_HOMES_MAX 4

struct uid_homes {
    int parent_fd; /* where they wait: the executions' folders' parent; -1 */
    dev_t parent_dev;
    ino_t parent_ino;
    unsigned made;                 /* names handed out so far */
    unsigned ready[UID_HOMES_MAX]; /* the N of each one waiting */
    size_t n_ready;
    unsigned placed; /* homes put in place: a second one says more will come */
};

void uid_homes_init(struct uid_homes *h);
/* Removes the ones still waiting. */
void uid_homes_free(struct uid_homes *h);

/* Puts an empty folder, the worker's and 0700, at "home" in the execution's
 * new folder dir_fd: one made ahead when one waits beside that folder, else a
 * new one. Returns 0 or a negative errno. */
int uid_homes_place(struct uid_homes *h, int dir_fd);

/* Off an execution's path: makes one more to wait, once more than one
 * execution has started (a run-action's one never needs it), up to
 * UID_HOMES_MAX. */
void uid_homes_refill(struct uid_homes *h);

#endif
