/* The node runtime: runs .js actions under node through a wrapper that
 * provides getSecret(name) and calls an exported run(params) when defined;
 * secrets and parameters travel on a socket at fd 3, which also carries the
 * answer. */
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
};
