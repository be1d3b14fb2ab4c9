/* The runtimes for executables, which run the entry point directly: local,
 * and native (Attune's name for it, always available). They have no
 * wrapper, so secrets come as one JSON object on a pipe at fd 3. The registry
 * sends .sh, .py and .js entry points of local actions to their own runtimes
 * instead; a native action's entry point is executed whatever its name. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/runtime.h"

static bool local_handles(const char *entry_path)
{
    return access(entry_path, X_OK) == 0;
}

static int local_prepare(const struct runtime *rt, const struct launch_input *in,
                         struct launch *out, char *err, size_t errlen)
{
    if (access(in->action->entry_path, X_OK) != 0)
        return set_error(err, errlen, EACCES, "entry point %s is not executable (chmod +x it%s)",
                         in->action->entry_path,
                         rt == &runtime_local ? ", or give it a .sh, .py or .js name" : "");
    out->path = xstrdup(in->action->entry_path);
    const char *base = strrchr(out->path, '/');
    strv_push(&out->argv, base ? base + 1 : out->path);
    out->control = PROC_CONTROL_PIPE;
    char *text = json_dumps(in->secrets, JSON_COMPACT);
    strbuf_puts(&out->control_data, text);
    secure_zero(text, strlen(text));
    free(text);
    return 0;
}

static const char *const no_attune_names[] = {NULL};
static const char *const native_attune_names[] = {"native", NULL};

struct runtime runtime_local = {
    .name = "local",
    .interpreter_name = NULL,
    .attune_names = no_attune_names,
    .handles = local_handles,
    .prepare = local_prepare,
};

struct runtime runtime_native = {
    .name = "native",
    .interpreter_name = NULL,
    .usable = true,
    .attune_names = native_attune_names,
    .handles = local_handles,
    .prepare = local_prepare,
};
