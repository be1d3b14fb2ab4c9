/* Secret parameters restored into an execution's config (see secret_params.h). */
#include "worker/secret_params.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "worker/secrets.h"

/* One reference token of a pointer, unescaped: "~1" is '/', "~0" is '~'. */
static char *pointer_token(const char *p, size_t len)
{
    char *out = xmalloc(len + 1), *o = out;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '~' && i + 1 < len && (p[i + 1] == '0' || p[i + 1] == '1')) {
            *o++ = p[i + 1] == '1' ? '/' : '~';
            i++;
        } else {
            *o++ = p[i];
        }
    }
    *o = '\0';
    return out;
}

static bool array_index(const char *token, size_t *out)
{
    if (!*token || strspn(token, "0123456789") != strlen(token))
        return false;
    int64_t v;
    if (!parse_int64(token, &v) || v < 0)
        return false;
    *out = (size_t)v;
    return true;
}

/* Writes value at the tokens of rest (each "/"-separated) below node. */
static void set_below(json_t *node, const char *rest, json_t *value)
{
    size_t len = strcspn(rest, "/");
    char *token = pointer_token(rest, len);
    bool last = rest[len] == '\0';
    size_t index;
    if (json_is_object(node)) {
        if (last) {
            json_object_set_new(node, token, value);
            value = NULL;
        } else {
            json_t *child = json_object_get(node, token);
            if (!child) {
                child = json_object();
                json_object_set_new(node, token, child);
            }
            set_below(child, rest + len + 1, value);
            value = NULL;
        }
    } else if (json_is_array(node) && array_index(token, &index) && index < json_array_size(node)) {
        if (last)
            json_array_set_new(node, index, value);
        else
            set_below(json_array_get(node, index), rest + len + 1, value);
        value = NULL;
    }
    free(token);
    secrets_json_wipe_free(value); /* not written anywhere */
}

void secret_params_set(json_t **doc, const char *path, json_t *value)
{
    while (*path == '/') /* as Attune: every leading '/' is dropped */
        path++;
    if (!*path) {
        secrets_json_wipe_free(*doc);
        *doc = value;
        return;
    }
    set_below(*doc, path, value);
}

static void note_name(json_t *names, const char *path)
{
    while (*path == '/')
        path++;
    char *name = pointer_token(path, strcspn(path, "/"));
    json_array_append_new(names, json_string(name));
    free(name);
}

static int restore_one(json_t **config, const struct secret_value_row *row, const char *key_string,
                       const char *key_hash, char *err, size_t errlen)
{
    if (!key_string)
        return set_error(err, errlen, ENOKEY,
                         "the secret parameter at '%s' is encrypted but no "
                         "security.encryption_key is configured",
                         row->json_path);
    if (row->encryption_key_hash && strcmp(row->encryption_key_hash, key_hash) != 0)
        return set_error(err, errlen, EKEYREJECTED,
                         "the secret parameter at '%s' was encrypted with a different key "
                         "(encryption_key_hash mismatch)",
                         row->json_path);
    char why[200];
    json_t *value = NULL;
    int rc = secrets_decrypt_json(key_string, row->encrypted_value, &value, why, sizeof(why));
    if (rc < 0)
        return set_error(err, errlen, rc, "the secret parameter at '%s' cannot be decrypted: %s",
                         row->json_path, why);
    secret_params_set(config, row->json_path, value);
    return 0;
}

int secret_params_restore(json_t **config, const struct secret_value_row *rows, size_t count,
                          const char *key_string, json_t *names, char *err, size_t errlen)
{
    char hash[65] = "";
    if (key_string && !*key_string)
        key_string = NULL;
    if (key_string)
        secrets_key_hash(key_string, hash);
    for (size_t i = 0; i < count; i++) {
        int rc = restore_one(config, &rows[i], key_string, hash, err, errlen);
        if (rc < 0)
            return rc;
        if (names)
            note_name(names, rows[i].json_path);
    }
    return 0;
}
