/* `attunectl pack load DIR`: reads DIR/pack.yaml and each action file in DIR/actions, checks
 * every action as the worker will, builds the pack's release (release.h), then
 * upserts the pack and its actions, records the release and makes it the pack's
 * active one in one transaction (nothing is written when any file is invalid). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/yaml.h"
#include "ctl/ctl.h"
#include "ctl/release.h"
#include "exec/action.h"
#include "runtime/registry.h"

#define PACK_FILE_MAX (1024 * 1024)

struct pack_def {
    char *dir;                                       /* absolute, symlinks resolved */
    const char *ref, *label, *description, *version; /* borrowed from meta */
    json_t *meta;                                    /* pack.yaml */
    char *tags_json;                                 /* JSON array of strings */
    struct action **actions;
    size_t n_actions;
};

static void pack_def_free(struct pack_def *p)
{
    for (size_t i = 0; i < p->n_actions; i++)
        action_free(p->actions[i]);
    free(p->actions);
    free(p->tags_json);
    json_decref(p->meta);
    free(p->dir);
}

static int read_yaml_file(const char *path, json_t **out, char *err, size_t errlen)
{
    int rc = yaml_load_file(path, PACK_FILE_MAX, out, err, errlen);
    if (rc == 0 && !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        rc = set_error(err, errlen, EINVAL, "%s: not a mapping", path);
    }
    return rc;
}

/* ^[a-z][a-z0-9_-]+$, as the pack table's check constraint. */
static bool pack_ref_ok(const char *ref)
{
    if (ref[0] < 'a' || ref[0] > 'z' || ref[1] == '\0')
        return false;
    return strspn(ref, "abcdefghijklmnopqrstuvwxyz0123456789_-") == strlen(ref);
}

static bool digits(const char **s)
{
    size_t n = strspn(*s, "0123456789");
    *s += n;
    return n > 0;
}

