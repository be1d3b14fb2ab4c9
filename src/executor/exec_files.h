/* An execution's files below the artifacts root, reached only through
 * directory descriptors the worker holds and never through a symlink: the
 * execution's own new directory, its files/, the two logs (kept open so that
 * the result reads back what the worker wrote) and result.json. */
#ifndef ATTUNE_EXECUTOR_EXEC_FILES_H
#define ATTUNE_EXECUTOR_EXEC_FILES_H

#include <stddef.h>
#include <stdint.h>

#include "core/util.h"

struct exec_files {
    int dir_fd; /* {root}/{worker}/{execution}/ */
    /* files/: the action's own folder. Held so that a sandbox can hand it to
     * the execution's user (fchown) without going through its path again. */
    int files_fd;
    int log_fd[2]; /* stdout.log, stderr.log: read back for the result */
};

enum { EXEC_FILES_STDOUT, EXEC_FILES_STDERR };

/* All descriptors -1. */
void exec_files_init(struct exec_files *f);

/* Creates {root}/{worker}/{name}/ (worker: made 0700 when missing, else a
 * private directory of the worker's user; name: must not exist yet) and its
 * files/. On failure, the reason is in err. */
int exec_files_create(struct exec_files *f, const char *root, const char *worker, const char *name,
                      char *err, size_t errlen);

/* Creates the log (EXEC_FILES_STDOUT or _STDERR) as a new file; returns a
 * descriptor of it for the writer (the caller's to close), or -errno. */
int exec_files_open_log(struct exec_files *f, int which);

/* The first len bytes of the log, read from the kept descriptor, as text
 * (invalid UTF-8 replaced). */
char *exec_files_read_log(const struct exec_files *f, int which, int64_t len);
/* The same bytes, raw, into out. */
int exec_files_read_log_raw(const struct exec_files *f, int which, int64_t len, struct strbuf *out);

/* Writes result.json (0600) by a new file renamed into place. */
int exec_files_write_result(const struct exec_files *f, const char *text, size_t len);

void exec_files_close(struct exec_files *f);

#endif
