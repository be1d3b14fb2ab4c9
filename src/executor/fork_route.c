/* Starting the python fork server and choosing it per launch (see fork_route.h). */
#include "executor/fork_route.h"

#include <errno.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include "core/log.h"
#include "core/yaml.h"
#include "exec/fork_server.h"
#include "exec/sandbox.h"

#define PACK_YAML_MAX (1024 * 1024)

static struct runtime *python_runtime(const struct registry *reg)
{
    for (size_t i = 0; i < reg->count; i++)
        if (reg->runtimes[i] == &runtime_python && runtime_python.usable)
            return reg->runtimes[i];
    return NULL;
}

void executor_fork_server_start(struct executor_settings *s, const struct config *cfg,
                                sd_event *loop)
{
    struct runtime *rt = python_runtime(s->registry);
    if (!cfg->python_fork_server || !rt)
        return;
    if (s->sandbox && s->sandbox->mode == SANDBOX_MODE_USERNS) {
        log_info("python fork server: off in sandbox.mode userns (each action needs "
                 "namespaces of its own); python actions start cold");
        return;
    }
    /* The sandbox made us one already; the zygote's children must become ours. */
    if (!s->sandbox && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
        log_warn("python fork server: cannot become a child subreaper (%s); python actions "
                 "start cold",
                 strerror(errno));
        return;
    }
    struct strv argv, env;
    strv_init(&argv);
    strv_init(&env);
    runtime_python_zygote_argv(rt, cfg->python_preload, &argv);
    runtime_python_zygote_env(&s->base_env, &env);
    const struct fork_server_conf conf = {
        .path = rt->interpreter, .argv = argv.items, .envp = env.items, .name = "python"};
    char err[512];
    if (fork_server_new(loop, &conf, &s->fork_server, err, sizeof(err)) < 0)
        log_warn("python fork server: %s; python actions start cold", err);
    strv_free(&argv);
    strv_free(&env);
}

/* What the zygote read at its start must be what this action would read:
 * the zygote's locale is the base environment's. */
static bool env_matches_zygote(const struct executor_settings *s, const struct strv *env)
{
    return runtime_python_env_fits(env->items, &s->base_env);
}

/* pack.yaml's python.fork_server, read again only when the file changed. */
struct pack_choice {
    char *pack_dir;
    struct timespec mtime;
    bool cold;
};

static struct pack_choice pack_cache[16];

static bool pack_wants_cold(const char *pack_dir)
{
    char *path = xasprintf("%s/pack.yaml", pack_dir);
    struct stat st;
    bool found = stat(path, &st) == 0;
    size_t slot = 0;
    for (size_t i = 0; i < ARRAY_SIZE(pack_cache); i++) {
        struct pack_choice *c = &pack_cache[i];
        if (c->pack_dir && strcmp(c->pack_dir, pack_dir) == 0) {
            slot = i;
            break;
        }
        if (!c->pack_dir)
            slot = i;
    }
    struct pack_choice *c = &pack_cache[slot];
    bool fresh = c->pack_dir && strcmp(c->pack_dir, pack_dir) == 0 && found &&
                 c->mtime.tv_sec == st.st_mtim.tv_sec && c->mtime.tv_nsec == st.st_mtim.tv_nsec;
    if (!fresh) {
        json_t *doc = NULL;
        char err[256];
        bool cold = found && yaml_load_file(path, PACK_YAML_MAX, &doc, err, sizeof(err)) == 0 &&
                    json_is_false(json_object_get(json_object_get(doc, "python"), "fork_server"));
        json_decref(doc);
        free(c->pack_dir);
        *c = (struct pack_choice){xstrdup(pack_dir), found ? st.st_mtim : (struct timespec){0},
                                  cold};
    }
    free(path);
    return c->cold;
}

bool executor_pack_allows_warm_python(const struct action *action)
{
    return !action->pack_dir || !pack_wants_cold(action->pack_dir);
}

struct fork_server *executor_fork_route(const struct executor_settings *s, const struct launch *l,
                                        const struct action *action, const struct strv *env,
                                        bool in_namespaces)
{
    if (!s->fork_server || !l->forkable || in_namespaces)
        return NULL;
    if (strcmp(l->path, fork_server_path(s->fork_server)) != 0 || !env_matches_zygote(s, env))
        return NULL;
    return executor_pack_allows_warm_python(action) ? s->fork_server : NULL;
}