/* MAJOR.MINOR.PATCH with optional -prerelease and +build parts. */
static bool semver_ok(const char *v)
{
    static const char ident[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-";
    if (!digits(&v) || *v++ != '.' || !digits(&v) || *v++ != '.' || !digits(&v))
        return false;
    if (*v == '-') {
        size_t n = strspn(++v, ident);
        if (n == 0)
            return false;
        v += n;
    }
    if (*v == '+') {
        size_t n = strspn(++v, ident);
        if (n == 0)
            return false;
        v += n;
    }
    return *v == '\0';
}

/* A string value of pack.yaml, NULL when absent; an error when not a string. */
static int meta_string(const json_t *meta, const char *key, const char **out, const char *path,
                       char *err, size_t errlen)
{
    const json_t *v = json_object_get(meta, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return set_error(err, errlen, EINVAL, "%s: %s must be a string", path, key);
    *out = json_string_value(v);
    return 0;
}

static int meta_tags(struct pack_def *p, const char *path, char *err, size_t errlen)
{
    const json_t *tags = json_object_get(p->meta, "tags");
    bool ok = !tags || json_is_null(tags) || json_is_array(tags);
    for (size_t i = 0; ok && json_is_array(tags) && i < json_array_size(tags); i++)
        ok = json_is_string(json_array_get(tags, i));
    if (!ok)
        return set_error(err, errlen, EINVAL, "%s: tags must be a list of strings", path);
    p->tags_json = json_is_array(tags) ? json_dumps(tags, JSON_COMPACT) : xstrdup("[]");
    return 0;
}

static int read_pack_meta(struct pack_def *p, char *err, size_t errlen)
{
    char *path = xasprintf("%s/pack.yaml", p->dir);
    int rc = read_yaml_file(path, &p->meta, err, errlen);
    if (rc == 0)
        rc = meta_string(p->meta, "ref", &p->ref, path, err, errlen);
    if (rc == 0 && !p->ref) /* StackStorm packs name themselves with `name` */
        rc = meta_string(p->meta, "name", &p->ref, path, err, errlen);
    if (rc == 0)
        rc = meta_string(p->meta, "label", &p->label, path, err, errlen);
    if (rc == 0)
        rc = meta_string(p->meta, "description", &p->description, path, err, errlen);
    if (rc == 0)
        rc = meta_string(p->meta, "version", &p->version, path, err, errlen);
    if (rc == 0 && (!p->ref || !pack_ref_ok(p->ref)))
        rc = set_error(err, errlen, EINVAL,
                       "%s: ref must be lowercase letters, digits, '_' and '-', starting with "
                       "a letter (got '%s')",
                       path, p->ref ? p->ref : "");
    if (rc == 0 && (!p->version || !semver_ok(p->version)))
        rc = set_error(err, errlen, EINVAL,
                       "%s: version must be a semantic version such as 1.0.0 (got '%s')", path,
                       p->version ? p->version : "");
    if (rc == 0)
        rc = meta_tags(p, path, err, errlen);
    if (rc == 0 && !p->label)
        p->label = p->ref;
    free(path);
    return rc;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The action files (NAME.yaml or NAME.yml) of actions/, sorted. A pack
 * without actions/ has no actions. */
static int list_action_files(const char *pack_dir, struct strv *files)
{
    char *dir = xasprintf("%s/actions", pack_dir);
    DIR *d = opendir(dir);
    int rc = 0;
    if (!d) {
        rc = errno == ENOENT ? 0 : -errno;
        if (rc < 0)
            ctl_error("cannot read %s: %s", dir, strerror(-rc));
        free(dir);
        return rc;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' &&
            (str_ends_with(e->d_name, ".yaml") || str_ends_with(e->d_name, ".yml")))
            strv_push_owned(files, xasprintf("%s/%s", dir, e->d_name));
    closedir(d);
    free(dir);
    if (files->len > 1)
        qsort(files->items, files->len, sizeof(char *), compare_strings);
    return 0;
}

/* The file's name without directory and extension must be the action's name,
 * as `attune-worker run-action` finds actions by file name. */
static bool name_matches_file(const char *path, const char *name)
{
    const char *base = strrchr(path, '/') + 1;
    size_t stem = (size_t)(strrchr(base, '.') - base);
    return strlen(name) == stem && strncmp(base, name, stem) == 0;
}

static bool duplicate_name(const struct pack_def *p, const char *name)
{
    for (size_t i = 0; i < p->n_actions; i++)
        if (strcmp(p->actions[i]->name, name) == 0)
            return true;
    return false;
}

static int load_action(struct pack_def *p, const char *path)
{
    char err[1024];
    json_t *def = NULL;
    struct action *a = NULL;
    int rc = read_yaml_file(path, &def, err, sizeof(err));
    if (rc == 0 && ((rc = action_from_definition(def, p->ref, p->dir, &a, err, sizeof(err))) < 0 ||
                    (rc = registry_check_runner(a, err, sizeof(err))) < 0))
        ctl_error("%s: %s", path, err);
    else if (rc < 0)
        ctl_error("%s", err);
    else if (!name_matches_file(path, a->name) || duplicate_name(p, a->name)) {
        ctl_error("%s: action name '%s' %s", path, a->name,
                  duplicate_name(p, a->name) ? "is defined twice" : "does not match the file name");
        rc = -EINVAL;
    }
    json_decref(def);
    if (rc < 0) {
        action_free(a);
        return rc;
    }
    p->actions = xrealloc(p->actions, (p->n_actions + 1) * sizeof(*p->actions));
    p->actions[p->n_actions++] = a;
    return 0;
}

/* Loads every action file; reports each invalid one. Returns the exit status. */
static int load_actions(struct pack_def *p)
{
    struct strv files;
    int bad = 0;
    strv_init(&files);
    if (list_action_files(p->dir, &files) < 0) {
        strv_free(&files);
        return CTL_EXIT_FAILED;
    }
    for (size_t i = 0; i < files.len; i++)
        bad += load_action(p, files.items[i]) < 0;
    strv_free(&files);
    return bad ? CTL_EXIT_USAGE : CTL_EXIT_OK;
}

/* The worker finds the files at {packs_base_dir}/{ref}. */
static void warn_location(const struct config *cfg, const struct pack_def *p)
{
    char *expected = xasprintf("%s/%s", cfg->packs_base_dir, p->ref);
    char resolved[PATH_MAX];
    const char *where = realpath(expected, resolved) ? resolved : expected;
    if (strcmp(where, p->dir) != 0)
        ctl_warn("%s is not %s (packs_base_dir/%s): the worker will look for the pack's files "
                 "there",
                 p->dir, expected, p->ref);
    free(expected);
}

static char *store_pack(PGconn *db, const struct pack_def *p)
{
    static const char sql[] =
        "INSERT INTO attune.pack (ref, label, description, version, tags) VALUES ($1, $2, $3, "
        "$4, ARRAY(SELECT jsonb_array_elements_text($5::jsonb))) ON CONFLICT (ref) DO UPDATE "
        "SET label = EXCLUDED.label, description = EXCLUDED.description, version = "
        "EXCLUDED.version, tags = EXCLUDED.tags RETURNING id";
    const char *values[] = {p->ref, p->label, p->description, p->version, p->tags_json};
    char *what = xasprintf("cannot store pack %s", p->ref);
    PGresult *res = ctl_query(db, what, sql, 5, values);
    char *id = res ? xstrdup(PQgetvalue(res, 0, 0)) : NULL;
    PQclear(res);
    free(what);
    return id;
}

/* The runner type is kept as a runtime row of the pack ("PACK.RUNNER"), which
 * is what the worker reads to choose the interpreter. Its aliases hold its
 * name, as Attune's do; it has no execution_config of Attune's kind. */
static const char store_action_sql[] =
    "WITH rt AS (INSERT INTO attune.runtime (ref, pack, pack_ref, runtime_type, name, "
    "description, aliases, execution_config) VALUES ($3 || '.' || $12, $2::bigint, $3, "
    "'action', $12, $12 || ' actions of pack ' || $3, ARRAY[$12], '{}'::jsonb) ON CONFLICT "
    "(ref) DO UPDATE SET name = EXCLUDED.name, aliases = EXCLUDED.aliases RETURNING id) "
    "INSERT INTO attune.action (ref, pack, pack_ref, label, description, entrypoint, "
    "runtime, param_schema, parameter_delivery, parameter_format, output_format, "
    "timeout_seconds, enabled) VALUES ($1, $2::bigint, $3, $4, $5, $6, (SELECT id FROM rt), "
    "$7::jsonb, $8, $9, $10, $11::integer, $13::boolean) ON CONFLICT (ref) DO UPDATE SET "
    "pack = EXCLUDED.pack, pack_ref = EXCLUDED.pack_ref, label = EXCLUDED.label, "
    "description = EXCLUDED.description, entrypoint = EXCLUDED.entrypoint, "
    "runtime = EXCLUDED.runtime, param_schema = EXCLUDED.param_schema, "
    "parameter_delivery = EXCLUDED.parameter_delivery, parameter_format = "
    "EXCLUDED.parameter_format, output_format = EXCLUDED.output_format, timeout_seconds = "
    "EXCLUDED.timeout_seconds, enabled = EXCLUDED.enabled";

static int store_action(PGconn *db, const char *pack_id, const struct action *a)
{
    char timeout[16];
    snprintf(timeout, sizeof(timeout), "%d", a->timeout_seconds);
    char *schema = json_dumps(a->param_schema, JSON_COMPACT);
    const char *values[] = {a->ref,
                            pack_id,
                            a->pack_ref,
                            a->label ? a->label : a->name,
                            a->description,
                            a->entry_point,
                            schema,
                            param_delivery_name(a->parameter_delivery),
                            param_format_name(a->parameter_format),
                            output_format_name(a->output_format),
                            a->timeout_seconds > 0 ? timeout : NULL,
                            a->runner_type,
                            a->enabled ? "true" : "false"};
    char *what = xasprintf("cannot store action %s", a->ref);
    int rc = ctl_exec(db, what, store_action_sql, 13, values);
    free(what);
    free(schema);
    return rc;
}

/* Actions whose files are gone stay registered (executions and keys refer
 * to them); the operator hears about them. */
static void warn_orphans(PGconn *db, const char *pack_id, const struct pack_def *p)
{
    json_t *refs = json_array();
    for (size_t i = 0; i < p->n_actions; i++)
        json_array_append_new(refs, json_string(p->actions[i]->ref));
    char *refs_json = json_dumps(refs, JSON_COMPACT);
    const char *values[] = {pack_id, refs_json};
    PGresult *res =
        ctl_query(db, "cannot list the pack's actions",
                  "SELECT ref FROM attune.action WHERE pack = $1::bigint AND ref <> "
                  "ALL (ARRAY(SELECT jsonb_array_elements_text($2::jsonb))) ORDER BY ref",
                  2, values);
    for (int i = 0; res && i < PQntuples(res); i++)
        ctl_warn("action %s is registered but has no file in %s/actions any more (left as it is)",
                 PQgetvalue(res, i, 0), p->dir);
    PQclear(res);
    free(refs_json);
    json_decref(refs);
}

/* PackReleaseRepository::create_or_get, then activate (pack_release.rs@03eeaa5b):
 * a version is released once, with one set of files; loading the same files
 * again finds its row. */
static int store_release(PGconn *db, const char *pack_id, const struct pack_def *p,
                         const struct release *rel, bool *existed)
{
    static const char find_sql[] = "SELECT id, digest FROM attune.pack_release WHERE pack = "
                                   "$1::bigint AND version = $2 FOR UPDATE";
    static const char insert_sql[] =
        "INSERT INTO attune.pack_release (pack, pack_ref, version, digest, archive_path, "
        "content_path, archive_size, manifest) VALUES ($1::bigint, $2, $3, $4, $5, $6, "
        "$7::bigint, $8::jsonb) RETURNING id";
    const char *find_values[] = {pack_id, p->version};
    PGresult *res = ctl_query(db, "cannot read the pack's releases", find_sql, 2, find_values);
    if (!res)
        return -1;
    char *id = PQntuples(res) == 1 ? xstrdup(PQgetvalue(res, 0, 0)) : NULL;
    int rc = 0;
    if (id && strcmp(PQgetvalue(res, 0, 1), rel->digest) != 0)
        rc = -ctl_error("pack %s %s is released already, with other files (release %.12s); "
                        "give pack.yaml a new version to release these",
                        p->ref, p->version, PQgetvalue(res, 0, 1));
    PQclear(res);
    *existed = id != NULL;
    if (rc == 0 && !id) {
        char size[32];
        snprintf(size, sizeof(size), "%llu", (unsigned long long)rel->archive_size);
        char *manifest = json_dumps(rel->manifest, JSON_COMPACT | JSON_PRESERVE_ORDER);
        const char *values[] = {
            pack_id,           p->ref, p->version, rel->digest, rel->archive_path,
            rel->content_path, size,   manifest};
        res = ctl_query(db, "cannot store the pack's release", insert_sql, 8, values);
        id = res ? xstrdup(PQgetvalue(res, 0, 0)) : NULL;
        rc = res ? 0 : -1;
        PQclear(res);
        free(manifest);
    }
    const char *activate_values[] = {pack_id, id};
    if (rc == 0)
        rc = ctl_exec(db, "cannot activate the pack's release",
                      "UPDATE attune.pack SET active_release = $2::bigint WHERE id = $1::bigint", 2,
                      activate_values);
    free(id);
    return rc;
}

/* The release folder is in place before the rows naming it are committed. */
static int store(PGconn *db, const struct pack_def *p, struct release *rel, bool *existed)
{
    char err[1024];
    if (ctl_exec(db, "cannot start a transaction", "BEGIN", 0, NULL) < 0)
        return CTL_EXIT_FAILED;
    char *pack_id = store_pack(db, p);
    int rc = pack_id ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < p->n_actions; i++)
        rc = store_action(db, pack_id, p->actions[i]);
    if (rc == 0)
        warn_orphans(db, pack_id, p);
    if (rc == 0)
        rc = store_release(db, pack_id, p, rel, existed);
    if (rc == 0 && (rc = release_publish(rel, err, sizeof(err))) < 0)
        ctl_error("%s", err);
    if (rc == 0)
        rc = ctl_exec(db, "cannot commit", "COMMIT", 0, NULL);
    else
        PQclear(PQexec(db, "ROLLBACK"));
    free(pack_id);
    return rc == 0 ? CTL_EXIT_OK : CTL_EXIT_FAILED;
}

/* Stages the release, then stores everything. */
static int release_and_store(const struct config *cfg, const struct pack_def *p)
{
    struct release rel;
    char err[1024];
    bool existed = false;
    int rc = release_stage(cfg->packs_base_dir, p->dir, p->ref, p->version, &rel, err, sizeof(err));
    int status = rc == 0 ? CTL_EXIT_OK : rc == -EINVAL ? CTL_EXIT_USAGE : CTL_EXIT_FAILED;
    if (rc < 0)
        ctl_error("%s", err);
    PGconn *db = status == CTL_EXIT_OK ? ctl_db_connect(cfg) : NULL;
    if (status == CTL_EXIT_OK)
        status = db ? store(db, p, &rel, &existed) : CTL_EXIT_FAILED;
    PQfinish(db);
    if (status == CTL_EXIT_OK)
        printf("pack %s: %zu action%s loaded, release %.12s%s\nrelease files: %s\n", p->ref,
               p->n_actions, p->n_actions == 1 ? "" : "s", rel.digest,
               existed ? " (already released)" : "", rel.content_path);
    release_free(&rel);
    return status;
}

int ctl_pack_load(const struct config *cfg, const struct ctl_options *opts)
{
    struct pack_def p = {0};
    char err[1024];
    int status = CTL_EXIT_USAGE;
    char resolved[PATH_MAX];
    if (!realpath(opts->args[0], resolved))
        return ctl_usage_error("cannot open pack directory %s: %s", opts->args[0], strerror(errno));
    p.dir = xstrdup(resolved);
    if (read_pack_meta(&p, err, sizeof(err)) < 0)
        ctl_error("%s", err);
    else if ((status = load_actions(&p)) == CTL_EXIT_OK) {
        warn_location(cfg, &p);
        status = release_and_store(cfg, &p);
    }
    pack_def_free(&p);
    return status;
}
