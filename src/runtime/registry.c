/* The runtime registry (see registry.h). */
#include "runtime/registry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runtime/probe.h"
#include "runtime/runtime_version.h"

/* Bounds what an error message quotes back from a configured name. */
#define REGISTRY_ECHO_MAX 80

/* The runtimes worker.runtimes chooses from; native, which needs nothing,
 * is always there besides them (as in Attune). */
static struct runtime *const all_runtimes[] = {&runtime_shell, &runtime_python, &runtime_node,
                                               &runtime_local};

static const struct runtime *runtime_named(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(all_runtimes); i++)
        if (strcmp(all_runtimes[i]->name, name) == 0)
            return all_runtimes[i];
    return strcmp(name, runtime_native.name) == 0 ? &runtime_native : NULL;
}

/* "shell, python, node, local" then last_sep and "native". */
static void names_join(struct strbuf *out, const char *last_sep)
{
    for (size_t i = 0; i < ARRAY_SIZE(all_runtimes); i++) {
        strbuf_puts(out, all_runtimes[i]->name);
        strbuf_puts(out, i + 1 < ARRAY_SIZE(all_runtimes) ? ", " : last_sep);
    }
    strbuf_puts(out, runtime_native.name);
}

const char *registry_runner_name(const char *runtime_row_name)
{
    /* The aliases of Attune's runtime_detection, for the runtimes there are. */
    static const char *const aliases[][2] = {
        {"python3", "python"}, {"nodejs", "node"},       {"node.js", "node"},
        {"bash", "shell"},     {"sh", "shell"},          {"builtin", "native"},
        {"native", "native"},  {"standalone", "native"},
    };
    if (!runtime_row_name || !*runtime_row_name)
        return "local";
    for (size_t i = 0; i < ARRAY_SIZE(aliases); i++)
        if (strcasecmp(runtime_row_name, aliases[i][0]) == 0)
            return aliases[i][1];
    for (size_t i = 0; i < ARRAY_SIZE(all_runtimes); i++)
        if (strcasecmp(runtime_row_name, all_runtimes[i]->name) == 0)
            return all_runtimes[i]->name;
    return runtime_row_name;
}

bool registry_adhoc_is_inline(const char *runner_type)
{
    return runner_type && strcmp(runner_type, runtime_shell.name) == 0;
}

int registry_check_runner(const struct action *action, char *err, size_t errlen)
{
    if (runtime_named(action->runner_type))
        return 0;
    struct strbuf names;
    strbuf_init(&names);
    names_join(&names, " or ");
    int rc = set_error(err, errlen, EINVAL, "%s%sunknown runner_type '%s' (expected %s)",
                       action->source_path ? action->source_path : "",
                       action->source_path ? ": " : "", action->runner_type, names.data);
    strbuf_free(&names);
    return rc;
}

int registry_check_names(char *const *names, char *err, size_t errlen)
{
    for (; names && *names; names++) {
        if (runtime_named(*names))
            continue;
        struct strbuf known;
        strbuf_init(&known);
        names_join(&known, ", ");
        int rc =
            set_error(err, errlen, EINVAL, "worker.runtimes: unknown runtime \"%.*s\" (known: %s)",
                      REGISTRY_ECHO_MAX, *names, known.data);
        strbuf_free(&known);
        return rc;
    }
    return 0;
}

int registry_check_config(const struct config *cfg, const char *program)
{
    char err[512];
    if (registry_check_names(cfg->runtimes, err, sizeof(err)) == 0)
        return 0;
    fprintf(stderr, "%s: configuration error: %s\n", program, err);
    return CONFIG_EXIT_STATUS;
}

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
    free(rt->version);
    rt->version = NULL;
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
        free(reg->runtimes[i]->version);
        reg->runtimes[i]->version = NULL;
        if (reg->runtimes[i]->version_probe.pid > 0) { /* never read: stop it */
            char unused[8];
            (void)probe_finish(&reg->runtimes[i]->version_probe, 0, unused, sizeof(unused));
        }
        reg->runtimes[i]->usable = false;
    }
    reg->count = 0;
}

void registry_start_version_probes(struct registry *reg)
{
    for (size_t i = 0; i < reg->count; i++) {
        struct runtime *rt = reg->runtimes[i];
        if (rt->version_key && rt->interpreter && !rt->version && rt->version_probe.pid <= 0)
            (void)probe_start(rt->interpreter, &rt->version_probe);
    }
}

void registry_detect_versions(struct registry *reg, int timeout_ms)
{
    char version[64];
    registry_start_version_probes(reg);
    for (size_t i = 0; i < reg->count; i++) {
        struct runtime *rt = reg->runtimes[i];
        if (rt->version_probe.pid > 0 &&
            probe_finish(&rt->version_probe, timeout_ms, version, sizeof(version)) == 0)
            rt->version = xstrdup(version);
    }
}

json_t *registry_capability_runtimes(const struct registry *reg)
{
    json_t *names = json_array();
    for (size_t i = 0; i < reg->count; i++)
        for (const char *const *n = reg->runtimes[i]->attune_names; *n; n++)
            json_array_append_new(names, json_string(*n));
    for (const char *const *n = runtime_native.attune_names; *n; n++)
        json_array_append_new(names, json_string(*n));
    return names;
}

json_t *registry_capability_versions(const struct registry *reg)
{
    json_t *versions = json_object();
    for (size_t i = 0; i < reg->count; i++) {
        const struct runtime *rt = reg->runtimes[i];
        if (rt->version_key && rt->version)
            json_object_set_new(versions, rt->version_key, json_pack("[s]", rt->version));
    }
    return versions;
}

const json_t *registry_version_config(const struct registry *reg, const char *runtime_name,
                                      const json_t *versions, const char *constraint)
{
    const struct runtime *rt = NULL;
    for (size_t i = 0; i < reg->count && !rt; i++)
        if (strcmp(reg->runtimes[i]->name, runtime_name) == 0)
            rt = reg->runtimes[i];
    /* What this worker advertises, nothing when it found no version. */
    json_t *advertised = rt && rt->version ? json_pack("[s]", rt->version) : json_array();
    const json_t *config = runtime_version_config(versions, constraint, advertised);
    json_decref(advertised);
    return config;
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
    return strcmp(name, runtime_native.name) == 0 ? &runtime_native : NULL;
}

const char *registry_runtime_name(const struct action *action)
{
    if (strcmp(action->runner_type, "local") != 0 || action->inline_code)
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
    /* As in Attune, ad-hoc code (no file) is run by the shell runtime only. */
    if (action->inline_code && strcmp(name, runtime_shell.name) != 0)
        return set_error(err, errlen, EINVAL,
                         "ad-hoc code runs only under the shell runtime, not '%s'", name);
    const struct runtime *rt = registry_find(reg, name);
    if (!rt) {
        bool known = runtime_named(name) != NULL;
        return set_error(err, errlen, known ? ENOEXEC : EINVAL,
                         known ? "runtime '%s' is not available on this worker"
                               : "unknown runner type '%s'",
                         name);
    }
    *out = rt;
    return 0;
}
