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

/* A spare: bash with the wrapper, which blocks on fd 3 until its execution. */
static void shell_spare_launch(const struct runtime *rt, char *const *preload, struct launch *out)
{
    (void)preload;
    out->path = xstrdup(rt->interpreter);
    const char *const argv[] = {rt->interpreter_name, "--noprofile", "--norc", "-c",
                                wrapper_shell_sh,     "attune-spare"};
    for (size_t i = 0; i < ARRAY_SIZE(argv); i++)
        strv_push(&out->argv, argv[i]);
    out->control = PROC_CONTROL_PIPE;
}

/* Names bash reads only as it starts, or treats as its own: an execution
 * that sets one runs cold, where the environment gives it as it is. */
static bool shell_name_is_plain(const char *name, size_t len)
{
    static const char *const own[] = {
        "SHELLOPTS", "SHLVL",  "PWD",      "OLDPWD",          "EUID",          "UID",
        "PPID",      "RANDOM", "SRANDOM",  "SECONDS",         "LINENO",        "HISTCMD",
        "FUNCNAME",  "GROUPS", "DIRSTACK", "EPOCHSECONDS",    "EPOCHREALTIME", "IFS",
        "PS4",       "OPTIND", "OPTERR",   "POSIXLY_CORRECT", "ENV",           "_"};
    if (len == 0 || (name[0] >= '0' && name[0] <= '9') || strncmp(name, "BASH", 4) == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!(name[i] == '_' || (name[i] >= 'a' && name[i] <= 'z') ||
              (name[i] >= 'A' && name[i] <= 'Z') || (name[i] >= '0' && name[i] <= '9')))
            return false;
    for (size_t i = 0; i < ARRAY_SIZE(own); i++)
        if (strlen(own[i]) == len && strncmp(own[i], name, len) == 0)
            return false;
    return true;
}

/* The spare's variables go, the execution's come (export lines with the
 * wrapper's quoting), then the cwd and $0 of a cold start; then the secrets. */
static int shell_spare_control(const struct spare_input *in, struct strbuf *out)
{
    for (char *const *e = in->envp; *e; e++)
        if (!shell_name_is_plain(*e, strcspn(*e, "=")))
            return -EINVAL;
    for (size_t i = 0; i < in->spare_env->len; i++)
        strbuf_printf(out, "unset -v %.*s\n", (int)strcspn(in->spare_env->items[i], "="),
                      in->spare_env->items[i]);
    for (char *const *e = in->envp; *e; e++) {
        size_t len = strcspn(*e, "=");
        strbuf_printf(out, "export %.*s=", (int)len, *e);
        strbuf_put_sh_quoted(out, *e + len + 1);
        strbuf_putc(out, '\n');
    }
    strbuf_puts(out, "cd -P -- ");
    strbuf_put_sh_quoted(out, in->cwd);
    strbuf_puts(out, " || exit 126\nunset OLDPWD; declare -x OLDPWD\nBASH_ARGV0=");
    const struct strv *argv = &in->launch->argv;
    strbuf_put_sh_quoted(out, argv->items[argv->len - 1]);
    strbuf_putc(out, '\n');
    strbuf_append(out, in->launch->control_data.data, in->launch->control_data.len);
    return 0;
}

static const char *const shell_attune_names[] = {"shell", NULL};

struct runtime runtime_shell = {
    .name = "shell",
    .interpreter_name = "bash",
    .attune_names = shell_attune_names,
    .handles = shell_handles,
    .prepare = shell_prepare,
    .spare_launch = shell_spare_launch,
    .spare_control = shell_spare_control,
};
