/* Claims on sandbox uids (see uid_lock.h) as abstract unix socket names. */
#include "exec/uid_lock.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* The name, after the leading NUL of the abstract namespace; returns the
 * address length. */
static socklen_t uid_lock_address(uid_t uid, struct sockaddr_un *addr)
{
    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    int n = snprintf(addr->sun_path + 1, sizeof(addr->sun_path) - 1, "attune-worker/sandbox-uid/%u",
                     (unsigned)uid);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

int uid_lock_take(uid_t uid)
{
    struct sockaddr_un addr;
    socklen_t len = uid_lock_address(uid, &addr);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&addr, len) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

bool uid_lock_held(uid_t uid)
{
    int fd = uid_lock_take(uid);
    if (fd >= 0)
        close(fd);
    return fd == -EADDRINUSE;
}
