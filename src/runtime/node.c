/* The node runtime: runs .js actions under node through a wrapper that
 * provides getSecret(name) and calls an exported run(params) when defined;
 * secrets and parameters travel on a socket at fd 3, which also carries the
 * answer. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/execution_config.h"
#include "runtime/runtime.h"

extern const char wrapper_node_js[];

static bool node_handles(const char *entry_path)
{
    return str_ends_with(entry_path, ".js") || str_ends_with(entry_path, ".cjs");
}

/* Leaves err alone: the executor's own message says what is wrong. */
static json_t *node_decode_reply(const void *data, size_t len, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    return json_loadb(data, len, 0, NULL);
}

static int node_prepare(const struct runtime *rt, const struct launch_input *in, struct launch *out,
                        char *err, size_t errlen)
{
    int rc = runtime_launch_interpreter(rt, in, out, err, errlen);
    if (rc < 0)
        return rc;
    strv_push(&out->argv, "-e");
    strv_push(&out->argv, wrapper_node_js);
    strv_push(&out->argv, in->action->entry_path);
    out->control = PROC_CONTROL_SOCKET;
    out->decode_reply = node_decode_reply;
    runtime_json_control(in, &out->control_data);
    return 0;
}

/* A spare: node with the wrapper, which blocks reading fd 3 before it loads
 * any action. */
static void node_spare_launch(const struct runtime *rt, char *const *preload, struct launch *out)
{
    (void)preload;
    out->path = xstrdup(rt->interpreter);
    strv_push(&out->argv, rt->interpreter_name);
    strv_push(&out->argv, "-e");
    strv_push(&out->argv, wrapper_node_js);
    out->control = PROC_CONTROL_SOCKET;
}

/* Node reads its own variables (NODE_*, UV_*) only as it starts: an
 * execution whose differ from the spare's runs cold. */
static bool node_env_differs(const char *entry, const struct strv *spare_env)
{
    if (!str_starts_with(entry, "NODE_") && !str_starts_with(entry, "UV_"))
        return false;
    for (size_t i = 0; i < spare_env->len; i++)
        if (strcmp(spare_env->items[i], entry) == 0)
            return false;
    return true;
}

/* The wrapper's JSON control with "env", "cwd" and "path" added: the object
 * the launch made, its closing brace replaced by the new members. */
static int node_spare_control(const struct spare_input *in, struct strbuf *out)
{
    json_t *env = json_object();
    int rc = 0;
    for (char *const *e = in->envp; *e && rc == 0; e++) {
        if (node_env_differs(*e, in->spare_env)) {
            rc = -EINVAL;
            break;
        }
        size_t len = strcspn(*e, "=");
        char *name = xstrndup(*e, len);
        /* json_object_set_new takes the value, set or not. */
        if (json_object_set_new(env, name, json_string(*e + len + 1)) < 0)
            rc = -EINVAL;
        free(name);
    }
    const struct strv *argv = &in->launch->argv;
    json_t *extra = json_pack("{s:o, s:s?, s:s?}", "env", env, "cwd", in->cwd, "path",
                              argv->items[argv->len - 1]);
    char *text = rc == 0 && extra ? json_dumps(extra, JSON_COMPACT) : NULL;
    const struct strbuf *control = &in->launch->control_data;
    if (text && control->len > 2 && control->data[control->len - 1] == '}') {
        strbuf_append(out, control->data, control->len - 1);
        strbuf_putc(out, ',');
        strbuf_puts(out, text + 1);
    } else {
        rc = -EINVAL;
    }
    if (text)
        secure_zero(text, strlen(text));
    free(text);
    json_decref(extra);
    return rc;
}

/* Attune's catalog names the runtime "Node.js"; a scheduler matching names
 * rather than aliases needs that spelling. */
static const char *const node_attune_names[] = {"node", "node.js", NULL};

struct runtime runtime_node = {
    .name = "node",
    .interpreter_name = "node",
    .attune_names = node_attune_names,
    .version_key = "node",
    .handles = node_handles,
    .prepare = node_prepare,
    .spare_launch = node_spare_launch,
    .spare_control = node_spare_control,
};
