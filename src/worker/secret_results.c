/* Secret values in an execution's result (see secret_results.h). */
#include "worker/secret_results.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "exec/mask.h"
#include "worker/secrets.h"

/* The captured outputs that are masked whole once anything is secret:
 * Attune's stdout and error, and this worker's own stderr, from which error
 * is often taken. */
static const char *const outputs[] = {"stdout", "stderr", "error"};

static json_t *marker(void)
{
    return json_pack("{s:b, s:b}", "$attune_secret", 1, "redacted", 1);
}

static bool is_marker(const json_t *value)
{
    return json_is_true(json_object_get(value, "$attune_secret"));
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The strings of v as a JSON array, sorted bytewise, each once; frees v. */
static json_t *sorted_array(struct strv *v)
{
    json_t *out = json_array();
    if (v->len > 0)
        qsort(v->items, v->len, sizeof(*v->items), compare_strings);
    for (size_t i = 0; i < v->len; i++) {
        if (i == 0 || strcmp(v->items[i], v->items[i - 1]) != 0)
            json_array_append_new(out, json_string(v->items[i]));
    }
    strv_free(v);
    return out;
}

/* Schema paths */

/* base + "/" + key, the key escaped as RFC 6901 says ("~" as "~0", "/" as "~1"). */
static char *pointer_join(const char *base, const char *key)
{
    struct strbuf b;
    strbuf_init(&b);
    strbuf_puts(&b, base);
    strbuf_putc(&b, '/');
    for (const char *p = key; *p; p++) {
        if (*p == '~' || *p == '/')
            strbuf_puts(&b, *p == '~' ? "~0" : "~1");
        else
            strbuf_putc(&b, *p);
    }
    return strbuf_detach(&b, NULL);
}

/* The definition at path: secret, or read on through its properties. The top
 * of a JSON schema (root) is never a path of its own. */
static void collect(const json_t *def, const char *path, bool root, struct strv *paths)
{
    if (!json_is_object(def))
        return;
    if (!root && json_is_true(json_object_get(def, "secret"))) {
        strv_push(paths, path);
        return;
    }
    const json_t *props = json_object_get(def, "properties");
    const char *key;
    const json_t *child;
    json_object_foreach((json_t *)props, key, child)
    {
        char *sub = pointer_join(path, key);
        collect(child, sub, false, paths);
        free(sub);
    }
}

json_t *secret_results_schema_paths(const json_t *out_schema)
{
    struct strv paths;
    strv_init(&paths);
    if (json_object_get(out_schema, "properties")) {
        collect(out_schema, "", true, &paths);
    } else {
        const char *key;
        const json_t *def;
        json_object_foreach((json_t *)out_schema, key, def)
        {
            char *path = pointer_join("", key);
            collect(def, path, false, &paths);
            free(path);
        }
    }
    return sorted_array(&paths);
}

json_t *secret_results_config_paths(const struct secret_value_row *rows, size_t count)
{
    struct strv paths;
    strv_init(&paths);
    for (size_t i = 0; i < count; i++)
        strv_push(&paths, rows[i].json_path);
    return sorted_array(&paths);
}

/* Finding a value */

/* The next reference token of *p (which points at its '/'), unescaped; *p
 * moves past it. */
static char *next_token(const char **p)
{
    const char *start = *p + 1;
    size_t len = strcspn(start, "/");
    char *out = xmalloc(len + 1), *o = out;
    for (size_t i = 0; i < len; i++) {
        bool escape = start[i] == '~' && (start[i + 1] == '0' || start[i + 1] == '1');
        *o++ = escape ? (start[++i] == '1' ? '/' : '~') : start[i];
    }
    *o = '\0';
    *p = start + len;
    return out;
}

/* An array index as Attune's pointers read one: digits, no leading zero. */
static bool array_index(const char *token, size_t *out)
{
    size_t n = strlen(token);
    if (n == 0 || n > 18 || strspn(token, "0123456789") != n || (token[0] == '0' && n > 1))
        return false;
    *out = (size_t)strtoull(token, NULL, 10);
    return true;
}

/* The member of node named by token, or NULL. */
static json_t *child_of(json_t *node, const char *token)
{
    size_t index;
    if (json_is_object(node))
        return json_object_get(node, token);
    if (json_is_array(node) && array_index(token, &index))
        return json_array_get(node, index);
    return NULL;
}

/* Replaces the value at path below doc by the marker and returns it (a
 * reference the caller owns), or NULL when the path leads nowhere. */
static json_t *take_at(json_t *doc, const char *path)
{
    json_t *node = doc, *found = NULL;
    const char *p = path;
    while (node && *p == '/') {
        char *token = next_token(&p);
        json_t *child = child_of(node, token);
        if (child && !*p) {
            size_t index;
            found = json_incref(child);
            if (json_is_object(node))
                json_object_set_new(node, token, marker());
            else if (array_index(token, &index))
                json_array_set_new(node, index, marker());
        }
        node = child;
        free(token);
    }
    return found;
}

/* Taking values out */

/* Attune's SecretProvenance of a value taken out, as compact JSON: the
 * execution's secret parameters when it has some, else the schema path. */
static char *provenance(const char *schema_path, int64_t execution_id, const json_t *config_paths)
{
    json_t *origins = json_array();
    size_t i;
    const json_t *path;
    json_array_foreach(config_paths, i, path)
    {
        json_array_append_new(origins, json_pack("{s:s, s:s, s:I, s:O}", "kind", "entity",
                                                 "entity_type", "execution_config", "entity_id",
                                                 (json_int_t)execution_id, "path", path));
    }
    if (json_array_size(origins) == 0)
        json_array_append_new(origins, json_pack("{s:s, s:s, s:s}", "kind", "local", "source_kind",
                                                 "parameter_schema", "source_ref", schema_path));
    json_t *doc = json_pack("{s:o, s:[]}", "origins", origins, "templates");
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return text;
}

static void note_taken(json_t *taken, const char *json_path, json_t *value, const char *source_ref)
{
    json_array_append_new(taken,
                          json_pack("{s:s, s:o, s:s, s:s}", "json_path", json_path, "value", value,
                                    "source_kind", "provenance", "source_ref", source_ref));
}

static void redact_data(json_t *result, const json_t *schema_paths, int64_t execution_id,
                        const json_t *config_paths, json_t *taken)
{
    json_t *data = json_object_get(result, "data");
    size_t i;
    const json_t *item;
    json_array_foreach(schema_paths, i, item)
    {
        const char *path = json_string_value(item);
        json_t *value = data ? take_at(data, path) : NULL;
        if (!value)
            continue;
        char *json_path = xasprintf("/data%s", path);
        char *ref = provenance(path, execution_id, config_paths);
        note_taken(taken, json_path, value, ref);
        free(ref);
        free(json_path);
    }
    json_t *ack = json_object_get(data, "queue_ack");
    if (json_object_get(result, "queue_ack") && json_is_object(data) && ack)
        json_object_set(result, "queue_ack", ack);
}

static void redact_outputs(json_t *result, int64_t execution_id, const json_t *config_paths,
                           json_t *taken)
{
    for (size_t i = 0; i < ARRAY_SIZE(outputs); i++) {
        json_t *value = json_object_get(result, outputs[i]);
        if (!value || json_is_null(value) || is_marker(value) ||
            (json_is_string(value) && json_string_length(value) == 0))
            continue;
        char *json_path = xasprintf("/%s", outputs[i]);
        char *ref = provenance(json_path, execution_id, config_paths);
        note_taken(taken, json_path, json_incref(value), ref);
        json_object_set_new(result, outputs[i], marker());
        free(ref);
        free(json_path);
    }
}

json_t *secret_results_redact(json_t *result, const json_t *out_schema, int64_t execution_id,
                              const json_t *config_paths)
{
    json_t *taken = json_array();
    json_t *schema_paths = secret_results_schema_paths(out_schema);
    redact_data(result, schema_paths, execution_id, config_paths, taken);
    if (json_array_size(schema_paths) > 0 || json_array_size(config_paths) > 0)
        redact_outputs(result, execution_id, config_paths, taken);
    json_decref(schema_paths);
    return taken;
}

/* Sealing */

static const char *text_of(const json_t *item, const char *key)
{
    return json_string_value(json_object_get(item, key));
}

/* "/data/a, /stdout" (the first few paths of taken), for messages. */
static char *paths_text(const json_t *taken)
{
    struct strbuf b;
    strbuf_init(&b);
    size_t i;
    const json_t *item;
    json_array_foreach(taken, i, item)
    {
        if (i == 8) {
            strbuf_puts(&b, ", ...");
            break;
        }
        strbuf_printf(&b, "%s%s", i ? ", " : "", text_of(item, "json_path"));
    }
    return strbuf_detach(&b, NULL);
}

static int seal_failure(const json_t *taken, int code, const char *why, char *err, size_t errlen)
{
    char *paths = paths_text(taken);
    set_error(err, errlen, code, "the result's secret values (%s) cannot be stored: %s", paths,
              why);
    free(paths);
    return -code;
}

int secret_results_seal(const json_t *taken, const char *key_string, json_t **rows, char *err,
                        size_t errlen)
{
    *rows = NULL;
    if (json_array_size(taken) == 0)
        return 0;
    if (!key_string || !*key_string)
        return seal_failure(taken, ENOKEY, "no security.encryption_key is configured", err, errlen);
    char hash[65];
    secrets_key_hash(key_string, hash);
    json_t *out = json_array();
    size_t i;
    const json_t *item;
    json_array_foreach(taken, i, item)
    {
        json_t *sealed = NULL;
        if (secrets_encrypt_json(key_string, json_object_get(item, "value"), &sealed) < 0) {
            json_decref(out);
            return seal_failure(taken, EIO, "encryption failed", err, errlen);
        }
        /* Copies: the taken array is wiped, its strings with it. */
        json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:o, s:s}", "json_path",
                                             text_of(item, "json_path"), "source_kind",
                                             text_of(item, "source_kind"), "source_ref",
                                             text_of(item, "source_ref"), "encrypted_value", sealed,
                                             "encryption_key_hash", hash));
    }
    *rows = out;
    return 0;
}

