/* The artifact store on disk (see artifacts.h). */
#include "worker/artifacts.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

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

int artifacts_remove_expired(const char *artifacts_dir, const char *worker_name, int retention_days)
{
    if (retention_days <= 0)
        return 0;
    char *root = xasprintf("%s/%s", artifacts_dir, worker_name);
    DIR *dir = opendir(root);
    if (!dir) {
        int rc = errno == ENOENT ? 0 : -errno;
        free(root);
        return rc;
    }
    time_t cutoff = time(NULL) - (time_t)retention_days * 86400;
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(dir))) {
        struct stat st;
        if (de->d_name[0] == '.' || fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISDIR(st.st_mode) || st.st_mtime >= cutoff)
            continue;
        char *path = xasprintf("%s/%s", root, de->d_name);
        if (remove_tree(path) == 0)
            removed++;
        else
            log_warn("cannot remove expired artifacts %s: %s", path, strerror(errno));
        free(path);
    }
    closedir(dir);
    free(root);
    return removed;
}
