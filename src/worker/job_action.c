/* The action a job runs (see job_action.h). */
#include "worker/job_action.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/util.h"
#include "runtime/registry.h"

/* An execution_config of {} (Attune's default) says nothing: the runtime's
 * built-in definition applies. */
static const json_t *runtime_config_of(const json_t *execution_config)
{
    return json_is_object(execution_config) && json_object_size(execution_config) > 0
               ? execution_config
               : NULL;
}

/* Builds the action from its fields in pack_dir; an ad-hoc action of the
 * shell runtime runs its entry point as code, as Attune's worker does. */
static int build(struct action_fields *fields, bool is_adhoc, const char *pack_ref,
                 const char *pack_dir, struct action **out, char *err, size_t errlen)
{
    fields->inline_code = is_adhoc && registry_adhoc_is_inline(fields->runner_type);
    int rc = action_from_fields(fields, pack_ref, pack_dir, out, err, errlen);
    if (rc == 0)
        rc = registry_check_runner(*out, err, errlen);
    return rc;
}

int job_action_from_row(const struct action_row *row, const char *packs_base_dir,
                        struct action **out, char *err, size_t errlen)
{
    struct action_fields fields = {
        .name = row->name,
        .runner_type = registry_runner_name(row->runtime_name),
        .entry_point = row->entry_point,
        .label = row->label,
        .description = row->description,
        .parameter_delivery = row->parameter_delivery,
        .parameter_format = row->parameter_format,
        .output_format = row->output_format,
        .timeout_seconds = row->timeout_seconds,
        .enabled = row->enabled,
        .parameters = row->param_schema,
        .runtime_config = runtime_config_of(row->runtime_config),
        .out_schema = row->out_schema,
    };
    char *pack_dir = xasprintf("%s/%s", packs_base_dir, row->pack_ref);
    int rc = build(&fields, row->is_adhoc, row->pack_ref, pack_dir, out, err, errlen);
    free(pack_dir);
    return rc;
}

static bool is_digest(const char *s)
{
    return s && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

char *job_action_release_dir(const char *packs_base_dir, const char *digest)
{
    if (!is_digest(digest))
        return NULL;
    return xasprintf("%s/.releases/sha256/%s/pack", packs_base_dir, digest);
}

/* A string member of the snapshot's action: NULL when absent or null; -1
 * when of another type. */
static int snap_string(const json_t *obj, const char *key, bool required, const char **out,
                       char *err, size_t errlen)
{
    const json_t *v = json_object_get(obj, key);
    *out = json_string_value(v);
    if ((v && !json_is_null(v) && !json_is_string(v)) || (required && !*out))
        return set_error(err, errlen, EINVAL,
                         "executable_snapshot.executable.action.%s is missing or not a string",
                         key);
    return 0;
}

/* The settings of the snapshot's action, as Attune's Action serialises them
 * (the formats default to stdin, json and text, as serde's do). */
static int snapshot_fields(const json_t *a, struct action_fields *f, const char **ref,
                           const char **pack_ref, char *err, size_t errlen)
{
    const struct {
        const char *key;
        const char **field;
        bool required;
    } strings[] = {
        {"ref", ref, true},
        {"pack_ref", pack_ref, true},
        {"entrypoint", &f->entry_point, true},
        {"label", &f->label, false},
        {"description", &f->description, false},
        {"parameter_delivery", &f->parameter_delivery, false},
        {"parameter_format", &f->parameter_format, false},
        {"output_format", &f->output_format, false},
    };
    for (size_t i = 0; i < ARRAY_SIZE(strings); i++) {
        int rc = snap_string(a, strings[i].key, strings[i].required, strings[i].field, err, errlen);
        if (rc < 0)
            return rc;
    }
    size_t n = strlen(*pack_ref);
    if (strncmp(*ref, *pack_ref, n) != 0 || (*ref)[n] != '.')
        return set_error(err, errlen, EINVAL,
                         "executable_snapshot: action '%s' is not in its pack '%s'", *ref,
                         *pack_ref);
    f->name = *ref + n + 1;
    const json_t *t = json_object_get(a, "timeout_seconds");
    f->timeout_seconds =
        json_is_integer(t) && json_integer_value(t) > 0 && json_integer_value(t) <= INT32_MAX
            ? (int)json_integer_value(t)
            : 0;
    f->enabled = !json_is_false(json_object_get(a, "enabled"));
    const json_t *schema = json_object_get(a, "param_schema");
    f->parameters = json_is_null(schema) ? NULL : schema;
    const json_t *out_schema = json_object_get(a, "out_schema");
    f->out_schema = json_is_object(out_schema) ? out_schema : NULL;
    return 0;
}

/* The release's folder, after checking that the snapshot names the same
 * release as the execution's pin. */
static int release_dir(const struct job_execution *ex, const char *packs_base_dir, char **out,
                       char *err, size_t errlen)
{
    const char *digest = ex->pack_release_digest;
    const char *snap_digest =
        json_string_value(json_object_get(json_object_get(ex->snapshot, "release"), "digest"));
    if (!is_digest(digest))
        return set_error(err, errlen, EINVAL,
                         "the execution's pack_release_digest is not 64 lowercase hex digits");
    if (snap_digest && strcmp(snap_digest, digest) != 0)
        return set_error(err, errlen, EINVAL,
                         "executable_snapshot.release.digest %.64s differs from the execution's "
                         "pack_release_digest %s",
                         snap_digest, digest);
    char *dir = job_action_release_dir(packs_base_dir, digest);
    struct stat st;
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        set_error(err, errlen, ENOENT,
                  "the folder of pinned pack release %lld (digest %s) is missing: %s",
                  (long long)ex->pack_release, digest, dir);
        free(dir);
        return -ENOENT;
    }
    *out = dir;
    return 0;
}

