/* The artifact store on disk (see artifacts.h). */
#include "worker/artifacts.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/fsat.h"
#include "core/log.h"
#include "core/util.h"

char *artifacts_execution_dir(const char *artifacts_dir, const char *worker_name,
                              const char *execution_id)
{
    return xasprintf("%s/%s/%s", artifacts_dir, worker_name, execution_id);
}

char *artifacts_relative_path(const char *worker_name, const char *execution_id, const char *file)
{
    return xasprintf("%s/%s/%s", worker_name, execution_id, file);
}

/* Creates a missing root: its parents as 0755 (they hold nothing), itself 0700. */
static int artifacts_root_create(const char *root)
{
    char *parent = xstrdup(root);
    char *slash = strrchr(parent, '/');
    int rc = 0;
    if (slash && slash != parent) {
        *slash = '\0';
        rc = mkdir_p(parent, 0755);
    }
    free(parent);
    if (rc == 0 && mkdir(root, 0700) < 0 && errno != EEXIST)
        rc = -errno;
    return rc;
}

int artifacts_root_check(const char *root, char *err, size_t errlen)
{
    struct stat st;
    int rc = lstat(root, &st) < 0 && errno == ENOENT ? artifacts_root_create(root) : 0;
    int fd = rc < 0 ? rc : open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        rc = rc < 0 ? rc : -errno;
        return set_error(err, errlen, -rc, "cannot create or open the artifacts root %s: %s", root,
                         strerror(-rc));
    }
    rc = fsat_dir_private(fd);
    if (rc == -EPERM && fstat(fd, &st) == 0)
        set_error(err, errlen, EPERM,
                  "the artifacts root %s (worker.artifacts_dir) is owned by uid %u with mode %04o; "
                  "it must be owned by the worker's user (uid %u) and not writable by group or "
                  "others (chown it, chmod go-w it, or choose another directory)",
                  root, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777), (unsigned)geteuid());
    else if (rc < 0)
        set_error(err, errlen, -rc, "cannot check the artifacts root %s: %s", root, strerror(-rc));
    close(fd);
    return rc;
}

/* Removes the expired execution directories of the worker directory open at
 * fd (path: for the log). */
static int artifacts_remove_old(int fd, const char *path, time_t cutoff)
{
    DIR *dir = fdopendir(fd);
    if (!dir) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(dir))) {
        struct stat st;
        if (de->d_name[0] == '.' || fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISDIR(st.st_mode) || st.st_mtime >= cutoff)
            continue;
        int rc = fsat_remove_tree(dirfd(dir), de->d_name);
        if (rc == 0)
            removed++;
        else
            log_warn("cannot remove expired artifacts %s/%s: %s", path, de->d_name, strerror(-rc));
    }
    closedir(dir);
    return removed;
}

int artifacts_remove_expired(const char *artifacts_dir, const char *worker_name, int retention_days)
{
    if (retention_days <= 0)
        return 0;
    int root = open(artifacts_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int fd =
        root < 0 ? -1 : openat(root, worker_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int rc = fd < 0 ? (errno == ENOENT ? 0 : -errno) : 0;
    if (root >= 0)
        close(root);
    if (fd < 0)
        return rc;
    char *path = xasprintf("%s/%s", artifacts_dir, worker_name);
    rc = artifacts_remove_old(fd, path, time(NULL) - (time_t)retention_days * 86400);
    free(path);
    return rc;
}
