/* The shell runtime: runs .sh actions, and ad-hoc code, under bash through a
 * small wrapper that provides `get_secret NAME` (secrets arrive on a pipe at
 * fd 3) and gives each parameter as PARAM_<NAME>. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "exec/params.h"
#include "runtime/execution_config.h"
#include "runtime/runtime.h"

extern const char wrapper_shell_sh[];

/* The wrapper sources this: one associative array assignment, and for
 * ad-hoc code the code itself. */
static void shell_control_script(const json_t *secrets, const struct action *action,
                                 struct strbuf *out)
{
    const char *name;
    json_t *value;
    strbuf_puts(out, "__attune_secrets=(");
    json_object_foreach((json_t *)secrets, name, value)
    {
        if (!json_is_string(value) || !*name)
            continue;
        strbuf_putc(out, '[');
        strbuf_put_sh_quoted(out, name);
        strbuf_puts(out, "]=");
        strbuf_put_sh_quoted(out, json_string_value(value));
        strbuf_putc(out, ' ');
    }
    strbuf_puts(out, ")\n");
    if (action->inline_code) {
        strbuf_puts(out, "__attune_code=");
        strbuf_put_sh_quoted(out, action->entry_point);
        strbuf_putc(out, '\n');
    }
}

static bool shell_handles(const char *entry_path)
{
    return str_ends_with(entry_path, ".sh") || str_ends_with(entry_path, ".bash");
}

/* The wrapper is bash: a runtime definition naming another shell (sh is
 * dash on Debian) would fail in it with a puzzling message. */
static int shell_check_bash(const char *interpreter, char *err, size_t errlen)
{
    char *real = realpath(interpreter, NULL);
    const char *base = real ? strrchr(real, '/') : NULL;
    bool bash = base && strncmp(base + 1, "bash", 4) == 0;
    free(real);
    if (!bash)
        return set_error(err, errlen, EINVAL,
                         "runtime shell: interpreter %s is not bash (the shell wrapper needs bash)",
                         interpreter);
    return 0;
}

static int shell_prepare(const struct runtime *rt, const struct launch_input *in,
                         struct launch *out, char *err, size_t errlen)
{
    const struct action *a = in->action;
    bool config = runtime_has_config(a);
    int rc = runtime_launch_interpreter(rt, in, out, err, errlen);
    if (rc == 0 && config)
        rc = shell_check_bash(out->path, err, errlen);
    if (rc < 0)
        return rc;
    if (!config) {
        strv_push(&out->argv, "--noprofile");
        strv_push(&out->argv, "--norc");
    }
    strv_push(&out->argv, "-c");
    strv_push(&out->argv, wrapper_shell_sh);
    strv_push(&out->argv, a->inline_code ? a->ref : a->entry_path);
    params_to_env(in->params, in->action->param_schema, in->hidden_params, &out->env);
    out->control = PROC_CONTROL_PIPE;
    shell_control_script(in->secrets, a, &out->control_data);
    return 0;
}

static const char *const shell_attune_names[] = {"shell", NULL};

struct runtime runtime_shell = {
    .name = "shell",
    .interpreter_name = "bash",
    .attune_names = shell_attune_names,
    .handles = shell_handles,
    .prepare = shell_prepare,
};
