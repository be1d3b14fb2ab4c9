/* The sandbox (see sandbox.h): the mode decided at start; in uid mode the
 * uid handed to an execution and its folders, and the sweep of its uid; in
 * userns mode the execution's home and namespaces (sandbox_ns.c). */
#include "exec/sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/util.h"
#include "exec/proc_stat.h"
#include "exec/spawn.h"

/* At 1 ms apart: what SIGKILL has not ended by then is stuck in the kernel. */
#define SWEEP_ROUNDS 50

/* 1: not probed yet; else the probe's answer. */
static int userns_probed = 1;
static bool userns_probe_deferred;

/* Whether user namespaces work here: probed once, by a trivial child; or,
 * deferred, taken for granted until sandbox_userns_refusal asks. */
static int sandbox_userns_works(void)
{
    if (userns_probed > 0 && !userns_probe_deferred)
        userns_probed = spawn_probe_namespaces();
    return userns_probed > 0 ? 0 : userns_probed;
}

void sandbox_defer_userns_probe(void)
{
    userns_probe_deferred = true;
}

static void sandbox_sweep(uid_t uid, pid_t spare);

static int sandbox_refuse_userns(bool automatic, int probe, char *err, size_t errlen)
{
    return set_error(err, errlen, EINVAL,
                     "sandbox.mode: %s needs user namespaces, which this host refuses (%s): "
                     "allow them (sysctl user.max_user_namespaces > 0, and "
                     "kernel.unprivileged_userns_clone=1 or "
                     "kernel.apparmor_restrict_unprivileged_userns=0 where those exist), run the "
                     "worker as root for sandbox.mode: uid, or set sandbox.mode: none to run "
                     "actions unsandboxed",
                     automatic ? "auto (the worker is not root, so userns)" : "userns",
                     strerror(-probe));
}

int sandbox_resolve_mode(const struct config *cfg, enum sandbox_mode *mode, char *err,
                         size_t errlen)
{
    bool root = geteuid() == 0;
    *mode = config_sandbox_mode(cfg);
    if (*mode == SANDBOX_MODE_USERNS && root)
        return set_error(err, errlen, EINVAL,
                         "sandbox.mode: userns is for a worker that is not root (inside, the "
                         "action would keep root's capabilities); as root use uid or auto");
    if (*mode == SANDBOX_MODE_UID && !root)
        return set_error(err, errlen, EINVAL,
                         "sandbox.mode: uid needs the worker to run as root (it changes each "
                         "action's uid); run it as root, or use userns or auto");
    bool automatic = *mode == SANDBOX_MODE_AUTO;
    if (automatic)
        *mode = root ? SANDBOX_MODE_UID : SANDBOX_MODE_USERNS;
    int probe = *mode == SANDBOX_MODE_USERNS ? sandbox_userns_works() : 0;
    if (probe < 0)
        return sandbox_refuse_userns(automatic, probe, err, errlen);
    char *init = *mode == SANDBOX_MODE_USERNS ? sandbox_ns_find_init() : NULL;
    if (*mode == SANDBOX_MODE_USERNS && !init)
        return set_error(err, errlen, ENOENT,
                         "sandbox.mode: userns needs attune-sandbox-init, which is neither "
                         "beside the worker's program nor where it is installed (reinstall the "
                         "worker)");
    free(init);
    return 0;
}

int sandbox_userns_refusal(const struct config *cfg, char *err, size_t errlen)
{
    enum sandbox_mode mode;
    if (!userns_probe_deferred)
        return 0;
    userns_probe_deferred = false;
    return sandbox_resolve_mode(cfg, &mode, err, errlen);
}

const char *sandbox_none_warning(enum sandbox_mode mode)
{
    if (mode != SANDBOX_MODE_NONE)
        return NULL;
    return "SANDBOX OFF (sandbox.mode: none): every action runs as the worker's own user in "
           "its view of the system; an action can read the worker's memory and environment, "
           "the configuration, other executions' secrets and results. Set sandbox.mode: auto";
}

