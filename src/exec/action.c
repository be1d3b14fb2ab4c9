/* Action definitions: loading {packs_dir}/{pack}/actions/{name}.yaml and
 * checking every setting (the parameter schema: action_schema.c). */
#include "exec/action.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/json.h"
#include "core/util.h"
#include "core/yaml.h"

/* Action files are small; a cap keeps a stray huge file from eating memory. */
#define ACTION_FILE_MAX (1024 * 1024)
#define ERRBUF 1024

static const char *const delivery_names[] = {"stdin", "file"};
static const char *const param_format_names[] = {"json", "yaml", "dotenv"};
static const char *const output_format_names[] = {"text", "json", "yaml", "jsonl"};

static int name_index(const char *const *names, size_t count, const char *s)
{
    for (size_t i = 0; s && i < count; i++)
        if (strcmp(names[i], s) == 0)
            return (int)i;
    return -1;
}

bool param_delivery_parse(const char *s, enum param_delivery *out)
{
    int i = name_index(delivery_names, ARRAY_SIZE(delivery_names), s);
    if (i >= 0)
        *out = (enum param_delivery)i;
    return i >= 0;
}

bool param_format_parse(const char *s, enum param_format *out)
{
    int i = name_index(param_format_names, ARRAY_SIZE(param_format_names), s);
    if (i >= 0)
        *out = (enum param_format)i;
    return i >= 0;
}

bool output_format_parse(const char *s, enum output_format *out)
{
    int i = name_index(output_format_names, ARRAY_SIZE(output_format_names), s);
    if (i >= 0)
        *out = (enum output_format)i;
    return i >= 0;
}

const char *param_delivery_name(enum param_delivery v)
{
    return (size_t)v < ARRAY_SIZE(delivery_names) ? delivery_names[v] : "unknown";
}

const char *param_format_name(enum param_format v)
{
    return (size_t)v < ARRAY_SIZE(param_format_names) ? param_format_names[v] : "unknown";
}

const char *output_format_name(enum output_format v)
{
    return (size_t)v < ARRAY_SIZE(output_format_names) ? output_format_names[v] : "unknown";
}

struct action *action_new(void)
{
    struct action *a = xcalloc(1, sizeof(*a));
    a->enabled = true;
    a->parameter_delivery = PARAM_DELIVERY_STDIN;
    a->parameter_format = PARAM_FORMAT_JSON;
    a->output_format = OUTPUT_FORMAT_TEXT;
    a->param_schema = action_schema_empty();
    return a;
}

void action_free(struct action *action)
{
    if (!action)
        return;
    free(action->ref);
    free(action->pack_ref);
    free(action->name);
    free(action->label);
    free(action->description);
    free(action->runner_type);
    free(action->entry_point);
    free(action->pack_dir);
    free(action->entry_path);
    free(action->source_path);
    json_decref(action->param_schema);
    json_decref(action->runtime_config);
    json_decref(action->out_schema);
    free(action);
}

int action_timeout_seconds(const struct action *action, int requested, int fallback)
{
    if (requested > 0)
        return requested;
    return action->timeout_seconds > 0 ? action->timeout_seconds : fallback;
}

/* Definition fields */

