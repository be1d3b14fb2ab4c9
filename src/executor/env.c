/* The ATTUNE_* variables of an execution and its execution.env_vars (see
 * env.h). */
#include "executor/env.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/env_policy.h"
#include "core/log.h"

#define CONTEXT_PREFIX "ATTUNE_CONTEXT_"

int execution_env_vars_check(const json_t *env_vars, char *err, size_t errlen)
{
    const char *name;
    json_t *value;
    bool ok = !env_vars || json_is_object(env_vars);
    json_object_foreach((json_t *)env_vars, name, value)
    {
        ok = ok && json_is_string(value);
    }
    if (!ok)
        return set_error(err, errlen, EINVAL,
                         "Failed to prepare execution context: Validation error: Execution "
                         "env_vars must be an object with string values");
    return 0;
}

json_t *execution_env_vars_allowed(const json_t *env_vars, struct strbuf *dropped)
{
    if (!json_is_object(env_vars))
        return json_incref((json_t *)env_vars);
    json_t *allowed = json_object();
    const char *name;
    json_t *value;
    json_object_foreach((json_t *)env_vars, name, value)
    {
        /* A value that is not a string stays, for execution_env_vars_check
         * to refuse as before. */
        if (json_is_string(value) && env_policy_denied(name)) {
            strbuf_printf(dropped, "%s%s", dropped->len ? ", " : "", name);
            continue;
        }
        json_object_set(allowed, name, value);
    }
    return allowed;
}

void execution_env_set_vars(struct strv *env, const json_t *env_vars)
{
    const char *name;
    json_t *value;
    json_object_foreach((json_t *)env_vars, name, value)
    {
        const char *text = json_string_value(value);
        if (str_starts_with(name, EXECUTION_ENV_RESERVED))
            log_warn("ignoring execution environment variable %s: ATTUNE_ is reserved", name);
        else if (!name[0] || strchr(name, '='))
            log_warn("ignoring execution environment variable \"%s\": not a variable name", name);
        else if (env_policy_denied(name))
            log_warn("ignoring execution environment variable %s: %s", name,
                     env_policy_denied(name));
        else if (text && strlen(text) == json_string_length(value))
            strv_setenv(env, name, text);
    }
}

char *execution_env_context_name(const char *key)
{
    char *name = xasprintf(CONTEXT_PREFIX "%s", key);
    for (char *p = name + strlen(CONTEXT_PREFIX); *p; p++) {
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
        else if (*p == '=')
            *p = '_';
    }
    return name;
}

/* The shortest digits that read back as d, laid out as Rust's serde_json
 * writes an f64 (ryu): 0.1, 3.0, 1e-7, 1.5e300. */
static char *real_text(double d)
{
    char sci[40];
    int prec = 0;
    do
        snprintf(sci, sizeof(sci), "%.*e", prec, d);
    while (strtod(sci, NULL) != d && ++prec < 17);
    /* sci is [-]D[.DDD]e(+|-)XX */
    char digits[24];
    size_t n = 0;
    const char *p = sci + (sci[0] == '-');
    for (; *p != 'e'; p++)
        if (*p != '.')
            digits[n++] = *p;
    while (n > 1 && digits[n - 1] == '0')
        n--;
    digits[n] = '\0';
    long kk = strtol(p + 1, NULL, 10) + 1; /* 10^(kk-1) <= |d| < 10^kk */
    const char *sign = sci[0] == '-' ? "-" : "";
    long len = (long)n;
    if (kk >= len && kk <= 16)
        return xasprintf("%s%s%.*s.0", sign, digits, (int)(kk - len), "0000000000000000");
    if (kk > 0 && kk <= 16)
        return xasprintf("%s%.*s.%s", sign, (int)kk, digits, digits + kk);
    if (kk > -5 && kk <= 0)
        return xasprintf("%s0.%.*s%s", sign, (int)-kk, "00000", digits);
    if (n == 1)
        return xasprintf("%s%se%ld", sign, digits, kk - 1);
    return xasprintf("%s%c.%se%ld", sign, digits[0], digits + 1, kk - 1);
}

char *execution_env_context_value(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        return xstrdup(json_string_value(v));
    case JSON_INTEGER:
        return xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    case JSON_REAL:
        return real_text(json_real_value(v));
    default:
        return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    }
}

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* In the order of the keys, as Attune walks them: of two keys with the same
 * upper case, the later one wins. */
static void set_context(struct strv *env, const json_t *context)
{
    size_t n = json_object_size(context), i = 0;
    if (!json_is_object(context) || n == 0)
        return;
    const char **keys = xcalloc(n, sizeof(*keys));
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)context, key, value)
    {
        keys[i++] = key;
    }
    qsort(keys, n, sizeof(*keys), compare_keys);
    for (i = 0; i < n; i++) {
        char *name = execution_env_context_name(keys[i]);
        char *text = execution_env_context_value(json_object_get(context, keys[i]));
        strv_setenv(env, name, text);
        free(name);
        free(text);
    }
    free(keys);
}

static void set_if(struct strv *env, const char *name, const char *value)
{
    if (value)
        strv_setenv(env, name, value);
}

void execution_env_set_attune(struct strv *env, const struct executor_settings *s,
                              const struct execution_request *req)
{
    const struct action *a = req->action;
    strv_setenv(env, "ATTUNE_EXEC_ID", req->exec_id);
    strv_setenv(env, "ATTUNE_ACTION", a->ref);
    set_if(env, "ATTUNE_API_URL", s->api_url);
    set_if(env, "ATTUNE_RUNTIME_ENVS_DIR", s->runtime_envs_dir);
    /* Attune's name, from the ref; and this worker's older one. */
    char *pack_ref = xstrndup(a->ref, strcspn(a->ref, "."));
    strv_setenv(env, "ATTUNE_PACK_REF", pack_ref);
    free(pack_ref);
    strv_setenv(env, "ATTUNE_PACK", a->pack_ref);
    set_if(env, "ATTUNE_PACK_RELEASE_DIGEST", req->pack_release_digest);
    set_if(env, "ATTUNE_TRACE_TAG", req->trace_tag);
    set_if(env, "ATTUNE_RULE", req->rule_ref);
    set_if(env, "ATTUNE_TRIGGER", req->trigger_ref);
    set_if(env, "ATTUNE_API_TOKEN", req->api_token);
    set_context(env, req->context);
}
