/* The execution-scoped API token (see api_token.h). */
#include "worker/api_token.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/jwt.h"
#include "core/util.h"

static int compare_refs(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted by bytes (Rust's str order) and without duplicates. */
static json_t *standard_action_refs(const struct api_token_request *req)
{
    const char *refs[2] = {req->action_ref, req->parent_action_ref};
    size_t n = req->parent_action_ref ? 2 : 1;
    qsort(refs, n, sizeof(refs[0]), compare_refs);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++)
        if (i == 0 || strcmp(refs[i], refs[i - 1]) != 0)
            json_array_append_new(out, json_string(refs[i]));
    return out;
}

/* As upstream's split_once('.'): a ref without a '.' names no pack, and two
 * actions of one pack give it twice. */
static json_t *standard_pack_refs(const json_t *action_refs)
{
    json_t *out = json_array();
    size_t i;
    const json_t *ref;
    json_array_foreach(action_refs, i, ref)
    {
        const char *text = json_string_value(ref);
        const char *dot = strchr(text, '.');
        if (dot)
            json_array_append_new(out, json_stringn(text, (size_t)(dot - text)));
    }
    return out;
}

static json_t *string_array_copy(const json_t *refs)
{
    json_t *out = json_array();
    size_t i;
    const json_t *ref;
    json_array_foreach(refs, i, ref)
    {
        if (json_is_string(ref))
            json_array_append_new(out, json_copy((json_t *)ref));
    }
    return out;
}

json_t *api_token_claims(const struct api_token_request *req)
{
    json_t *actions = standard_action_refs(req);
    json_t *metadata = json_object();
    json_object_set_new(metadata, "execution_id", json_integer(req->execution_id));
    json_object_set_new(metadata, "action_ref", json_string(req->action_ref));
    json_object_set_new(metadata, "permission_set_refs",
                        string_array_copy(req->permission_set_refs));
    json_object_set_new(metadata, "standard_access_action_refs", actions);
    json_object_set_new(metadata, "standard_access_pack_refs", standard_pack_refs(actions));

    char *sub = xasprintf("%lld", (long long)req->identity);
    char *login = xasprintf("execution:%lld", (long long)req->execution_id);
    json_t *claims = json_object();
    json_object_set_new(claims, "sub", json_string(sub));
    json_object_set_new(claims, "login", json_string(login));
    json_object_set_new(claims, "iat", json_integer(req->now));
    json_object_set_new(
        claims, "exp",
        json_integer(req->now + (int64_t)req->timeout_seconds + API_TOKEN_GRACE_SECONDS));
    json_object_set_new(claims, "token_type", json_string("execution"));
    json_object_set_new(claims, "scope", json_string("execution"));
    json_object_set_new(claims, "metadata", metadata);
    free(sub);
    free(login);
    return claims;
}

int api_token_issue(const struct api_token_request *req, char **token, char *err, size_t errlen)
{
    *token = NULL;
    if (json_array_size(req->permission_set_refs) == 0)
        return 0;
    /* Attune's worker @f3e5d1c: never a token without the identity it acts for. */
    if (req->identity == 0)
        return set_error(err, errlen, EPERM,
                         "Failed to prepare execution context: Permission denied: Execution "
                         "%lld has no executor identity for API access",
                         (long long)req->execution_id);
    const char *secret = req->secret ? req->secret : API_TOKEN_DEFAULT_SECRET;
    json_t *claims = api_token_claims(req);
    *token = jwt_sign_hs256(claims, secret, strlen(secret));
    json_decref(claims);
    if (!*token)
        return set_error(err, errlen, EIO, "cannot sign the execution's API token");
    return 0;
}