static int get_string(const json_t *def, const char *key, const char **out, char *err,
                      size_t errlen)
{
    const json_t *v = json_object_get(def, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return set_error(err, errlen, EINVAL, "%s must be a string, got %s", key, json_kind(v));
    *out = json_string_value(v);
    return 0;
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

/* Pack and action names are single path components: letters, digits, '_'
 * and '-' (and '.' inside an action name, never leading). */
static bool ref_part_ok(const char *s, size_t len, bool allow_dot)
{
    if (len == 0 || s[0] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || (allow_dot && c == '.');
        if (!ok || (c == '.' && i + 1 < len && s[i + 1] == '.'))
            return false;
    }
    return true;
}

/* Works out the action's name from `ref` ("pack.name" or "name") and/or
 * `name`; expected (the file's name) may be NULL. */
static int resolve_name(const json_t *def, const char *pack_ref, const char *expected,
                        const char **out, char *err, size_t errlen)
{
    const char *ref, *name;
    int rc = get_string(def, "ref", &ref, err, errlen);
    if (rc == 0)
        rc = get_string(def, "name", &name, err, errlen);
    if (rc < 0)
        return rc;
    const char *from_ref = ref;
    size_t plen = strlen(pack_ref);
    if (ref && strncmp(ref, pack_ref, plen) == 0 && ref[plen] == '.')
        from_ref = ref + plen + 1;
    else if (ref && strchr(ref, '.') && (!expected || strcmp(ref, expected) != 0))
        return set_error(err, errlen, EINVAL, "ref '%s' does not belong to pack '%s'", ref,
                         pack_ref);
    if (from_ref && name && strcmp(from_ref, name) != 0)
        return set_error(err, errlen, EINVAL, "name '%s' does not match ref '%s'", name, ref);
    const char *got = from_ref ? from_ref : name ? name : expected;
    const char *key = from_ref ? "ref" : "name";
    const char *shown = from_ref ? ref : name;
    if (!got)
        return set_error(err, errlen, EINVAL, "neither ref nor name is set");
    if (expected && strcmp(got, expected) != 0)
        return set_error(err, errlen, EINVAL,
                         "%s '%s' does not match the file name (expected '%s.%s')", key, shown,
                         pack_ref, expected);
    if (!ref_part_ok(got, strlen(got), true))
        return set_error(err, errlen, EINVAL, "invalid action name '%s'", got);
    *out = got;
    return 0;
}

static bool has_dotdot_component(const char *path)
{
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return true;
        p += n;
        p += *p == '/';
    }
    return false;
}

static int check_entry_point(struct action *a, const char *ep, char *err, size_t errlen)
{
    if (!ep || !*ep)
        return set_error(err, errlen, EINVAL, "entry_point is missing");
    if (ep[0] == '/' || has_dotdot_component(ep))
        return set_error(err, errlen, EINVAL,
                         "entry_point '%s' must be a relative path inside the pack's actions/ "
                         "directory (no leading '/', no '..')",
                         ep);
    char *path = xasprintf("%s/actions/%s", a->pack_dir, ep);
    struct stat st;
    int rc = 0;
    if (stat(path, &st) < 0)
        rc = set_error(err, errlen, errno, "entry_point '%s' does not exist (looked for %s)", ep,
                       path);
    else if (!S_ISREG(st.st_mode))
        rc =
            set_error(err, errlen, EINVAL, "entry_point '%s' is not a regular file (%s)", ep, path);
    if (rc < 0) {
        free(path);
        return rc;
    }
    a->entry_point = xstrdup(ep);
    a->entry_path = path;
    return 0;
}

static int check_enum_setting(const char *key, const char *value, const char *const *names,
                              size_t count, const char *expected, int *out, char *err,
                              size_t errlen)
{
    if (!value)
        return 0;
    int i = name_index(names, count, value);
    if (i < 0)
        return set_error(err, errlen, EINVAL, "unknown %s '%s' (expected %s)", key, value,
                         expected);
    *out = i;
    return 0;
}

static int check_formats(struct action *a, const struct action_fields *f, char *err, size_t errlen)
{
    int d = (int)a->parameter_delivery, p = (int)a->parameter_format, o = (int)a->output_format;
    int rc = check_enum_setting("parameter_delivery", f->parameter_delivery, delivery_names,
                                ARRAY_SIZE(delivery_names), "stdin or file", &d, err, errlen);
    if (rc == 0)
        rc = check_enum_setting("parameter_format", f->parameter_format, param_format_names,
                                ARRAY_SIZE(param_format_names), "json, yaml or dotenv", &p, err,
                                errlen);
    if (rc == 0)
        rc = check_enum_setting("output_format", f->output_format, output_format_names,
                                ARRAY_SIZE(output_format_names), "text, json, yaml or jsonl", &o,
                                err, errlen);
    a->parameter_delivery = (enum param_delivery)d;
    a->parameter_format = (enum param_format)p;
    a->output_format = (enum output_format)o;
    return rc;
}

static int check_fields(struct action *a, const struct action_fields *f, char *err, size_t errlen)
{
    if (f->timeout_seconds < 0)
        return set_error(err, errlen, EINVAL,
                         "timeout must be a positive whole number of seconds, got %d",
                         f->timeout_seconds);
    if (!f->runner_type || !*f->runner_type)
        return set_error(err, errlen, EINVAL,
                         "runner_type is missing (expected shell, python, node or local)");
    a->label = dup_or_null(f->label);
    a->description = dup_or_null(f->description);
    a->enabled = f->enabled;
    a->timeout_seconds = f->timeout_seconds;
    a->runner_type = xstrdup(f->runner_type);
    a->inline_code = f->inline_code;
    a->runtime_config = json_deep_copy(f->runtime_config);
    a->out_schema = json_deep_copy(f->out_schema);
    int rc = 0;
    if (!f->inline_code)
        rc = check_entry_point(a, f->entry_point, err, errlen);
    else if (!f->entry_point || !*f->entry_point)
        rc = set_error(err, errlen, EINVAL, "an ad-hoc action has no code (entry_point is empty)");
    else
        a->entry_point = xstrdup(f->entry_point);
    if (rc == 0)
        rc = check_formats(a, f, err, errlen);
    if (rc == 0)
        rc = action_normalise_schema(f->parameters, &a->param_schema, err, errlen);
    return rc;
}

int action_from_fields(const struct action_fields *f, const char *pack_ref, const char *pack_dir,
                       struct action **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!ref_part_ok(pack_ref, strlen(pack_ref), false))
        return set_error(err, errlen, EINVAL, "invalid pack name '%s'", pack_ref);
    if (!f->name || !ref_part_ok(f->name, strlen(f->name), true))
        return set_error(err, errlen, EINVAL, "invalid action name '%s'", f->name ? f->name : "");
    char *real = realpath(pack_dir, NULL);
    if (!real)
        return set_error(err, errlen, errno, "pack directory %s: %s", pack_dir, strerror(errno));
    struct action *a = action_new();
    a->pack_dir = real;
    a->pack_ref = xstrdup(pack_ref);
    a->name = xstrdup(f->name);
    a->ref = xasprintf("%s.%s", pack_ref, f->name);
    json_decref(a->param_schema);
    a->param_schema = NULL;
    int rc = check_fields(a, f, err, errlen);
    if (rc < 0) {
        action_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

static int get_bool(const json_t *def, const char *key, bool fallback, bool *out, char *err,
                    size_t errlen)
{
    const json_t *v = json_object_get(def, key);
    if (v && !json_is_null(v) && !json_is_boolean(v))
        return set_error(err, errlen, EINVAL, "%s must be true or false, got %s", key,
                         json_kind(v));
    *out = json_is_boolean(v) ? json_is_true(v) : fallback;
    return 0;
}

/* The settings of a definition that are not strings: enabled, inline_code,
 * timeout and runtime_config (a runtime row's execution_config, which lets
 * run-action follow a runtime definition from the database). */
static int read_scalars(const json_t *def, struct action_fields *f, char *err, size_t errlen)
{
    int rc = get_bool(def, "enabled", true, &f->enabled, err, errlen);
    if (rc == 0)
        rc = get_bool(def, "inline_code", false, &f->inline_code, err, errlen);
    if (rc < 0)
        return rc;
    const json_t *config = json_object_get(def, "runtime_config");
    if (config && !json_is_null(config) && !json_is_object(config))
        return set_error(err, errlen, EINVAL, "runtime_config must be a mapping, got %s",
                         json_kind(config));
    f->runtime_config = json_is_object(config) ? config : NULL;
    const json_t *t = json_object_get(def, "timeout");
    if (!t || json_is_null(t))
        return 0;
    if (!json_is_integer(t) || json_integer_value(t) <= 0 || json_integer_value(t) > INT_MAX)
        return set_error(err, errlen, EINVAL,
                         "timeout must be a positive whole number of seconds, got %s",
                         json_is_integer(t) ? "a value out of range" : json_kind(t));
    f->timeout_seconds = (int)json_integer_value(t);
    return 0;
}

/* Reads a parsed definition's settings into fields (borrowed from def). */
static int read_definition(const json_t *def, struct action_fields *f, char *err, size_t errlen)
{
    const struct {
        const char *key;
        const char **field;
    } strings[] = {
        {"label", &f->label},
        {"description", &f->description},
        {"runner_type", &f->runner_type},
        {"entry_point", &f->entry_point},
        {"parameter_delivery", &f->parameter_delivery},
        {"parameter_format", &f->parameter_format},
        {"output_format", &f->output_format},
    };
    int rc = read_scalars(def, f, err, errlen);
    for (size_t i = 0; rc == 0 && i < ARRAY_SIZE(strings); i++)
        rc = get_string(def, strings[i].key, strings[i].field, err, errlen);
    f->parameters = json_object_get(def, "parameters");
    return rc;
}

/* Builds the action; expected_name (the file's name) may be NULL. Messages
 * name the problem but not the file: the caller adds where it came from. */
static int build_action(const json_t *def, const char *pack_ref, const char *pack_dir,
                        const char *expected_name, struct action **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!json_is_object(def))
        return set_error(err, errlen, EINVAL, "expected a mapping of action settings, got %s",
                         def ? json_kind(def) : "nothing");
    if (!ref_part_ok(pack_ref, strlen(pack_ref), false))
        return set_error(err, errlen, EINVAL, "invalid pack name '%s'", pack_ref);
    struct action_fields fields = {0};
    int rc = resolve_name(def, pack_ref, expected_name, &fields.name, err, errlen);
    if (rc == 0)
        rc = read_definition(def, &fields, err, errlen);
    if (rc == 0)
        rc = action_from_fields(&fields, pack_ref, pack_dir, out, err, errlen);
    return rc;
}

int action_from_definition(const json_t *def, const char *pack_ref, const char *pack_dir,
                           struct action **out, char *err, size_t errlen)
{
    return build_action(def, pack_ref, pack_dir, NULL, out, err, errlen);
}

/* Splits "pack.name" at the first dot into two checked path components. */
static int split_ref(const char *ref, char **pack, char **name, char *err, size_t errlen)
{
    const char *dot = ref ? strchr(ref, '.') : NULL;
    if (!dot || !ref_part_ok(ref, (size_t)(dot - ref), false) ||
        !ref_part_ok(dot + 1, strlen(dot + 1), true))
        return set_error(err, errlen, EINVAL,
                         "invalid action reference '%s' (expected PACK.NAME, letters, digits, "
                         "'_' and '-')",
                         ref ? ref : "");
    *pack = xstrndup(ref, (size_t)(dot - ref));
    *name = xstrdup(dot + 1);
    return 0;
}

/* Finds actions/NAME.yaml, else actions/NAME.yml; returns the path or NULL. */
static char *find_action_file(const char *packs_dir, const char *pack, const char *name)
{
    static const char *const exts[] = {"yaml", "yml"};
    for (size_t i = 0; i < ARRAY_SIZE(exts); i++) {
        char *path = xasprintf("%s/%s/actions/%s.%s", packs_dir, pack, name, exts[i]);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            return path;
        free(path);
    }
    return NULL;
}

int action_load_from_pack(const char *packs_dir, const char *action_ref, struct action **out,
                          char *err, size_t errlen)
{
    char *pack = NULL, *name = NULL, *path = NULL, *pack_dir = NULL;
    json_t *def = NULL;
    char msg[ERRBUF];
    *out = NULL;
    int rc = split_ref(action_ref, &pack, &name, err, errlen);
    if (rc < 0)
        return rc;
    path = find_action_file(packs_dir, pack, name);
    if (!path) {
        rc = set_error(err, errlen, ENOENT, "action '%s' not found: no file %s/%s/actions/%s.yaml",
                       action_ref, packs_dir, pack, name);
        goto fail;
    }
    if ((rc = yaml_load_file(path, ACTION_FILE_MAX, &def, err, errlen)) < 0)
        goto fail;
    pack_dir = xasprintf("%s/%s", packs_dir, pack);
    if ((rc = build_action(def, pack, pack_dir, name, out, msg, sizeof(msg))) < 0)
        set_error(err, errlen, rc, "%s: %s", path, msg);
    else
        (*out)->source_path = xstrdup(path);
fail:
    json_decref(def);
    free(pack_dir);
    free(path);
    free(pack);
    free(name);
    return rc;
}
