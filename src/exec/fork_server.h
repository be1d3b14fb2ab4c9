/* A fork server: a warm interpreter (the python runtime's zygote, a child of
 * the worker) that forks one fresh child per request instead of a cold
 * start. The worker hands it the child's descriptors, uid, gid and limits;
 * the zygote forks with CLONE_PARENT (or, where it cannot, twice, the worker
 * being a child subreaper), so that the worker is the child's parent and
 * supervises it like any spawned child (process.h). The
 * environment, arguments and folder go to the child itself, on its control
 * socket (fork_server_preamble), never through the zygote. A zygote that
 * dies, hangs or grows is replaced; meanwhile requests fail and the caller
 * starts its child cold. */
#ifndef ATTUNE_EXEC_FORK_SERVER_H
#define ATTUNE_EXEC_FORK_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "core/util.h"

struct spawn_limits;

struct fork_server_conf {
    const char *path;  /* the interpreter the zygote runs on */
    char *const *argv; /* the zygote's command line, argv[0] included */
    char *const *envp; /* its environment: PATH and the locale, nothing else */
    const char *name;  /* for the logs: "python" */
};

/* What one child gets. */
struct fork_request {
    int fds[4];  /* its stdin, stdout, stderr and control socket */
    int file_fd; /* -1: none; else its fd 4 */
    uid_t uid;   /* 0: no change */
    gid_t gid;
    const struct spawn_limits *limits; /* NULL: none */
    /* A spare, forked ahead of its execution: before it waits for its
     * launch it rehearses the wrapper's path on a dummy action, so that the
     * pages an execution writes are its own copies already. */
    bool spare;
};

struct fork_server;

/* Starts the zygote (asynchronously: requests fail until it says it is
 * ready). Returns 0 or a negative errno with err set. */
int fork_server_new(sd_event *loop, const struct fork_server_conf *conf, struct fork_server **out,
                    char *err, size_t errlen);
/* Kills and reaps the zygote. NULL-safe. */
void fork_server_free(struct fork_server *fs);

/* Whether a zygote is ready for requests now. */
bool fork_server_ready(const struct fork_server *fs);

/* The interpreter it serves. */
const char *fork_server_path(const struct fork_server *fs);

/* Forks a child for req, waiting at most about a second for the answer (a
 * zygote that does not answer is killed and replaced). Returns 0 with *pid
 * set to a child of the calling process, or a negative errno: -EAGAIN when
 * no zygote is ready; the caller then starts the child cold. */
int fork_server_spawn(struct fork_server *fs, const struct fork_request *req, pid_t *pid);

/* Called from the loop with the child's pid (rc 0), or rc a negative errno. */
typedef void (*fork_spawned_fn)(pid_t pid, int rc, void *userdata);

/* Asks for a child for req without waiting for the answer: done is called
 * from the loop once it comes, or when the zygote died or did not answer
 * within about a second. One such request at a time: -EAGAIN while one is
 * pending or no zygote is ready (done is then not called). req's descriptors
 * may be closed once this returns. A later fork_server_spawn waits for the
 * pending answer first. */
int fork_server_spawn_async(struct fork_server *fs, const struct fork_request *req,
                            fork_spawned_fn done, void *userdata);

/* Whether an asynchronous request awaits its answer. */
bool fork_server_busy(const struct fork_server *fs);

/* The pending request of userdata, if any, is no longer wanted: its child,
 * once known, is killed and reaped, and done is not called. NULL-safe. */
void fork_server_abandon(struct fork_server *fs, void *userdata);

/* Counts a launch the caller ran cold although the fork server could serve
 * its kind (it was down, or refused). */
void fork_server_count_cold(void);

/* What the child reads first on its control socket: a 4-byte little-endian
 * length, then cwd, the number of args, args and envp, NUL-separated. */
void fork_server_preamble(char *const *args, char *const *envp, const char *cwd,
                          struct strbuf *out);

/* Reaps the zombies among this process's children that no live proc and no
 * zygote owns: with sandbox.mode none nothing else does, once the worker is
 * a child subreaper for the fork server. */
void fork_server_reap_strays(const struct fork_server *fs);

#endif
