/* The launch a runtime row's execution_config describes (see
 * execution_config.h). */
#include "runtime/execution_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "runtime/registry.h"

char *execution_config_expand(const char *tmpl, const struct execution_config_vars *vars)
{
    const struct {
        const char *name;
        const char *value;
    } table[] = {{"pack_dir", vars->pack_dir},
                 {"env_dir", vars->env_dir},
                 {"interpreter", vars->interpreter},
                 {"manifest_path", vars->manifest_path},
                 {"action_file", vars->action_file}};
    struct strbuf out;
    strbuf_init(&out);
    strbuf_append(&out, "", 0);
    for (const char *p = tmpl; *p;) {
        size_t i = 0, len = 0;
        for (; *p == '{' && i < ARRAY_SIZE(table); i++) {
            len = strlen(table[i].name);
            if (table[i].value && strncmp(p + 1, table[i].name, len) == 0 && p[len + 1] == '}')
                break;
        }
        if (*p == '{' && i < ARRAY_SIZE(table)) {
            strbuf_puts(&out, table[i].value);
            p += len + 2;
        } else {
            strbuf_putc(&out, *p++);
        }
    }
    return strbuf_detach(&out, NULL);
}

/* left SEP right, or whichever of them is not empty. */
static char *env_join(const char *left, const char *right, const char *sep)
{
    if (!*left || !*right)
        return xstrdup(*left ? left : right);
    return xasprintf("%s%s%s", left, sep, right);
}

/* The variable's value, or NULL when the entry is not of a known shape. */
static char *env_value(const json_t *spec, const struct execution_config_vars *vars,
                       const char *current)
{
    if (json_is_string(spec))
        return execution_config_expand(json_string_value(spec), vars);
    const char *value = json_string_value(json_object_get(spec, "value"));
    const json_t *op_json = json_object_get(spec, "operation");
    const json_t *sep_json = json_object_get(spec, "separator");
    const char *op = op_json ? json_string_value(op_json) : "set";
    const char *sep = sep_json ? json_string_value(sep_json) : ":";
    if (!value || !op || !sep)
        return NULL;
    bool prepend = strcmp(op, "prepend") == 0, append = strcmp(op, "append") == 0;
    if (!prepend && !append && strcmp(op, "set") != 0)
        return NULL;
    char *resolved = execution_config_expand(value, vars);
    if (!prepend && !append)
        return resolved;
    char *joined = prepend ? env_join(resolved, current ? current : "", sep)
                           : env_join(current ? current : "", resolved, sep);
    free(resolved);
    return joined;
}

void execution_config_env(const json_t *env_vars, const struct execution_config_vars *vars,
                          const struct strv *current, struct strv *out)
{
    const char *name;
    json_t *spec;
    json_object_foreach((json_t *)env_vars, name, spec)
    {
        if (str_starts_with(name, "ATTUNE_")) {
            log_warn("runtime env_vars: %s ignored (the ATTUNE_ prefix is reserved)", name);
            continue;
        }
        if (!*name || strchr(name, '='))
            continue;
        char *value = env_value(spec, vars, current ? strv_getenv(current, name) : NULL);
        if (!value) {
            log_warn("runtime env_vars: %s ignored (not a string or a {value, operation})", name);
            continue;
        }
        strv_setenv(out, name, value);
        free(value);
    }
}

/* The environment's interpreter_path, when the environment exists and holds it. */
static char *env_interpreter(const json_t *config, const struct execution_config_vars *vars)
{
    const json_t *env = json_object_get(config, "environment");
    const char *tmpl = json_string_value(json_object_get(env, "interpreter_path"));
    struct stat st;
    if (!tmpl || !vars->env_dir || stat(vars->env_dir, &st) < 0 || !S_ISDIR(st.st_mode))
        return NULL;
    /* Attune resolves this template with the two directories only. */
    struct execution_config_vars dirs = {.pack_dir = vars->pack_dir, .env_dir = vars->env_dir};
    char *path = execution_config_expand(tmpl, &dirs);
    if (path[0] == '/' && access(path, X_OK) == 0)
        return path;
    free(path);
    return NULL;
}

