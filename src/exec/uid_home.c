/* Home folders made ahead for uid mode (see uid_home.h). */
#include "exec/uid_home.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void uid_home_name(unsigned n, char *buf, size_t len)
{
    snprintf(buf, len, ".home-%ld-%u", (long)getpid(), n);
}

void uid_homes_init(struct uid_homes *h)
{
    memset(h, 0, sizeof(*h));
    h->parent_fd = -1;
}

static void uid_homes_drop(struct uid_homes *h)
{
    char name[64];
    for (size_t i = 0; i < h->n_ready; i++) {
        uid_home_name(h->ready[i], name, sizeof(name));
        unlinkat(h->parent_fd, name, AT_REMOVEDIR);
    }
    h->n_ready = 0;
    if (h->parent_fd >= 0)
        close(h->parent_fd);
    h->parent_fd = -1;
}

void uid_homes_free(struct uid_homes *h)
{
    uid_homes_drop(h);
}

/* Whether the homes waiting are beside dir_fd; if not, they are dropped and
 * dir_fd's parent is where the next ones will wait. */
static bool uid_homes_beside(struct uid_homes *h, int dir_fd)
{
    struct stat st;
    if (fstatat(dir_fd, "..", &st, AT_SYMLINK_NOFOLLOW) < 0)
        return false;
    if (h->parent_fd >= 0 && st.st_dev == h->parent_dev && st.st_ino == h->parent_ino)
        return true;
    uid_homes_drop(h);
    h->parent_fd = openat(dir_fd, "..", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (h->parent_fd < 0 || fstat(h->parent_fd, &st) < 0)
        return false;
    h->parent_dev = st.st_dev;
    h->parent_ino = st.st_ino;
    return false; /* none waits there yet */
}

int uid_homes_place(struct uid_homes *h, int dir_fd)
{
    char name[64];
    h->placed++;
    while (uid_homes_beside(h, dir_fd) && h->n_ready > 0) {
        uid_home_name(h->ready[--h->n_ready], name, sizeof(name));
        /* Gone (the artifacts' retention, say): the next one, or a new one. */
        if (renameat(h->parent_fd, name, dir_fd, "home") == 0)
            return 0;
    }
    return mkdirat(dir_fd, "home", 0700) < 0 ? -errno : 0;
}

void uid_homes_refill(struct uid_homes *h)
{
    char name[64];
    if (h->placed < 2 || h->parent_fd < 0 || h->n_ready >= UID_HOMES_MAX)
        return;
    unsigned n = h->made++;
    uid_home_name(n, name, sizeof(name));
    if (mkdirat(h->parent_fd, name, 0700) == 0)
        h->ready[h->n_ready++] = n;
}
