/* Loading the configuration: the YAML file, the ATTUNE__ environment
 * overrides, validation of the result, and what every program does at start. */
#include "core/config.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config_table.h"
#include "core/env_policy.h"
#include "core/json.h"
#include "core/util.h"
#include "core/yaml.h"

#define CONFIG_FILE_MAX (1024 * 1024)
#define WORKER_NAME_MAX 128
/* Spelled out so that no locale widens the character classes. */
#define ASCII_LETTERS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#define ASCII_ALNUM ASCII_LETTERS "0123456789"

/* A section is the part before the dot of some key ("worker"). */
static bool is_section(const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < config_n_keys; i++)
        if (strncmp(config_keys[i].name, name, len) == 0 && config_keys[i].name[len] == '.')
            return true;
    return false;
}

/* The file */

/* A YAML scalar as the text config_set takes; NULL for a mapping or list.
 * A null value (an empty "key:") becomes "", which unsets the optional keys. */
static char *scalar_text(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        return xstrndup(json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    case JSON_REAL:
        return xasprintf("%.17g", json_real_value(v));
    case JSON_TRUE:
        return xstrdup("true");
    case JSON_FALSE:
        return xstrdup("false");
    case JSON_NULL:
        return xstrdup("");
    default:
        return NULL;
    }
}

static int apply_action_env(struct config *cfg, const struct key_def *def, const json_t *map,
                            char *err, size_t errlen)
{
    if (json_is_null(map))
        return 0;
    if (!json_is_object(map))
        return set_error(err, errlen, EINVAL, "%s: expected %s, got %s", def->name,
                         config_kind_expected(def->kind), json_kind(map));
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)map, name, v)
    {
        char *text = scalar_text(v);
        if (!text)
            return set_error(err, errlen, EINVAL, "%s.%s: expected a string, got %s", def->name,
                             name, json_kind(v));
        config_action_env_set(cfg, name, text);
        free(text);
    }
    return 0;
}

static int apply_list(struct config *cfg, const struct key_def *def, const json_t *list, char *err,
                      size_t errlen)
{
    struct strv v;
    strv_init(&v);
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item)
    {
        if (!json_is_string(item)) {
            strv_free(&v);
            return set_error(err, errlen, EINVAL, "%s: item %zu: expected a string", def->name,
                             i + 1);
        }
        strv_push(&v, json_string_value(item));
    }
    if (def->kind == KEY_LIST)
        config_set_list(cfg, def, v.items);
    else
        config_set_runtimes(cfg, v.items);
    return 0;
}

static int apply_value(struct config *cfg, const char *name, const json_t *v, char *err,
                       size_t errlen)
{
    const struct key_def *def = config_key_find(name);
    if (!def)
        return config_unknown_key(err, errlen, name);
    if (def->kind == KEY_ENV)
        return apply_action_env(cfg, def, v, err, errlen);
    if ((def->kind == KEY_RUNTIMES || def->kind == KEY_LIST) && json_is_array(v))
        return apply_list(cfg, def, v, err, errlen);
    char *text = scalar_text(v);
    if (!text)
        return set_error(err, errlen, EINVAL, "%s: expected %s, got %s", def->name,
                         config_kind_expected(def->kind), json_kind(v));
    int rc = config_set(cfg, name, text, err, errlen);
    config_free_secret(text);
    return rc;
}

static int apply_mapping(struct config *cfg, const char *section, const json_t *map, char *err,
                         size_t errlen);

static int apply_section(struct config *cfg, const char *section, const json_t *v, char *err,
                         size_t errlen)
{
    if (json_is_object(v))
        return apply_mapping(cfg, section, v, err, errlen);
    if (json_is_null(v))
        return 0;
    return set_error(err, errlen, EINVAL, "%s: expected a mapping, got %s", section, json_kind(v));
}

/* Keys are walked one level deep so that "worker.name" is only ever spelled
 * as a nested key; a literal dot in a file's key is an unknown key. */
static int apply_mapping(struct config *cfg, const char *section, const json_t *map, char *err,
                         size_t errlen)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)map, key, v)
    {
        char *name = section ? xasprintf("%s.%s", section, key) : xstrdup(key);
        int rc;
        if (strchr(key, '.'))
            rc = config_unknown_key(err, errlen, name);
        else if (!section && is_section(key))
            rc = apply_section(cfg, key, v, err, errlen);
        else if (json_is_object(v) && is_section(name)) /* runtimes.python */
            rc = apply_mapping(cfg, name, v, err, errlen);
        else
            rc = apply_value(cfg, name, v, err, errlen);
        free(name);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The text may hold the encryption key and the JWT secret; the parsed copies
 * are wiped too. */
static void wipe_parsed_secret(json_t *root)
{
    static const char *const names[] = {"encryption_key", "jwt_secret"};
    json_t *security = json_object_get(root, "security");
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        json_t *key = json_object_get(security, names[i]);
        if (json_is_string(key))
            secure_zero((char *)json_string_value(key), json_string_length(key));
    }
}

