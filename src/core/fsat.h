/* Files and directories below a held directory descriptor, never reached
 * through a symlink, a FIFO or a device: what the artifact store uses so that
 * nobody who can write somewhere below its root can redirect the worker. */
#ifndef ATTUNE_CORE_FSAT_H
#define ATTUNE_CORE_FSAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/util.h"

/* Whether the directory open at fd belongs to this process's user and no
 * one else can write to it: 0, or -EPERM. */
int fsat_dir_private(int fd);

/* The directory name below dirfd, created with mode when missing, opened
 * (O_DIRECTORY | O_NOFOLLOW). With must_be_new, an existing entry of that
 * name is refused (-EEXIST); else an existing one must be a directory that
 * fsat_dir_private accepts. Returns the descriptor or a negative errno. */
int fsat_mkdir_open(int dirfd, const char *name, mode_t mode, bool must_be_new);

/* A new regular file name below dirfd (mode 0600), open for reading and
 * writing; an existing entry of that name (a symlink, a FIFO, a file) is
 * refused with -EEXIST, never opened. Returns the descriptor or -errno. */
int fsat_create(int dirfd, const char *name);

/* Writes data to a new file beside name and renames it into place, so that
 * name is either its old content or all of data, and a symlink planted as
 * name is replaced, not followed. */
int fsat_replace(int dirfd, const char *name, const void *data, size_t len);

/* Up to max bytes from the start of fd into out (appended). */
int fsat_read_fd(int fd, int64_t max, struct strbuf *out);

/* Removes name below dirfd and, for a directory, everything in it, without
 * following any symlink (a symlink is removed as itself). */
int fsat_remove_tree(int dirfd, const char *name);

#endif