static int sandbox_mode_new(const struct config *cfg, struct sandbox *sb, char *err, size_t errlen)
{
    uint32_t first, count;
    if (sb->mode == SANDBOX_MODE_USERNS)
        return sandbox_ns_conf_init(&sb->ns, cfg, err, errlen);
    if (!config_parse_uid_range(cfg->sandbox_uid_range, &first, &count))
        return set_error(err, errlen, EINVAL, "sandbox.uid_range: not a uid range");
    uid_pool_init(&sb->uids, first, count);
    uid_homes_init(&sb->homes);
    metrics_sandbox_uids(0, count);
    return 0;
}

int sandbox_new(const struct config *cfg, struct sandbox **out, char *err, size_t errlen)
{
    enum sandbox_mode mode;
    *out = NULL;
    int rc = sandbox_resolve_mode(cfg, &mode, err, errlen);
    if (rc == 0)
        metrics_sandbox_mode(mode);
    if (rc == 0 && mode == SANDBOX_MODE_NONE)
        log_warn("%s", sandbox_none_warning(mode));
    if (rc < 0 || mode == SANDBOX_MODE_NONE)
        return rc;
    /* Escapers (setsid, double fork) become our children, not init's. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
        return set_error(err, errlen, -errno, "cannot become a child subreaper: %s",
                         strerror(errno));
    struct sandbox *sb = xcalloc(1, sizeof(*sb));
    sb->mode = mode;
    rc = sandbox_mode_new(cfg, sb, err, errlen);
    if (rc < 0) {
        free(sb);
        return rc;
    }
    *out = sb;
    return 0;
}

void sandbox_free(struct sandbox *sb)
{
    if (!sb)
        return;
    if (sb->mode == SANDBOX_MODE_UID) {
        uid_pool_free(&sb->uids);
        uid_homes_free(&sb->homes);
    } else
        sandbox_ns_conf_free(&sb->ns);
    free(sb);
}

void sandbox_set_uid_hook(struct sandbox *sb, sandbox_uid_hook fn, void *userdata)
{
    sb->on_uid = fn;
    sb->on_uid_userdata = userdata;
}

static void sandbox_tell(const struct sandbox *sb, uid_t uid, bool taken)
{
    metrics_sandbox_uids((uint32_t)sb->uids.n_in_use, sb->uids.count);
    if (sb->on_uid)
        sb->on_uid(uid, taken, sb->on_uid_userdata);
}

void sandbox_hide(struct sandbox *sb, const char *path)
{
    char *real = sb && sb->mode == SANDBOX_MODE_USERNS ? realpath(path, NULL) : NULL;
    if (real)
        strv_push_owned(&sb->ns.hidden, real);
}

/* The execution's folder is the worker's; the uid may only pass through it,
 * the worker's folder above it and the artifacts root (where the worker owns
 * them) to reach files/ and home/. */
static int sandbox_open_path(const char *dir)
{
    char *path = xstrdup(dir);
    int rc = 0;
    for (int up = 0; up < 2 && rc == 0; up++) {
        char *slash = strrchr(path, '/');
        struct stat st;
        if (!slash || slash == path)
            break;
        *slash = '\0';
        if (stat(path, &st) == 0 && st.st_uid == geteuid() && !(st.st_mode & S_IXOTH))
            rc = chmod(path, (st.st_mode & 07777) | S_IXOTH) < 0 ? -errno : 0;
    }
    free(path);
    return rc;
}

/* files/ (held open by the caller) and a new home/ become the uid's, through
 * descriptors: no path below the execution's folder is followed. */
static int sandbox_give(struct sandbox *sb, struct sandbox_slot *slot, int dir_fd, int files_fd)
{
    slot->files_fd = fcntl(files_fd, F_DUPFD_CLOEXEC, 0);
    if (slot->files_fd < 0)
        return -errno;
    int rc = uid_homes_place(&sb->homes, dir_fd);
    if (rc < 0)
        return rc;
    slot->home_fd = openat(dir_fd, "home", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (slot->home_fd < 0)
        return -errno;
    const int fds[] = {slot->files_fd, slot->home_fd};
    for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
        if (fchown(fds[i], slot->uid, (gid_t)slot->uid) < 0 || fchmod(fds[i], 0700) < 0)
            return -errno;
    return fchmod(dir_fd, 0711) < 0 ? -errno : 0;
}

/* The execution's own uid is the worker's: files/ and home/ stay as they are,
 * and the namespaces hide the rest. */
static int sandbox_enter_ns(struct sandbox *sb, const char *dir, int dir_fd, int files_fd,
                            struct sandbox_slot *slot, char *err, size_t errlen)
{
    /* First: sandbox_leave knows the slot by it, whatever fails below. */
    slot->ns = sandbox_ns_new(&sb->ns, dir);
    slot->home_dir = xasprintf("%s/home", dir);
    slot->files_fd = fcntl(files_fd, F_DUPFD_CLOEXEC, 0);
    int rc = slot->files_fd < 0 || mkdirat(dir_fd, "home", 0700) < 0 ? -errno : 0;
    if (rc == 0) {
        slot->home_fd = openat(dir_fd, "home", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        rc = slot->home_fd < 0 ? -errno : 0;
    }
    if (rc < 0)
        return set_error(err, errlen, rc, "cannot make the private home of %s: %s", dir,
                         strerror(-rc));
    return 0;
}

static void sandbox_leave_ns(struct sandbox_slot *slot)
{
    /* The namespace's init is gone: the kernel killed what was left in it. */
    sandbox_ns_free(slot->ns);
    if (slot->files_fd >= 0)
        close(slot->files_fd);
    if (slot->home_fd >= 0)
        close(slot->home_fd);
    free(slot->home_dir);
    memset(slot, 0, sizeof(*slot));
}

int sandbox_take_uid(struct sandbox *sb, uid_t *uid)
{
    *uid = 0;
    if (!sb || sb->mode != SANDBOX_MODE_UID)
        return 0;
    int rc = uid_pool_acquire(&sb->uids, uid);
    if (rc == 0)
        sandbox_tell(sb, *uid, true);
    return rc;
}

void sandbox_drop_uid(struct sandbox *sb, uid_t uid, pid_t main_pid)
{
    if (!sb || !uid)
        return;
    sandbox_sweep(uid, main_pid);
    uid_pool_release(&sb->uids, uid);
    sandbox_tell(sb, uid, false);
}

int sandbox_enter(struct sandbox *sb, const char *dir, int dir_fd, int files_fd,
                  struct sandbox_slot *slot, char *err, size_t errlen)
{
    if (sb && sb->mode == SANDBOX_MODE_USERNS) {
        memset(slot, 0, sizeof(*slot));
        slot->files_fd = slot->home_fd = -1;
        return sandbox_enter_ns(sb, dir, dir_fd, files_fd, slot, err, errlen);
    }
    uid_t uid;
    int rc = sandbox_take_uid(sb, &uid);
    if (rc < 0) {
        memset(slot, 0, sizeof(*slot));
        slot->files_fd = slot->home_fd = -1;
        return set_error(err, errlen, rc, "no free uid left in sandbox.uid_range");
    }
    return sandbox_enter_on_uid(sb, uid, dir, dir_fd, files_fd, slot, err, errlen);
}

int sandbox_enter_on_uid(struct sandbox *sb, uid_t uid, const char *dir, int dir_fd, int files_fd,
                         struct sandbox_slot *slot, char *err, size_t errlen)
{
    memset(slot, 0, sizeof(*slot));
    slot->files_fd = slot->home_fd = -1;
    if (!sb || !uid)
        return 0;
    slot->uid = uid;
    slot->home_dir = xasprintf("%s/home", dir);
    int rc = sandbox_give(sb, slot, dir_fd, files_fd);
    if (rc == 0)
        rc = sandbox_open_path(dir);
    if (rc < 0)
        return set_error(err, errlen, rc, "cannot hand %s to uid %u: %s", dir, (unsigned)uid,
                         strerror(-rc));
    return 0;
}

void sandbox_env(const struct sandbox_slot *slot, struct strv *env)
{
    if (!slot->uid && !slot->ns)
        return;
    strv_setenv(env, "HOME", slot->home_dir);
    strv_setenv(env, "TMPDIR", slot->home_dir);
    /* Unset, bash looks the uid up (NSS: nsswitch.conf, passwd, userdb) only
     * to fall back on /bin/sh for a uid without an entry: the same, for free. */
    if (!strv_getenv(env, "SHELL"))
        strv_setenv(env, "SHELL", "/bin/sh");
}

/* Reaps the zombies among our children that ran on uid (escapers the sweep
 * killed, re-parented to us as the subreaper) and counts the processes of
 * uid still alive. */
static int sandbox_reap(uid_t uid, pid_t spare)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int alive = 0;
    if (!d)
        return 0;
    pid_t self = getpid();
    int dfd = dirfd(d);
    while ((e = readdir(d))) {
        char state;
        struct stat st;
        pid_t ppid;
        pid_t pid = (pid_t)strtol(e->d_name, NULL, 10);
        if (pid <= 0)
            continue;
        /* The folder, not a file in it: a zombie's files belong to root. */
        if (pid == spare || fstatat(dfd, e->d_name, &st, 0) < 0 || st.st_uid != uid)
            continue;
        if (!proc_stat_read(pid, &state, &ppid))
            continue;
        if (state != 'Z' && state != 'X')
            alive++;
        else if (ppid == self)
            waitpid(pid, NULL, WNOHANG);
    }
    closedir(d);
    return alive;
}

/* 1 when main_pid is our child that ran on uid and waits to be reaped by the
 * event loop: a zombie the kernel still counts among uid's processes. */
static int sandbox_unreaped(uid_t uid, pid_t main_pid)
{
    siginfo_t si = {0};
    if (main_pid <= 0 || waitid(P_PID, (id_t)main_pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
        return 0;
    return si.si_pid == main_pid && si.si_uid == uid;
}

/* Kills until nothing of uid is alive: a process forked during one round, or
 * still dying, is seen by the next. The helper of the first round asks the
 * kernel's count of the uid's processes before it kills, so that the common
 * case (the action left nothing) costs that one short-lived helper and no
 * scan of /proc. The count covers every process of the uid, not only this
 * execution's descendants: also what a run-action killed mid-execution left
 * on it. */
static void sandbox_sweep(uid_t uid, pid_t spare)
{
    const struct timespec pause = {.tv_sec = 0, .tv_nsec = 1000 * 1000};
    int alive = 0;
    for (int round = 0; round < SWEEP_ROUNDS; round++) {
        int rc = round == 0 ? spawn_kill_uid_extra(uid, sandbox_unreaped(uid, spare))
                            : spawn_kill_uid(uid);
        if (rc < 0) {
            log_warn("cannot kill the processes left on uid %u: %s", (unsigned)uid, strerror(-rc));
            metrics_sandbox_swept(round > 0, 0);
            return;
        }
        if (round == 0 && rc == 0) {
            metrics_sandbox_swept(false, 0);
            return;
        }
        alive = sandbox_reap(uid, spare);
        if (alive == 0) {
            metrics_sandbox_swept(true, 0);
            return;
        }
        nanosleep(&pause, NULL);
    }
    metrics_sandbox_swept(true, alive);
    log_warn("%d processes of uid %u survived %d rounds of SIGKILL", alive, (unsigned)uid,
             SWEEP_ROUNDS);
}

void sandbox_leave(struct sandbox *sb, struct sandbox_slot *slot, pid_t main_pid)
{
    if (sb && slot->ns) {
        sandbox_leave_ns(slot);
        return;
    }
    /* An execution that never took a uid holds nothing (its slot may be all zeros). */
    if (!sb || !slot->uid)
        return;
    sandbox_sweep(slot->uid, main_pid);
    /* A later execution on the same uid must not reach this one's files. */
    const int fds[] = {slot->files_fd, slot->home_fd};
    for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
        if (fds[i] >= 0 && fchown(fds[i], geteuid(), getegid()) < 0)
            log_warn("cannot take the folders of %s back from uid %u: %s", slot->home_dir,
                     (unsigned)slot->uid, strerror(errno));
    uid_pool_release(&sb->uids, slot->uid);
    sandbox_tell(sb, slot->uid, false);
    for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(slot->home_dir);
    memset(slot, 0, sizeof(*slot));
    /* After execution.completed (see executor.c), ahead of the next start. */
    uid_homes_refill(&sb->homes);
}
