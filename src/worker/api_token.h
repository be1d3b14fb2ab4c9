/* The execution-scoped API token Attune's worker hands an action as
 * ATTUNE_API_TOKEN (ATTUNE-TODAY 7; common/auth/jwt.rs and worker/executor.rs
 * upstream): an HS256 JWT for the identity that triggered the execution,
 * limited to its permission sets, alive for its timeout plus a minute. Only
 * an execution with permission sets gets one. */
#ifndef ATTUNE_WORKER_API_TOKEN_H
#define ATTUNE_WORKER_API_TOKEN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* What Attune's worker signs with when security.jwt_secret is unset; so do
 * Attune's other services, so their tokens still verify. */
#define API_TOKEN_DEFAULT_SECRET "insecure_default_secret_change_in_production"
/* Beyond the execution's timeout, for clean-up and callbacks. */
#define API_TOKEN_GRACE_SECONDS 60

struct api_token_request {
    int64_t execution_id;
    const char *action_ref;
    int64_t identity;                  /* execution.executor; 0 when NULL */
    const json_t *permission_set_refs; /* strings; NULL or empty: no token */
    const char *parent_action_ref;     /* a workflow task's parent's; NULL: none */
    int timeout_seconds;               /* the effective timeout */
    int64_t now;                       /* Unix seconds: iat */
    const char *secret;                /* security.jwt_secret; NULL: the default */
};

/* The claims in Attune's order: sub (the identity as text), login, iat, exp,
 * token_type, scope, metadata {execution_id, action_ref,
 * permission_set_refs, standard_access_action_refs (the action and the
 * parent's, sorted, no duplicates), standard_access_pack_refs (the part of
 * each before its first '.'; refs without one give none)}. */
json_t *api_token_claims(const struct api_token_request *req);

/* 0 with *token NULL when the execution has no permission sets; 0 with the
 * signed token (free it with jwt_free); -EPERM with Attune's message when it
 * has permission sets but no identity; -EIO when signing fails. */
int api_token_issue(const struct api_token_request *req, char **token, char *err, size_t errlen);

#endif