/* The runtime definition of a snapshot: its chosen version's, else its own. */
static const json_t *snapshot_runtime_config(const json_t *exe, const json_t *action,
                                             const char *runner_type, const struct registry *reg)
{
    const json_t *versions = json_object_get(exe, "runtime_versions");
    const json_t *chosen =
        reg && json_array_size(versions) > 0
            ? registry_version_config(
                  reg, runner_type, versions,
                  json_string_value(json_object_get(action, "runtime_version_constraint")))
            : NULL;
    return chosen ? chosen
                  : runtime_config_of(
                        json_object_get(json_object_get(exe, "runtime"), "execution_config"));
}

int job_action_from_snapshot(const struct job_execution *ex, const char *packs_base_dir,
                             const struct registry *reg, struct action **out, int64_t *action_id,
                             int64_t *pack_id, char *err, size_t errlen)
{
    if (ex->snapshot_error)
        return set_error(err, errlen, EINVAL, "%s", ex->snapshot_error);
    const json_t *exe = json_object_get(ex->snapshot, "executable");
    const json_t *a = json_object_get(exe, "action");
    if (!json_is_object(a))
        return set_error(err, errlen, EINVAL,
                         "executable_snapshot has no executable.action to run");
    struct action_fields fields = {0};
    const char *ref = NULL, *pack_ref = NULL;
    int rc = snapshot_fields(a, &fields, &ref, &pack_ref, err, errlen);
    if (rc < 0)
        return rc;
    const json_t *runtime = json_object_get(exe, "runtime");
    fields.runner_type = registry_runner_name(json_string_value(json_object_get(runtime, "name")));
    fields.runtime_config = snapshot_runtime_config(exe, a, fields.runner_type, reg);
    char *dir = NULL;
    rc = release_dir(ex, packs_base_dir, &dir, err, errlen);
    if (rc == 0)
        rc = build(&fields, json_is_true(json_object_get(a, "is_adhoc")), pack_ref, dir, out, err,
                   errlen);
    free(dir);
    *action_id = json_integer_value(json_object_get(a, "id"));
    *pack_id = json_integer_value(json_object_get(a, "pack"));
    return rc;
}