/* Reads and parses the file; every message names it. */
static int parse_file(const char *path, json_t **root, char *err, size_t errlen)
{
    int rc = yaml_load_file(path, CONFIG_FILE_MAX, root, err, errlen);
    if (rc < 0 && rc != -EFBIG && rc != -EINVAL) /* the file itself could not be read */
        set_error(err, errlen, rc, "cannot read %s: %s", path, strerror(-rc));
    return rc;
}

static int load_file(struct config *cfg, const char *path, char *err, size_t errlen)
{
    char msg[512];
    json_t *root = NULL;
    int rc = parse_file(path, &root, err, errlen);
    if (rc < 0)
        return rc;
    free(cfg->source_path);
    cfg->source_path = xstrdup(path);
    if (json_is_object(root))
        rc = apply_mapping(cfg, NULL, root, msg, sizeof(msg));
    else if (!json_is_null(root))
        rc = set_error(msg, sizeof(msg), EINVAL, "the top level must be a mapping, got %s",
                       json_kind(root));
    wipe_parsed_secret(root);
    json_decref(root);
    if (rc < 0)
        return set_error(err, errlen, rc, "%s: %s", path, msg);
    return 0;
}

int config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
    const char *env_path = getenv("ATTUNE_CONFIG");
    if (!path && env_path && env_path[0])
        path = env_path;
    if (!path && access("config.yaml", F_OK) == 0)
        path = "config.yaml";
    if (path) {
        int rc = load_file(cfg, path, err, errlen);
        if (rc < 0)
            return rc;
    }
    return config_apply_environment(cfg, err, errlen);
}

/* Validation */

static int check_scheme(const char *url, const struct key_def *def, const char *a, const char *b,
                        char *err, size_t errlen)
{
    /* The URL itself is not quoted back: it may hold a password. */
    if (!url || !(str_starts_with(url, a) || str_starts_with(url, b)))
        return set_error(err, errlen, EINVAL, "%s: must start with %s or %s", def->name, a, b);
    return 0;
}

int config_check_database_schema(const struct config *cfg, const struct key_def *def, char *err,
                                 size_t errlen)
{
    const char *s = cfg->database_schema;
    size_t len = strlen(s);
    static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";
    if (len == 0 || len > 63 || strspn(s, allowed) != len)
        return set_error(err, errlen, EINVAL,
                         "%s: must be 1 to 63 letters, digits or '_' (got \"%s\")", def->name, s);
    return 0;
}

int config_check_database_url(const struct config *cfg, const struct key_def *def, char *err,
                              size_t errlen)
{
    return check_scheme(cfg->database_url, def, "postgresql://", "postgres://", err, errlen);
}

int config_check_mq_url(const struct config *cfg, const struct key_def *def, char *err,
                        size_t errlen)
{
    /* amqp:// only: the worker does not speak TLS to the broker, and must not
     * pretend to. */
    if (str_starts_with(cfg->message_queue_url, "amqps://"))
        return set_error(err, errlen, EINVAL,
                         "%s: amqps:// (TLS) is not supported; use amqp:// (put the broker on a "
                         "private network or a TLS tunnel)",
                         def->name);
    return check_scheme(cfg->message_queue_url, def, "amqp://", "amqp://", err, errlen);
}

int config_check_api_url(const struct config *cfg, const struct key_def *def, char *err,
                         size_t errlen)
{
    const char *url = cfg->api_url;
    if (!str_starts_with(url, "http://") && !str_starts_with(url, "https://"))
        return set_error(err, errlen, EINVAL,
                         "%s (or ATTUNE_API_URL): must start with http:// or https://", def->name);
    return 0;
}

int config_check_worker_name(const struct config *cfg, const struct key_def *def, char *err,
                             size_t errlen)
{
    const char *name = cfg->worker_name;
    size_t len = strlen(name);
    if (len > WORKER_NAME_MAX)
        return set_error(err, errlen, EINVAL, "%s: must be at most %d characters (got %zu)",
                         def->name, WORKER_NAME_MAX, len);
    size_t bad = strspn(name, ASCII_ALNUM "._-");
    if (bad < len)
        return set_error(err, errlen, EINVAL,
                         "%s: may hold only letters, digits, '.', '_' and '-' (bad character "
                         "at position %zu)",
                         def->name, bad + 1);
    return 0;
}

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