/* One execution's */

struct secret_results {
    const json_t *out_schema;
    int64_t execution_id;
    const json_t *config_paths;
    const char *key_string;
    json_t *rows;
};

struct secret_results *secret_results_new(const json_t *out_schema, int64_t execution_id,
                                          const json_t *config_paths, const char *key_string)
{
    struct secret_results *sr = xcalloc(1, sizeof(*sr));
    *sr = (struct secret_results){.out_schema = out_schema,
                                  .execution_id = execution_id,
                                  .config_paths = config_paths,
                                  .key_string = key_string};
    return sr;
}

/* The values taken out of the data may also sit elsewhere in it (a message
 * quoting a password): they are masked there like the execution's other
 * secrets. The logs already on disk were written before these values were
 * known. */
static void mask_taken(json_t *result, const json_t *taken)
{
    struct mask_set *set = mask_set_new();
    size_t i;
    const json_t *item;
    json_array_foreach(taken, i, item)
    {
        if (str_starts_with(text_of(item, "json_path"), "/data"))
            mask_set_add_json(set, json_object_get(item, "value"));
    }
    mask_set_build(set);
    mask_json(set, json_object_get(result, "data"));
    mask_json(set, json_object_get(result, "queue_ack"));
    mask_set_free(set);
}

void secret_results_filter(json_t *result, enum execution_status *status, void *userdata)
{
    struct secret_results *sr = userdata;
    json_t *taken =
        secret_results_redact(result, sr->out_schema, sr->execution_id, sr->config_paths);
    mask_taken(result, taken);
    char err[512];
    json_decref(sr->rows);
    if (secret_results_seal(taken, sr->key_string, &sr->rows, err, sizeof(err)) < 0) {
        log_warn("execution %lld: %s", (long long)sr->execution_id, err);
        json_object_set_new(result, "succeeded", json_false());
        json_t *error = json_string(err); /* NULL if cut inside a character */
        json_object_set_new(result, "error",
                            error ? error
                                  : json_string("the result's secret values cannot be "
                                                "stored"));
        json_object_del(result, "cancelled");
        json_object_del(result, "timed_out");
        *status = EXECUTION_FAILED;
    }
    secrets_json_wipe_free(taken);
}

const json_t *secret_results_rows(const struct secret_results *sr)
{
    return sr ? sr->rows : NULL;
}

void secret_results_free(struct secret_results *sr)
{
    if (!sr)
        return;
    json_decref(sr->rows);
    free(sr);
}
