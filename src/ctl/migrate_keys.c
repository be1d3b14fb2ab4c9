/* The part of `attunectl migrate` that SQL cannot do: re-encrypting keys
 * stored before migration 0003_attune_today (old format: the ciphertext of
 * the raw text) as Attune's encrypt_json of that text as a JSON string. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ctl/ctl.h"
#include "worker/secrets.h"

/* 0003 lists the rows it could not convert here; a row leaves the list
 * when it is converted, so a second run finds nothing to do. */
static const char pending_sql[] =
    "SELECT k.id, k.ref, COALESCE(k.encryption_key_hash, ''), k.value #>> '{}' "
    "FROM attune.key k JOIN attune.key_legacy_ciphertext l ON l.key = k.id "
    "ORDER BY k.id FOR UPDATE OF k";

static const char convert_sql[] =
    "WITH done AS (DELETE FROM attune.key_legacy_ciphertext WHERE key = $1::bigint) "
    "UPDATE attune.key SET value = $2::jsonb, encryption_key_hash = $3 WHERE id = $1::bigint";

static int missing_key(int count, const char *first_ref)
{
    fprintf(stderr,
            "attunectl: configuration error: security.encryption_key is not set; %d encrypted "
            "key%s (%s%s) stored before migration 0003_attune_today must be re-encrypted with "
            "it: set security.encryption_key (ATTUNE__SECURITY__ENCRYPTION_KEY) to the key they "
            "were stored with and run attunectl migrate again (nothing was changed)\n",
            count, count == 1 ? "" : "s", first_ref, count == 1 ? "" : ", ...");
    return CONFIG_EXIT_STATUS;
}

/* The new stored value of one row (JSON text), or an exit status. */
static int convert_value(const struct config *cfg, const char *ref, const char *old, char **stored)
{
    struct strbuf plain;
    char why[200];
    strbuf_init(&plain);
    strbuf_append(&plain, "", 0);
    int status = CTL_EXIT_OK;
    json_t *text = NULL, *encrypted = NULL;
    if (secrets_decrypt(cfg->encryption_key, old, &plain, why, sizeof(why)) < 0)
        status = ctl_error("key %s cannot be decrypted with security.encryption_key (%s): set "
                           "it to the key the value was encrypted with and run attunectl "
                           "migrate again (nothing was changed)",
                           ref, why);
    else if (!(text = json_stringn(plain.data, plain.len)))
        status = ctl_error("key %s holds bytes that are not UTF-8 text, which a JSON string "
                           "cannot hold (nothing was changed)",
                           ref);
    else if (secrets_encrypt_json(cfg->encryption_key, text, &encrypted) < 0)
        status = ctl_error("cannot encrypt key %s", ref);
    else
        *stored = json_dumps(encrypted, JSON_ENCODE_ANY);
    secure_zero(plain.data, plain.cap);
    strbuf_free(&plain);
    secrets_json_wipe_free(text);
    json_decref(encrypted);
    return status;
}

static int convert_row(PGconn *db, const struct config *cfg, const PGresult *res, int row,
                       const char *hash)
{
    const char *id = PQgetvalue(res, row, 0), *ref = PQgetvalue(res, row, 1);
    const char *stored_hash = PQgetvalue(res, row, 2);
    if (*stored_hash && strcasecmp(stored_hash, hash) != 0)
        return ctl_error("key %s was encrypted with another key than security.encryption_key "
                         "(hash mismatch): set it to the key the value was encrypted with and "
                         "run attunectl migrate again (nothing was changed)",
                         ref);
    char *stored = NULL;
    int status = convert_value(cfg, ref, PQgetvalue(res, row, 3), &stored);
    if (status == CTL_EXIT_OK) {
        const char *values[] = {id, stored, hash};
        char *what = xasprintf("cannot store key %s", ref);
        if (ctl_exec(db, what, convert_sql, 3, values) < 0)
            status = CTL_EXIT_FAILED;
        free(what);
    }
    free(stored);
    return status;
}

int ctl_migrate_keys(PGconn *db, const struct config *cfg, int *converted)
{
    *converted = 0;
    PGresult *res =
        ctl_query(db, "cannot look for keys to convert",
                  "SELECT to_regclass('attune.key_legacy_ciphertext') IS NOT NULL", 0, NULL);
    bool listed = res && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    int status = res ? CTL_EXIT_OK : CTL_EXIT_FAILED;
    PQclear(res);
    if (!listed)
        return status;
    res = ctl_query(db, "cannot read the keys to convert", pending_sql, 0, NULL);
    if (!res)
        return CTL_EXIT_FAILED;
    int n = PQntuples(res);
    char hash[65];
    if (n > 0 && (!cfg->encryption_key || !*cfg->encryption_key))
        status = missing_key(n, PQgetvalue(res, 0, 1));
    else if (n > 0)
        secrets_key_hash(cfg->encryption_key, hash);
    for (int i = 0; status == CTL_EXIT_OK && i < n; i++)
        status = convert_row(db, cfg, res, i, hash);
    PQclear(res);
    if (status == CTL_EXIT_OK)
        *converted = n;
    return status;
}