static const char *const worker_types[] = {"local", "remote", "container"};

int config_check_worker_type(const struct config *cfg, const struct key_def *def, char *err,
                             size_t errlen)
{
    if (!in_list(cfg->worker_type, worker_types, ARRAY_SIZE(worker_types)))
        return set_error(err, errlen, EINVAL,
                         "%s: must be one of local, remote, container (got \"%.*s\")", def->name,
                         ECHO_MAX, cfg->worker_type);
    return 0;
}

static const char *const retention_policies[] = {"versions", "days", "hours", "minutes"};

int config_check_log_retention_policy(const struct config *cfg, const struct key_def *def,
                                      char *err, size_t errlen)
{
    if (!in_list(cfg->log_retention_policy, retention_policies, ARRAY_SIZE(retention_policies)))
        return set_error(err, errlen, EINVAL,
                         "%s: must be one of versions, days, hours, minutes (got \"%.*s\")",
                         def->name, ECHO_MAX, cfg->log_retention_policy);
    return 0;
}

/* Which names are runtimes is the runtime registry's to say: the programs
 * check them once the configuration is loaded (registry_check_config). */
int config_check_runtimes(const struct config *cfg, const struct key_def *def, char *err,
                          size_t errlen)
{
    if (!cfg->runtimes)
        return 0;
    if (!cfg->runtimes[0])
        return set_error(err, errlen, EINVAL, "%s: must name at least one runtime, or be all",
                         def->name);
    return 0;
}

static bool is_env_name(const char *s)
{
    return s[0] && strchr(ASCII_LETTERS "_", s[0]) && strspn(s, ASCII_ALNUM "_") == strlen(s);
}

int config_check_action_env(const struct config *cfg, const struct key_def *def, char *err,
                            size_t errlen)
{
    for (size_t i = 0; i < cfg->n_action_env; i++) {
        const char *name = cfg->action_env[i].name, *why;
        if (!is_env_name(name))
            return set_error(err, errlen, EINVAL,
                             "%s: \"%.*s\" is not a valid environment variable name", def->name,
                             ECHO_MAX, name);
        /* An operator who set it expects it to apply: refused, not dropped. */
        if ((why = env_policy_denied(name)))
            return set_error(err, errlen, EINVAL,
                             "%s: %s is not allowed: %s (see docs/actions.md, \"Variables that "
                             "are never passed\")",
                             def->name, name, why);
    }
    return 0;
}

static int check_kind(const struct config *cfg, const struct key_def *def, char *err, size_t errlen)
{
    int64_t v;
    const char *s;
    switch (def->kind) {
    case KEY_INT:
        v = *(const int *)config_field_c(cfg, def);
        return v < def->min || v > def->max ? config_range_error(err, errlen, def, v) : 0;
    case KEY_SIZE:
        v = *(const int64_t *)config_field_c(cfg, def);
        return v < def->min || v > def->max ? config_range_error(err, errlen, def, v) : 0;
    case KEY_STRING:
    case KEY_URL:
        s = *(char *const *)config_field_c(cfg, def);
        if (s && def->kind == KEY_STRING && def->min == KEY_MAY_BE_EMPTY)
            return 0;
        return !s || !s[0] ? set_error(err, errlen, EINVAL, "%s: must not be empty", def->name) : 0;
    case KEY_SECRET:
        s = *(char *const *)config_field_c(cfg, def);
        if (s && strlen(s) < (size_t)def->min)
            return set_error(err, errlen, EINVAL,
                             "%s: must be at least %" PRId64 " characters (got %zu)", def->name,
                             def->min, strlen(s));
        return 0;
    default:
        return 0;
    }
}

int config_validate(const struct config *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; i < config_n_keys; i++) {
        const struct key_def *def = &config_keys[i];
        int rc = check_kind(cfg, def, err, errlen);
        if (rc == 0 && def->check)
            rc = def->check(cfg, def, err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int config_load_for_program(struct config *cfg, const char *program, const char *path,
                            const char *worker_name)
{
    char err[1024];
    config_init_defaults(cfg);
    int rc = config_load(cfg, path, err, sizeof(err));
    config_scrub_environment();
    if (rc == 0 && worker_name)
        rc = config_set(cfg, "worker.name", worker_name, err, sizeof(err));
    if (rc == 0)
        rc = config_validate(cfg, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "%s: configuration error: %s\n", program, err);
        return CONFIG_EXIT_STATUS;
    }
    log_setup(cfg->log_level, cfg->log_format);
    return 0;
}
