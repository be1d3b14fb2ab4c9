/* An execution's files below the artifacts root (see exec_files.h). */
#include "executor/exec_files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fsat.h"

static const char *const log_names[] = {"stdout.log", "stderr.log"};

void exec_files_init(struct exec_files *f)
{
    f->dir_fd = f->files_fd = f->log_fd[0] = f->log_fd[1] = -1;
}

static int exec_files_root(const char *root, char *err, size_t errlen)
{
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd < 0 ? -errno : fsat_dir_private(fd);
    if (rc == -EPERM)
        set_error(err, errlen, EPERM,
                  "the artifacts root %s is owned by another user or writable by group or others",
                  root);
    else if (rc < 0)
        set_error(err, errlen, -rc, "cannot open the artifacts root %s: %s", root, strerror(-rc));
    if (rc < 0 && fd >= 0)
        close(fd);
    return rc < 0 ? rc : fd;
}

static const char *exec_files_why(int rc)
{
    switch (rc) {
    case -EPERM:
        return "owned by another user or writable by group or others";
    case -ENOTDIR:
        return "not a directory (a symlink or another file is there)";
    case -EEXIST:
        return "it already exists: refusing to use a directory the worker did not create";
    default:
        return strerror(-rc);
    }
}

int exec_files_create(struct exec_files *f, const char *root, const char *worker, const char *name,
                      char *err, size_t errlen)
{
    int root_fd = exec_files_root(root, err, errlen);
    if (root_fd < 0)
        return root_fd;
    int worker_fd = fsat_mkdir_open(root_fd, worker, 0700, false);
    close(root_fd);
    if (worker_fd < 0)
        return set_error(err, errlen, -worker_fd, "cannot use the artifacts directory %s/%s: %s",
                         root, worker, exec_files_why(worker_fd));
    int rc = fsat_mkdir_open(worker_fd, name, 0700, true);
    close(worker_fd);
    if (rc < 0)
        return set_error(err, errlen, -rc, "cannot create the artifacts directory %s/%s/%s: %s",
                         root, worker, name, exec_files_why(rc));
    f->dir_fd = rc;
    rc = fsat_mkdir_open(f->dir_fd, "files", 0700, true);
    if (rc < 0)
        return set_error(err, errlen, -rc, "cannot create %s/%s/%s/files: %s", root, worker, name,
                         exec_files_why(rc));
    f->files_fd = rc;
    return 0;
}

int exec_files_open_log(struct exec_files *f, int which)
{
    int fd = fsat_create(f->dir_fd, log_names[which]);
    if (fd < 0)
        return fd;
    int writer = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (writer < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    f->log_fd[which] = fd;
    return writer;
}

int exec_files_read_log_raw(const struct exec_files *f, int which, int64_t len, struct strbuf *out)
{
    if (f->log_fd[which] < 0) {
        strbuf_append(out, "", 0);
        return -EBADF;
    }
    return fsat_read_fd(f->log_fd[which], len, out);
}

char *exec_files_read_log(const struct exec_files *f, int which, int64_t len)
{
    struct strbuf raw, clean;
    strbuf_init(&raw);
    strbuf_init(&clean);
    (void)exec_files_read_log_raw(f, which, len, &raw);
    utf8_sanitize(raw.data ? raw.data : "", raw.len, &clean);
    strbuf_free(&raw);
    return strbuf_detach(&clean, NULL);
}

int exec_files_write_result(const struct exec_files *f, const char *text, size_t len)
{
    return f->dir_fd < 0 ? -EBADF : fsat_replace(f->dir_fd, "result.json", text, len);
}

void exec_files_close(struct exec_files *f)
{
    int *fds[] = {&f->dir_fd, &f->files_fd, &f->log_fd[0], &f->log_fd[1]};
    for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
}
