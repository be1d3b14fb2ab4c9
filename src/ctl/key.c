/* `attunectl key set NAME VALUE [--pack REF | --action REF] [--encrypt]`:
 * stores a key (secret) for the system, a pack or an action in Attune's
 * layout (a JSONB value, encrypt_json when encrypted); never prints the value. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl/ctl.h"
#include "worker/secrets.h"

#define KEY_VALUE_MAX (1024 * 1024)
#define KEY_NAME_MAX 63

struct key_owner {
    const char *type; /* "system", "pack" or "action" */
    char *pack_id;    /* --pack */
    char *action_id;  /* --action */
};

static void owner_free(struct key_owner *o)
{
    free(o->pack_id);
    free(o->action_id);
}

/* Attune's local ref (^[a-z0-9][a-z0-9_-]{0,62}$): the name is the last part
 * of the key's canonical ref, and what actions pass to get_secret. */
static bool key_name_ok(const char *name)
{
    size_t len = strlen(name);
    return len > 0 && len <= KEY_NAME_MAX && name[0] != '_' && name[0] != '-' &&
           strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") == len;
}

static int read_stdin(struct strbuf *out)
{
    char buf[8192];
    for (;;) {
        ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return ctl_error("cannot read the value from standard input: %s", strerror(errno));
        if (n == 0)
            break;
        strbuf_append(out, buf, (size_t)n);
        if (out->len > KEY_VALUE_MAX)
            break;
    }
    secure_zero(buf, sizeof(buf));
    /* `echo secret | attunectl key set NAME -` must store "secret". */
    if (out->len > 0 && out->data[out->len - 1] == '\n')
        out->data[--out->len] = '\0';
    return CTL_EXIT_OK;
}

static int read_value(const char *arg, struct strbuf *out)
{
    if (strcmp(arg, "-") != 0)
        strbuf_puts(out, arg);
    else if (read_stdin(out) != CTL_EXIT_OK)
        return CTL_EXIT_FAILED;
    if (out->len > KEY_VALUE_MAX)
        return ctl_usage_error("the value is larger than %d bytes", KEY_VALUE_MAX);
    if (out->len > 0 && memchr(out->data, '\0', out->len))
        return ctl_usage_error("the value contains a NUL byte, which keys cannot hold");
    return CTL_EXIT_OK;
}

static int find_owner_row(PGconn *db, const char *sql, const char *kind, const char *ref, char **id)
{
    const char *values[] = {ref};
    char *what = xasprintf("cannot look up %s %s", kind, ref);
    PGresult *res = ctl_query(db, what, sql, 1, values);
    free(what);
    if (!res)
        return CTL_EXIT_FAILED;
    int found = PQntuples(res) == 1;
    if (found)
        *id = xstrdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    if (!found)
        return ctl_error("%s '%s' is not registered (attunectl pack load DIR registers it)", kind,
                         ref);
    return CTL_EXIT_OK;
}

static int resolve_owner(PGconn *db, const struct ctl_options *opts, struct key_owner *o)
{
    if (opts->pack_ref) {
        o->type = "pack";
        return find_owner_row(db, "SELECT id FROM attune.pack WHERE ref = $1", "pack",
                              opts->pack_ref, &o->pack_id);
    }
    if (opts->action_ref) {
        o->type = "action";
        return find_owner_row(db, "SELECT id FROM attune.action WHERE ref = $1", "action",
                              opts->action_ref, &o->action_id);
    }
    o->type = "system";
    return CTL_EXIT_OK;
}

/* The key table's trigger (validate_key_owner, here and upstream) fills
 * owner, owner_*_ref and the canonical ref from the owner's id. */
