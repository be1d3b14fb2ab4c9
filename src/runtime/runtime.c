/* Pieces shared by the runtimes: launch objects, program lookup on a PATH and the JSON control
 * payload of the wrapper runtimes. */
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void launch_init(struct launch *l)
{
    l->path = NULL;
    strv_init(&l->argv);
    strv_init(&l->env);
    strv_init(&l->config_env);
    l->control = PROC_CONTROL_NONE;
    strbuf_init(&l->control_data);
    l->decode_reply = NULL;
    l->forkable = false;
    strv_init(&l->fork_args);
}

void launch_free(struct launch *l)
{
    free(l->path);
    l->path = NULL;
    strv_free(&l->argv);
    strv_free(&l->env);
    strv_free(&l->config_env);
    strv_free(&l->fork_args);
    if (l->control_data.data)
        secure_zero(l->control_data.data, l->control_data.cap);
    strbuf_free(&l->control_data);
}

bool runtime_has_config(const struct action *action)
{
    return json_is_object(action->runtime_config) && json_object_size(action->runtime_config) > 0;
}

char *runtime_find_program(const char *name, const char *search_path)
{
    if (strchr(name, '/'))
        return access(name, X_OK) == 0 ? xstrdup(name) : NULL;
    const char *p = search_path;
    while (p && *p) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        if (len > 0) {
            char *candidate = xasprintf("%.*s/%s", (int)len, p, name);
            if (access(candidate, X_OK) == 0)
                return candidate;
            free(candidate);
        }
        p = colon ? colon + 1 : NULL;
    }
    return NULL;
}

void runtime_json_control(const struct launch_input *in, struct strbuf *out)
{
    json_t *control = json_pack("{s:O, s:O, s:s}", "secrets", in->secrets, "parameters", in->params,
                                "entry", "run");
    char *text = json_dumps(control, JSON_COMPACT);
    strbuf_puts(out, text);
    secure_zero(text, strlen(text));
    free(text);
    json_decref(control);
}