/* A name is looked up on the actions' PATH; a relative path is taken from
 * the pack directory, where the action runs. */
static char *find_binary(const char *binary, const struct launch_input *in)
{
    if (binary[0] != '/' && strchr(binary, '/')) {
        char *path = xasprintf("%s/%s", in->action->pack_dir, binary);
        if (access(path, X_OK) == 0)
            return path;
        free(path);
        return NULL;
    }
    const char *search = in->base_env ? strv_getenv(in->base_env, "PATH") : NULL;
    return runtime_find_program(binary, search ? search : RUNTIME_DEFAULT_PATH);
}

static int config_interpreter(const struct runtime *rt, const struct launch_input *in,
                              const struct execution_config_vars *vars, char **out, char *err,
                              size_t errlen)
{
    const json_t *config = in->action->runtime_config;
    const json_t *interpreter = json_object_get(config, "interpreter");
    const char *binary = json_string_value(json_object_get(interpreter, "binary"));
    *out = env_interpreter(config, vars);
    if (*out)
        return 0;
    if (!binary || !*binary)
        *out = rt->interpreter ? xstrdup(rt->interpreter) : NULL;
    else
        *out = find_binary(binary, in);
    if (!*out)
        return set_error(err, errlen, ENOENT, "runtime %s: interpreter %s not found", rt->name,
                         binary && *binary ? binary : rt->interpreter_name);
    return 0;
}

/* The directory a pack's environment of this runtime lives in, when the
 * definition has an environment. */
static char *config_env_dir(const struct runtime *rt, const json_t *config,
                            const struct launch_input *in)
{
    if (!json_is_object(json_object_get(config, "environment")) || !in->runtime_envs_dir)
        return NULL;
    return xasprintf("%s/%s/%s", in->runtime_envs_dir, in->action->pack_ref, rt->name);
}

static char *config_manifest(const json_t *config, const struct action *action)
{
    const json_t *deps = json_object_get(config, "dependencies");
    const char *file = json_string_value(json_object_get(deps, "manifest_file"));
    return file ? xasprintf("%s/%s", action->pack_dir, file) : NULL;
}

int execution_config_launch(const struct runtime *rt, const struct launch_input *in,
                            struct launch *out, char *err, size_t errlen)
{
    const json_t *config = in->action->runtime_config;
    char *env_dir = config_env_dir(rt, config, in);
    char *manifest = config_manifest(config, in->action);
    char *interpreter = NULL;
    struct execution_config_vars vars = {
        .pack_dir = in->action->pack_dir,
        .env_dir = env_dir,
        .manifest_path = manifest,
        .action_file = in->action->entry_path,
    };
    int rc = config_interpreter(rt, in, &vars, &interpreter, err, errlen);
    if (rc == 0) {
        vars.interpreter = interpreter;
        out->path = xstrdup(interpreter);
        /* The full path as argv[0]: python finds its virtualenv from it. */
        strv_push(&out->argv, interpreter);
        size_t i;
        const json_t *arg;
        json_array_foreach(json_object_get(json_object_get(config, "interpreter"), "args"), i, arg)
        {
            if (json_is_string(arg))
                strv_push_owned(&out->argv, execution_config_expand(json_string_value(arg), &vars));
        }
        execution_config_env(json_object_get(config, "env_vars"), &vars, in->base_env,
                             &out->config_env);
    }
    free(interpreter);
    free(manifest);
    free(env_dir);
    return rc;
}

int runtime_launch_interpreter(const struct runtime *rt, const struct launch_input *in,
                               struct launch *out, char *err, size_t errlen)
{
    if (runtime_has_config(in->action))
        return execution_config_launch(rt, in, out, err, errlen);
    out->path = xstrdup(rt->interpreter);
    strv_push(&out->argv, rt->interpreter_name);
    return 0;
}
