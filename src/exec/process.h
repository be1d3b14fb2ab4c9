/* A child process supervised on the event loop: spawned (exec/spawn.h) into
 * its own session and process group with a clean environment, an empty signal
 * mask, only the intended fds, no_new_privs, SIGKILL when the worker dies,
 * in the sandbox's uid mode a uid and gid of its own, in its userns mode
 * namespaces of its own; stdin and the control channel fed without
 * blocking; stdout and stderr streamed to output sinks; exit watched through a
 * pidfd; a timeout terminates the whole group (SIGTERM, then SIGKILL). */
#ifndef ATTUNE_EXEC_PROCESS_H
#define ATTUNE_EXEC_PROCESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "core/util.h"
#include "exec/output.h"

struct spawn_limits;

/* The child's fd 3, when there is one. */
enum proc_control {
    PROC_CONTROL_NONE,   /* nothing at fd 3 */
    PROC_CONTROL_PIPE,   /* fd 3 reads control_data, then end of file */
    PROC_CONTROL_SOCKET, /* fd 3 is a stream socket: reads control_data, then
                            end of file; what the child writes back is the reply */
};

/* Where the child finds an in-memory file it was given (proc_spec.file_fd). */
#define PROC_FILE_FD 4

struct sandbox_ns;
struct fork_server;
struct proc;

struct proc_spec {
    const char *path; /* absolute path of the program */
    char *const *argv;
    char *const *envp;
    const char *cwd;
    const void *stdin_data; /* written to the child's stdin, which is then closed */
    size_t stdin_len;
    enum proc_control control;
    const void *control_data;
    size_t control_len;
    int file_fd;      /* > 2: handed to the child as PROC_FILE_FD (the parent keeps its own) */
    size_t reply_max; /* bytes of reply kept at most */
    struct output_sink *stdout_sink; /* borrowed; must outlive the process */
    struct output_sink *stderr_sink;
    uint64_t timeout_ms;    /* 0: none */
    uint64_t kill_grace_ms; /* between SIGTERM and SIGKILL */
    uid_t uid;              /* non-zero: the child runs as this uid and gid */
    gid_t gid;
    const struct spawn_limits *limits; /* NULL: none (exec/sandbox_limits.h) */
    /* Non-NULL: the child runs in these namespaces (exec/sandbox_ns.h), under
     * the sandbox's init, which reports the child's own exit or signal. */
    struct sandbox_ns *ns;
    /* Non-NULL (with a control socket and no ns): the child is forked by
     * this fork server (exec/fork_server.h) when it can, else started cold
     * from path and argv; a forked child reads fork_args, envp and cwd
     * first on its control socket. */
    struct fork_server *fork_server;
    char *const *fork_args;
    /* Called once the child exists, with its pid known: before proc_start
     * or proc_prespawn returns, or from the loop when the fork server
     * answers for a child asked of it without waiting. */
    void (*started)(struct proc *proc, void *userdata);
};

struct proc_result {
    bool exited; /* exit_code is valid */
    int exit_code;
    int signal; /* signal that killed the main process, 0 if none */
    bool timed_out;
    bool cancelled;
    uint64_t duration_ms;
    struct strbuf reply;
    bool reply_truncated;
    /* stdout or stderr was closed before its end of file (a read error, or
     * something outside the group still held it after the kill grace). */
    bool output_cut;
};

struct proc;
typedef void (*proc_done_fn)(struct proc *proc, void *userdata);

/* Starts the child. done is called once, from the loop, when the exit was
 * seen and stdout, stderr and the control channel reached end of file (or the
 * kill grace ran out); the callback may free the proc. The spec's buffers are
 * copied. Returns 0, or a negative errno with the reason in err (nothing is
 * left running then).
 * With spec->fork_server ready and forking nothing else, the child is asked
 * of it without waiting: proc_started is false until the answer, when the
 * child is fed its launch and spec->started called (a refusal, or no answer
 * within about a second, starts it cold instead). A proc_cancel before then
 * ends it unstarted: a child forked meanwhile is killed before it was given
 * anything, and done hears of it with neither an exit status nor a signal,
 * proc_started still false. */
int proc_start(sd_event *loop, const struct proc_spec *spec, proc_done_fn done, void *userdata,
               struct proc **out, char *err, size_t errlen);

/* A start in two phases, for a spare process started ahead of its work
 * (executor/spares.h). First the spawn, as proc_start makes it, of what spec
 * says of the program (path, argv, envp, cwd, control, uid, gid, limits,
 * fork_server: forked by it as a spare when it can, else started from path
 * and argv; no namespaces, no file): its pipes are opened but nothing is fed or read yet,
 * and only its exit is watched: exited is called (from the loop) if it ends
 * before proc_arm, and may free the proc. Returns 0, or a negative errno with
 * the reason in err (nothing left running). */
/* With spec->fork_server ready, the child is forked by it, asked for without
 * waiting: the proc exists at once, its child once spec->started is called;
 * if the fork fails, exited is called with neither an exit status nor a
 * signal. -EBUSY: the fork server is forking another; try again after its
 * started. */
int proc_prespawn(sd_event *loop, const struct proc_spec *spec, proc_done_fn exited, void *userdata,
                  struct proc **out, char *err, size_t errlen);

/* Then the rest of proc_start for one piece of work, from spec: stdin_data,
 * control_data (spec->control must be the prespawn's), reply_max, the sinks,
 * timeout_ms (counted from now, as the duration is) and kill_grace_ms; done
 * replaces exited. Returns 0, or a negative errno with the reason in err
 * (-ESRCH: the process is gone), the proc then still the caller's to free. */
int proc_arm(struct proc *proc, const struct proc_spec *spec, proc_done_fn done, void *userdata,
             char *err, size_t errlen);

const struct proc_result *proc_get_result(const struct proc *proc);
pid_t proc_pid(const struct proc *proc);

/* Whether the child exists (a spare being forked does not yet). */
bool proc_started(const struct proc *proc);

/* Children at work now: started and not finished, idle spares aside. */
size_t proc_busy_count(void);

/* Whether pid is the unreaped child of a live proc. */
bool proc_is_live(pid_t pid);

/* Stops the child's whole process group: SIGTERM now, SIGKILL grace_ms
 * later (0: the spec's kill_grace_ms). A termination already under way
 * (a timeout) keeps its own grace. */
void proc_cancel(struct proc *proc, uint64_t grace_ms);

/* Releases everything; a child still running is killed with its group first. */
void proc_free(struct proc *proc);

#endif