static int upsert_key(PGconn *db, const struct ctl_options *opts, const struct key_owner *o,
                      const char *name, const char *stored, const char *hash)
{
    static const char sql[] =
        "INSERT INTO attune.key (owner_type, owner_pack, owner_action, local_ref, name, "
        "encrypted, encryption_key_hash, value) VALUES ($1::attune.owner_type_enum, $2::bigint, "
        "$3::bigint, $4, $4, $5::boolean, $6, $7::jsonb) ON CONFLICT (owner_type, owner, name) "
        "DO UPDATE SET encrypted = EXCLUDED.encrypted, encryption_key_hash = "
        "EXCLUDED.encryption_key_hash, value = EXCLUDED.value RETURNING ref, (xmax = 0)";
    const char *values[] = {
        o->type, o->pack_id, o->action_id, name, opts->encrypt ? "true" : "false", hash, stored};
    char *what = xasprintf("cannot store key %s", name);
    PGresult *res = ctl_query(db, what, sql, 7, values);
    free(what);
    if (!res)
        return CTL_EXIT_FAILED;
    printf("key %s %s%s\n", PQgetvalue(res, 0, 0),
           strcmp(PQgetvalue(res, 0, 1), "t") == 0 ? "created" : "updated",
           opts->encrypt ? " (encrypted)" : "");
    PQclear(res);
    return CTL_EXIT_OK;
}

/* Turns the plain value into the stored JSON text: the JSON string of the
 * value, or encrypt_json of that string. */
static int prepare_value(const struct config *cfg, const struct ctl_options *opts,
                         struct strbuf *value, struct strbuf *stored, char hash[65])
{
    hash[0] = '\0';
    if (opts->encrypt && (!cfg->encryption_key || !*cfg->encryption_key)) {
        fprintf(stderr, "attunectl: configuration error: security.encryption_key is not set "
                        "(needed by --encrypt)\n");
        return CONFIG_EXIT_STATUS;
    }
    json_t *text = json_stringn(value->data ? value->data : "", value->len);
    if (!text)
        return ctl_usage_error("the value is not UTF-8 text, which keys hold as JSON strings");
    json_t *encrypted = NULL;
    int rc = opts->encrypt ? secrets_encrypt_json(cfg->encryption_key, text, &encrypted) : 0;
    char *dumped = rc == 0 ? json_dumps(encrypted ? encrypted : text, JSON_ENCODE_ANY) : NULL;
    secrets_json_wipe_free(text);
    json_decref(encrypted);
    if (!dumped)
        return ctl_error("cannot encrypt the value");
    strbuf_puts(stored, dumped);
    secure_zero(dumped, strlen(dumped));
    free(dumped);
    if (opts->encrypt)
        secrets_key_hash(cfg->encryption_key, hash);
    return CTL_EXIT_OK;
}

static void wipe(struct strbuf *sb)
{
    if (sb->data)
        secure_zero(sb->data, sb->cap);
    strbuf_free(sb);
}

int ctl_key_set(const struct config *cfg, const struct ctl_options *opts)
{
    const char *name = opts->args[0];
    struct strbuf value, stored;
    struct key_owner owner = {0};
    char hash[65] = "";
    if (!key_name_ok(name))
        return ctl_usage_error("invalid key name '%s' (1 to %d lowercase letters, digits, '_' "
                               "and '-', starting with a letter or digit)",
                               name, KEY_NAME_MAX);
    strbuf_init(&value);
    strbuf_init(&stored);
    int status = read_value(opts->args[1], &value);
    if (status == CTL_EXIT_OK)
        status = prepare_value(cfg, opts, &value, &stored, hash);
    PGconn *db = status == CTL_EXIT_OK ? ctl_db_connect(cfg) : NULL;
    if (status == CTL_EXIT_OK && !db)
        status = CTL_EXIT_FAILED;
    if (status == CTL_EXIT_OK)
        status = resolve_owner(db, opts, &owner);
    if (status == CTL_EXIT_OK)
        status = upsert_key(db, opts, &owner, name, stored.data, hash[0] ? hash : NULL);
    PQfinish(db);
    owner_free(&owner);
    wipe(&value);
    wipe(&stored);
    return status;
}
