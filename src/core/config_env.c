/* The ATTUNE__SECTION__KEY environment overrides of the configuration, and
 * wiping those that may hold a secret from the environment once read. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/config_table.h"
#include "core/log.h"
#include "core/util.h"

#define CONFIG_ENV_PREFIX "ATTUNE__"

/* "WORKER__MAX_CONCURRENT_TASKS" -> "worker.max_concurrent_tasks"; the name
 * after WORKER__ENV__ keeps its case since it is an environment name. */
static char *env_name_to_key(const char *name)
{
    struct strbuf key;
    strbuf_init(&key);
    for (const char *p = name; *p;) {
        if (p[0] == '_' && p[1] == '_') {
            strbuf_putc(&key, '.');
            p += 2;
            if (strcmp(key.data, WORKER_ENV_PREFIX) == 0) {
                strbuf_puts(&key, p);
                break;
            }
            continue;
        }
        strbuf_putc(&key, (char)tolower((unsigned char)*p++));
    }
    return strbuf_detach(&key, NULL);
}

static int apply_env_var(struct config *cfg, const char *entry, char *err, size_t errlen)
{
    const char *eq = strchr(entry, '=');
    if (!eq)
        return 0;
    char *var = xstrndup(entry, (size_t)(eq - entry));
    char *key = env_name_to_key(var + strlen(CONFIG_ENV_PREFIX));
    char msg[512];
    int rc = 0;
    if (!config_key_find(key) && !str_starts_with(key, WORKER_ENV_PREFIX)) {
        /* Attune's other services read ATTUNE__ variables of their own from
         * the same environment: not ours is not an error. */
        log_warn("ignoring %s: not a setting of attune-worker", var);
    } else if ((rc = config_set(cfg, key, eq + 1, msg, sizeof(msg))) < 0) {
        set_error(err, errlen, rc, "%s: %s", var, msg);
    }
    free(key);
    free(var);
    return rc;
}

static int apply_environment(struct config *cfg, char *err, size_t errlen)
{
    for (char **e = environ; e && *e; e++) {
        if (strncasecmp(*e, CONFIG_ENV_PREFIX, strlen(CONFIG_ENV_PREFIX)) != 0)
            continue;
        int rc = apply_env_var(cfg, *e, err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Attune's services take the API's URL from ATTUNE_API_URL; so does this
 * worker, over anything else. */
static int apply_api_url(struct config *cfg, char *err, size_t errlen)
{
    const char *url = getenv("ATTUNE_API_URL");
    return url && url[0] ? config_set(cfg, "worker.api_url", url, err, errlen) : 0;
}

int config_apply_environment(struct config *cfg, char *err, size_t errlen)
{
    int rc = apply_environment(cfg, err, errlen);
    return rc == 0 ? apply_api_url(cfg, err, errlen) : rc;
}

/* Whether an environment entry sets a key that may hold a secret: the
 * encryption key, the JWT secret, or a URL (which may carry a password). */
static bool entry_holds_secret(const char *entry)
{
    const char *eq = strchr(entry, '=');
    size_t prefix = strlen(CONFIG_ENV_PREFIX);
    if (!eq || strncasecmp(entry, CONFIG_ENV_PREFIX, prefix) != 0)
        return false;
    char *var = xstrndup(entry + prefix, (size_t)(eq - entry) - prefix);
    char *key = env_name_to_key(var);
    const struct key_def *def = config_key_find(key);
    free(key);
    free(var);
    return def && (def->kind == KEY_SECRET || def->kind == KEY_URL);
}

void config_scrub_environment(void)
{
    struct strv names;
    strv_init(&names);
    /* The value is overwritten where it lies: the initial entries are the
     * copy on the stack that /proc/PID/environ shows, which unsetenv alone
     * would leave in place. */
    for (char **e = environ; e && *e; e++) {
        if (!entry_holds_secret(*e))
            continue;
        char *eq = strchr(*e, '=');
        secure_zero(eq + 1, strlen(eq + 1));
        strv_push_owned(&names, xstrndup(*e, (size_t)(eq - *e)));
    }
    for (size_t i = 0; i < names.len; i++)
        unsetenv(names.items[i]);
    strv_free(&names);
}
