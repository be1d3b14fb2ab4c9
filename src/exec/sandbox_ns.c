/* The sandbox's userns mode (see sandbox_ns.h): the init found at start and
 * each execution's mount plan, which the spawned child carries out. */
#include "exec/sandbox_ns.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "core/util.h"

#ifndef ATTUNE_SANDBOX_INIT_PATH
#define ATTUNE_SANDBOX_INIT_PATH "/usr/libexec/attune-worker/attune-sandbox-init"
#endif

#define NS_MOUNTS_MAX 24

/* Each execution's own, empty (tmpfs); /tmp at least must be there. */
static const char *const private_dirs[] = {"/tmp", "/var/tmp", "/dev/shm"};
#define TMPFS_FLAGS (MS_NOSUID | MS_NODEV)

struct sandbox_ns {
    const struct sandbox_ns_conf *conf;
    char *root;                                /* the artifacts root, resolved */
    char *files_dst, *home_dst;                /* where files/ and home/ are bound back */
    struct strv owned;                         /* the strings the plan points to */
    struct spawn_mount trees[SPAWN_TREES_MAX]; /* attached after the covers */
    int n_trees;
    struct spawn_mount mounts[NS_MOUNTS_MAX];
    struct spawn_ns spawn;
};

/* Start */

static char *resolved_or_null(const char *path)
{
    return path && *path ? realpath(path, NULL) : NULL;
}

char *sandbox_ns_find_init(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            char *beside = xasprintf("%.*s/attune-sandbox-init", (int)(slash - self), self);
            if (access(beside, X_OK) == 0)
                return beside;
            free(beside);
        }
    }
    return access(ATTUNE_SANDBOX_INIT_PATH, X_OK) == 0 ? xstrdup(ATTUNE_SANDBOX_INIT_PATH) : NULL;
}

int sandbox_ns_conf_init(struct sandbox_ns_conf *c, const struct config *cfg, char *err,
                         size_t errlen)
{
    memset(c, 0, sizeof(*c));
    c->init_path = sandbox_ns_find_init();
    if (!c->init_path)
        return set_error(err, errlen, ENOENT,
                         "sandbox.mode userns: attune-sandbox-init is neither beside the worker's "
                         "program nor at %s",
                         ATTUNE_SANDBOX_INIT_PATH);
    c->init_dir = xstrdup(c->init_path);
    *strrchr(c->init_dir, '/') = '\0';
    c->config_path = resolved_or_null(cfg->source_path);
    c->artifacts_dir = resolved_or_null(cfg->artifacts_dir);
    c->packs_base_dir = resolved_or_null(cfg->packs_base_dir);
    c->runtime_envs_dir = resolved_or_null(cfg->runtime_envs_dir);
    strv_init(&c->hidden);
    snprintf(c->uid_map, sizeof(c->uid_map), "%u %u 1", (unsigned)geteuid(), (unsigned)geteuid());
    snprintf(c->gid_map, sizeof(c->gid_map), "%u %u 1", (unsigned)getegid(), (unsigned)getegid());
    return 0;
}

void sandbox_ns_conf_free(struct sandbox_ns_conf *c)
{
    free(c->init_path);
    free(c->init_dir);
    free(c->config_path);
    free(c->packs_base_dir);
    free(c->artifacts_dir);
    free(c->runtime_envs_dir);
    strv_free(&c->hidden);
    memset(c, 0, sizeof(*c));
}

/* One execution */

struct sandbox_ns *sandbox_ns_new(const struct sandbox_ns_conf *conf, const char *dir)
{
    struct sandbox_ns *ns = xcalloc(1, sizeof(*ns));
    ns->conf = conf;
    strv_init(&ns->owned);
    /* dir is {root}/{worker}/{id}: the root is two folders up. */
    char *copy = xstrdup(dir);
    const char *below = copy + strlen(copy);
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(copy, '/');
        if (!slash)
            break;
        if (up == 1)
            below = dir + (slash - copy);
        *slash = '\0';
    }
    char *root = realpath(*copy ? copy : "/", NULL);
    ns->root = root ? root : xstrdup(copy);
    ns->files_dst = xasprintf("%s%s/files", ns->root, below);
    ns->home_dst = xasprintf("%s%s/home", ns->root, below);
    free(copy);
    return ns;
}

void sandbox_ns_free(struct sandbox_ns *ns)
{
    if (!ns)
        return;
    strv_free(&ns->owned);
    free(ns->root);
    free(ns->files_dst);
    free(ns->home_dst);
    free(ns);
}

/* The plan */

static const char *own(struct sandbox_ns *ns, char *s)
{
    strv_push_owned(&ns->owned, s);
    return s;
}

static void add(struct sandbox_ns *ns, const struct spawn_mount *m)
{
    if (ns->spawn.n_mounts < NS_MOUNTS_MAX)
        ns->mounts[ns->spawn.n_mounts++] = *m;
}

/* A folder kept where it is, whatever covers its parents: taken now,
 * attached after the covers (ns_attach_trees_range). */
static void add_keep(struct sandbox_ns *ns, const char *path, bool readonly, bool optional)
{
    if (!path || ns->n_trees >= SPAWN_TREES_MAX)
        return;
    int tree = ns->n_trees++;
    ns->trees[tree] = (struct spawn_mount){.op = SPAWN_TREE_ATTACH,
                                           .target = path,
                                           .tree = tree,
                                           .readonly = readonly,
                                           .mkdir = true,
                                           .optional = optional};
    add(ns, &(struct spawn_mount){
                .op = SPAWN_TREE_OPEN, .source = path, .tree = tree, .optional = optional});
}

