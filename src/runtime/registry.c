/* The runtime registry (see registry.h). */
#include "runtime/registry.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct runtime *const all_runtimes[] = {&runtime_shell, &runtime_python, &runtime_node,
                                               &runtime_local};

static bool runtime_wanted(const struct runtime *rt, char *const *wanted)
{
    if (!wanted)
        return true;
    for (; *wanted; wanted++)
        if (strcmp(*wanted, rt->name) == 0)
            return true;
    return false;
}

static int runtime_validate(struct runtime *rt, const char *search_path, char *err, size_t errlen)
{
    free(rt->interpreter);
    rt->interpreter = NULL;
    rt->usable = false;
    if (rt->interpreter_name) {
        rt->interpreter = runtime_find_program(rt->interpreter_name, search_path);
        if (!rt->interpreter)
            return set_error(err, errlen, ENOENT, "runtime %s: %s not found on PATH %s", rt->name,
                             rt->interpreter_name, search_path);
    }
    rt->usable = true;
    return 0;
}

int registry_init(struct registry *reg, char *const *wanted, const char *search_path, char *err,
                  size_t errlen)
{
    reg->count = 0;
    for (size_t i = 0; i < ARRAY_SIZE(all_runtimes); i++) {
        struct runtime *rt = all_runtimes[i];
        if (!runtime_wanted(rt, wanted))
            continue;
        int rc = runtime_validate(rt, search_path, err, errlen);
        if (rc < 0 && wanted)
            return rc;
        if (rc == 0)
            reg->runtimes[reg->count++] = rt;
    }
    if (err && errlen)
        err[0] = '\0';
    return 0;
}

void registry_free(struct registry *reg)
{
    for (size_t i = 0; i < reg->count; i++) {
        free(reg->runtimes[i]->interpreter);
        reg->runtimes[i]->interpreter = NULL;
        reg->runtimes[i]->usable = false;
    }
    reg->count = 0;
}

void registry_describe(const struct registry *reg, struct strbuf *out)
{
    strbuf_append(out, "", 0);
    for (size_t i = 0; i < reg->count; i++) {
        if (i)
            strbuf_putc(out, ',');
        strbuf_puts(out, reg->runtimes[i]->name);
    }
}

static const struct runtime *registry_find(const struct registry *reg, const char *name)
{
    for (size_t i = 0; i < reg->count; i++)
        if (strcmp(reg->runtimes[i]->name, name) == 0)
            return reg->runtimes[i];
    return NULL;
}

const char *registry_runtime_name(const struct action *action)
{
    if (strcmp(action->runner_type, "local") != 0)
        return action->runner_type;
    for (size_t i = 0; i < ARRAY_SIZE(all_runtimes); i++)
        if (all_runtimes[i] != &runtime_local && all_runtimes[i]->handles(action->entry_path))
            return all_runtimes[i]->name;
    return "local";
}

int registry_select(const struct registry *reg, const struct action *action,
                    const struct runtime **out, char *err, size_t errlen)
{
    const char *name = registry_runtime_name(action);
    const struct runtime *rt = registry_find(reg, name);
    if (!rt) {
        bool known = false;
        for (size_t i = 0; i < ARRAY_SIZE(all_runtimes); i++)
            known = known || strcmp(all_runtimes[i]->name, name) == 0;
        return set_error(err, errlen, known ? ENOEXEC : EINVAL,
                         known ? "runtime '%s' is not available on this worker"
                               : "unknown runner type '%s'",
                         name);
    }
    *out = rt;
    return 0;
}
