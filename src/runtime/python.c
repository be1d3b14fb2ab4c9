/* The python runtime: runs .py actions under python3 through a wrapper that
 * provides get_secret(name) and calls run(**parameters) when defined; secrets
 * and parameters travel on a socket at fd 3, which also carries the answer,
 * both in marshal format (see pymarshal.h for why not JSON). */
#include "runtime/pymarshal.h"
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

/* The zygote's command line: this wrapper's code, then the fork server's. */
void runtime_python_zygote_argv(const struct runtime *rt, char *const *preload, struct strv *argv)
{
    strv_push(argv, rt->interpreter_name);
    strv_push(argv, "-s");
    strv_push(argv, "-c");
    strv_push_owned(argv, xasprintf("%s\n%s", wrapper_python_py, wrapper_python_zygote_py));
    strv_push(argv, "--attune-zygote");
    for (char *const *m = preload; m && *m; m++)
        strv_push(argv, *m);
}

static const char *const python_attune_names[] = {"python", NULL};

struct runtime runtime_python = {
    .name = "python",
    .interpreter_name = "python3",
    .attune_names = python_attune_names,
    .version_key = "python",
    .handles = python_handles,
    .prepare = python_prepare,
};