static void ns_attach_trees_range(struct sandbox_ns *ns, int first, int end)
{
    for (int i = first; i < end; i++)
        add(ns, &ns->trees[i]);
}

static bool is_under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return path && strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* Whether a tmpfs of the plan hides path: the rest of the tree stays where
 * it is, read-only with all of it (SPAWN_READONLY from /). */
static bool is_covered(const struct sandbox_ns *ns, const char *path)
{
    for (size_t i = 0; i < ARRAY_SIZE(private_dirs); i++)
        if (is_under(path, private_dirs[i]))
            return true;
    return is_under(path, ns->root) ||
           (ns->conf->artifacts_dir && is_under(path, ns->conf->artifacts_dir));
}

/* A folder the action runs from, taken and put back only where a cover
 * would hide it: each kept tree costs a copy and its mounts. */
static void add_keep_if_covered(struct sandbox_ns *ns, const char *path, bool optional)
{
    if (path && is_covered(ns, path))
        add_keep(ns, path, true, optional);
}

static void add_tmpfs(struct sandbox_ns *ns, const char *target, unsigned long flags,
                      const char *mode, bool optional)
{
    add(ns, &(struct spawn_mount){.source = "tmpfs",
                                  .target = target,
                                  .fstype = "tmpfs",
                                  .flags = TMPFS_FLAGS | flags,
                                  .data = mode,
                                  .mkdir = !optional,
                                  .optional = optional});
}

static void add_empty_file_over(struct sandbox_ns *ns, const char *path)
{
    add(ns, &(struct spawn_mount){
                .source = "/dev/null", .target = path, .flags = MS_BIND, .optional = true});
}

/* The configuration's whole folder goes under an empty read-only tmpfs when
 * nothing the action needs is in it; else an empty file covers the file. */
static void add_config_cover(struct sandbox_ns *ns, const char *pack_dir, const char *program)
{
    const struct sandbox_ns_conf *c = ns->conf;
    if (!c->config_path)
        return;
    char *dir = xstrdup(c->config_path);
    *strrchr(dir, '/') = '\0';
    const char *needed[] = {pack_dir, program,     c->packs_base_dir, c->runtime_envs_dir,
                            ns->root, c->init_path};
    bool whole = *dir != '\0';
    for (size_t i = 0; i < ARRAY_SIZE(needed) && whole; i++)
        whole = !is_under(needed[i], dir);
    if (whole) {
        add_tmpfs(ns, own(ns, dir), MS_NOEXEC | MS_RDONLY, "mode=0755", false);
        return;
    }
    free(dir);
    add_empty_file_over(ns, c->config_path);
}

const struct spawn_ns *sandbox_ns_prepare(struct sandbox_ns *ns, const char *pack_dir,
                                          const char *program)
{
    ns->spawn = (struct spawn_ns){.clone_flags = SPAWN_NS_FLAGS,
                                  .uid_map = ns->conf->uid_map,
                                  .gid_map = ns->conf->gid_map,
                                  .mounts = ns->mounts,
                                  .exec_check = program,
                                  .init_path = ns->conf->init_path,
                                  .status_fd = SANDBOX_NS_STATUS_FD};
    ns->n_trees = 0;
    char *resolved = resolved_or_null(pack_dir);
    if (pack_dir && !resolved)
        return NULL;
    const char *pack = resolved ? own(ns, resolved) : NULL;
    add(ns, &(struct spawn_mount){.target = "/", .flags = MS_REC | MS_PRIVATE});
    /* What the action runs: the pack, its environments and the init (a build
     * tree under /tmp, say), put back before the artifacts are covered. */
    add_keep_if_covered(ns, ns->conf->packs_base_dir, true);
    add_keep_if_covered(ns, ns->conf->runtime_envs_dir, true);
    add_keep_if_covered(ns, pack, false);
    add_keep_if_covered(ns, ns->conf->init_dir, false);
    int programs = ns->n_trees;
    add_keep(ns, ns->files_dst, false, false);
    add_keep(ns, ns->home_dst, false, false);
    /* Nothing the worker's user may write is the action's to write, but
     * for what is mounted over it below. */
    add(ns, &(struct spawn_mount){.op = SPAWN_READONLY, .target = "/"});
    for (size_t i = 0; i < ARRAY_SIZE(private_dirs); i++)
        add_tmpfs(ns, private_dirs[i], 0, "mode=1777", i > 0);
    ns_attach_trees_range(ns, 0, programs);
    /* Every execution's folder, the worker's logs and results: out of sight,
     * in the configured root too when run-action was given another. */
    if (ns->conf->artifacts_dir && strcmp(ns->conf->artifacts_dir, ns->root) != 0)
        add_tmpfs(ns, ns->conf->artifacts_dir, 0, "mode=0755", true);
    add_tmpfs(ns, ns->root, 0, "mode=0755", false);
    ns_attach_trees_range(ns, programs, ns->n_trees);
    /* Last: a folder kept above may hold them. */
    add_config_cover(ns, pack, program);
    for (size_t i = 0; i < ns->conf->hidden.len; i++)
        add_empty_file_over(ns, ns->conf->hidden.items[i]);
    /* The root's tmpfs holds only the way down to files/ and home/. */
    add(ns, &(struct spawn_mount){.target = ns->root,
                                  .flags = MS_REMOUNT | MS_RDONLY | TMPFS_FLAGS,
                                  .data = "mode=0755"});
    add(ns, &(struct spawn_mount){.source = "proc",
                                  .target = "/proc",
                                  .fstype = "proc",
                                  .flags = MS_NOSUID | MS_NODEV | MS_NOEXEC});
    return &ns->spawn;
}
