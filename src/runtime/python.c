/* The python runtime: runs .py actions under python3 through a wrapper that
 * provides get_secret(name) and calls run(**parameters) when defined; secrets
 * and parameters travel on a socket at fd 3, which also carries the answer,
 * both in marshal format (see pymarshal.h for why not JSON). */
#include "runtime/pymarshal.h"

#include <errno.h>
#include <string.h>

#include "exec/fork_server.h"
#include "runtime/execution_config.h"
#include "runtime/runtime.h"

extern const char wrapper_python_py[];
extern const char wrapper_python_zygote_py[];

static bool python_handles(const char *entry_path)
{
    return str_ends_with(entry_path, ".py");
}

static int python_prepare(const struct runtime *rt, const struct launch_input *in,
                          struct launch *out, char *err, size_t errlen)
{
    int rc = runtime_launch_interpreter(rt, in, out, err, errlen);
    if (rc < 0)
        return rc;
    /* -s: no user site packages, so a usercustomize.py or .pth file dropped
     * into a home the action can write never runs inside later actions. */
    strv_push(&out->argv, "-s");
    strv_push(&out->argv, "-c");
    strv_push(&out->argv, wrapper_python_py);
    strv_push(&out->argv, in->action->entry_path);
    out->control = PROC_CONTROL_SOCKET;
    out->decode_reply = pymarshal_decode;
    json_t *control = json_pack("{s:O, s:O, s:s}", "secrets", in->secrets, "parameters", in->params,
                                "entry", "run");
    pymarshal_encode(control, &out->control_data);
    json_decref(control);
    /* The zygote runs the built-in interpreter with this same wrapper; a
     * runtime definition may change either. */
    out->forkable = !runtime_has_config(in->action);
    strv_push(&out->fork_args, in->action->entry_path);
    return 0;
}

/* A warm interpreter's command line: this wrapper's code, then the warm
 * starts' (python_zygote.py) in the mode given ("--attune-zygote", the fork
 * server; "--attune-spare", a spare), then the modules to preload. */
static void python_warm_argv(const struct runtime *rt, const char *mode, char *const *preload,
                             struct strv *argv)
{
    strv_push(argv, rt->interpreter_name);
    strv_push(argv, "-s");
    strv_push(argv, "-c");
    strv_push_owned(argv, xasprintf("%s\n%s", wrapper_python_py, wrapper_python_zygote_py));
    strv_push(argv, mode);
    for (char *const *m = preload; m && *m; m++)
        strv_push(argv, *m);
}

void runtime_python_zygote_argv(const struct runtime *rt, char *const *preload, struct strv *argv)
{
    python_warm_argv(rt, "--attune-zygote", preload, argv);
}

/* A spare: the interpreter started ahead, its modules preloaded, waiting on
 * fd 3 for what a forked child reads: its launch, then the control payload. */
static void python_spare_launch(const struct runtime *rt, char *const *preload, struct launch *out)
{
    out->path = xstrdup(rt->interpreter);
    python_warm_argv(rt, "--attune-spare", preload, &out->argv);
    out->control = PROC_CONTROL_SOCKET;
    out->forkable = true; /* the fork server may fork it instead */
}

/* What decides a warm interpreter's locale, read as it starts. */
static const char *const python_locale_vars[] = {"LANG", "LC_ALL", "LC_CTYPE"};

void runtime_python_zygote_env(const struct strv *base, struct strv *env)
{
    strv_setenv(env, "PATH", strv_getenv(base, "PATH"));
    for (size_t i = 0; i < ARRAY_SIZE(python_locale_vars); i++)
        if (strv_getenv(base, python_locale_vars[i]))
            strv_setenv(env, python_locale_vars[i], strv_getenv(base, python_locale_vars[i]));
}

bool runtime_python_env_fits(char *const *envp, const struct strv *started_env)
{
    for (char *const *e = envp; *e; e++)
        if (str_starts_with(*e, "PYTHON"))
            return false;
    for (size_t i = 0; i < ARRAY_SIZE(python_locale_vars); i++) {
        const char *mine = envp_getenv(envp, python_locale_vars[i]),
                   *started = strv_getenv(started_env, python_locale_vars[i]);
        if ((mine || started) && !(mine && started && strcmp(mine, started) == 0))
            return false;
    }
    return true;
}

/* The launch as the fork server's child gets it, then the wrapper's payload;
 * -EINVAL for a launch the spare's interpreter cannot run as a cold start
 * would (a runtime definition, another interpreter, PYTHON* or the locale). */
static int python_spare_control(const struct spare_input *in, struct strbuf *out)
{
    const struct launch *l = in->launch;
    if (!l->forkable || strcmp(l->path, in->spare_path) != 0 ||
        !runtime_python_env_fits(in->envp, in->spare_env))
        return -EINVAL;
    fork_server_preamble(l->fork_args.items, in->envp, in->cwd ? in->cwd : "/", out);
    strbuf_append(out, l->control_data.data, l->control_data.len);
    return 0;
}

static const char *const python_attune_names[] = {"python", NULL};

struct runtime runtime_python = {
    .name = "python",
    .interpreter_name = "python3",
    .attune_names = python_attune_names,
    .version_key = "python",
    .handles = python_handles,
    .prepare = python_prepare,
    .spare_launch = python_spare_launch,
    .spare_control = python_spare_control,
};
