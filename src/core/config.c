/* The worker's configuration (CONTRACT.md section 8). One table of keys drives
 * setting a key from text (file, environment, command line), validation and
 * the masked print, so a key added to the table is handled everywhere. */
#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/json.h"
#include "core/util.h"
#include "core/yaml.h"

#define CONFIG_FILE_MAX (1024 * 1024)
#define CONFIG_MASK "********"
#define CONFIG_ENV_PREFIX "ATTUNE__"
#define WORKER_ENV_PREFIX "worker.env."
#define KIB INT64_C(1024)
#define MIB (KIB * 1024)
#define GIB (MIB * 1024)
#define WORKER_NAME_MAX 128
/* Spelled out so that no locale widens the character classes. */
#define ASCII_LETTERS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#define ASCII_ALNUM ASCII_LETTERS "0123456789"
#define ENCRYPTION_KEY_MIN 32
/* Bounds what an error message quotes back from a bad value. */
#define ECHO_MAX 80

enum key_kind {
    KEY_STRING,
    KEY_URL,    /* a string whose password is masked when printed */
    KEY_SECRET, /* optional; never printed or quoted back */
    KEY_INT,
    KEY_SIZE, /* bytes, with an optional K, M or G suffix */
    KEY_RUNTIMES,
    KEY_ENV,
    KEY_LOG_LEVEL,
    KEY_LOG_FORMAT,
};

struct key_def {
    const char *name; /* dotted, as in the file: "worker.task_timeout" */
    enum key_kind kind;
    size_t offset;
    int64_t min, max; /* KEY_INT and KEY_SIZE */
    /* checks beyond what the kind implies */
    int (*check)(const struct config *cfg, const struct key_def *def, char *err, size_t errlen);
};

static int check_database_url(const struct config *cfg, const struct key_def *def, char *err,
                              size_t errlen);
static int check_mq_url(const struct config *cfg, const struct key_def *def, char *err,
                        size_t errlen);
static int check_worker_name(const struct config *cfg, const struct key_def *def, char *err,
                             size_t errlen);
static int check_worker_type(const struct config *cfg, const struct key_def *def, char *err,
                             size_t errlen);
static int check_runtimes(const struct config *cfg, const struct key_def *def, char *err,
                          size_t errlen);
static int check_action_env(const struct config *cfg, const struct key_def *def, char *err,
                            size_t errlen);

#define FIELD(f) offsetof(struct config, f)

/* Order here is the order of the printed configuration. */
static const struct key_def config_keys[] = {
    {"database.url", KEY_URL, FIELD(database_url), 0, 0, check_database_url},
    {"database.connect_timeout", KEY_INT, FIELD(database_connect_timeout), 1, 600, NULL},
    {"message_queue.url", KEY_URL, FIELD(message_queue_url), 0, 0, check_mq_url},
    {"security.encryption_key", KEY_SECRET, FIELD(encryption_key), 0, 0, NULL},
    {"packs_base_dir", KEY_STRING, FIELD(packs_base_dir), 0, 0, NULL},
    {"worker.name", KEY_STRING, FIELD(worker_name), 0, 0, check_worker_name},
    {"worker.worker_type", KEY_STRING, FIELD(worker_type), 0, 0, check_worker_type},
    {"worker.max_concurrent_tasks", KEY_INT, FIELD(max_concurrent_tasks), 1, 1000, NULL},
    {"worker.heartbeat_interval", KEY_INT, FIELD(heartbeat_interval), 1, 3600, NULL},
    {"worker.task_timeout", KEY_INT, FIELD(task_timeout), 1, 604800, NULL},
    {"worker.shutdown_timeout", KEY_INT, FIELD(shutdown_timeout), 0, 86400, NULL},
    {"worker.max_stdout_bytes", KEY_SIZE, FIELD(max_stdout_bytes), KIB, GIB, NULL},
    {"worker.max_stderr_bytes", KEY_SIZE, FIELD(max_stderr_bytes), KIB, GIB, NULL},
    {"worker.artifacts_dir", KEY_STRING, FIELD(artifacts_dir), 0, 0, NULL},
    {"worker.artifact_retention_days", KEY_INT, FIELD(artifact_retention_days), 0, 3650, NULL},
    {"worker.runtimes", KEY_RUNTIMES, FIELD(runtimes), 0, 0, check_runtimes},
    {"worker.env", KEY_ENV, 0, 0, 0, check_action_env},
    {"log.level", KEY_LOG_LEVEL, FIELD(log_level), 0, 0, NULL},
    {"log.format", KEY_LOG_FORMAT, FIELD(log_format), 0, 0, NULL},
};

static const char *const known_runtimes[] = {"shell", "python", "node", "local"};
static const char *const worker_types[] = {"local", "remote", "container"};

/* Field access through the table's offsets. */

static void *field(struct config *cfg, const struct key_def *def)
{
    return (char *)cfg + def->offset;
}

static const void *field_c(const struct config *cfg, const struct key_def *def)
{
    return (const char *)cfg + def->offset;
}

static const struct key_def *key_find(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(config_keys); i++)
        if (strcmp(config_keys[i].name, name) == 0)
            return &config_keys[i];
    return NULL;
}

/* A section is the part before the dot of some key ("worker"). */
static bool is_section(const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < ARRAY_SIZE(config_keys); i++)
        if (strncmp(config_keys[i].name, name, len) == 0 && config_keys[i].name[len] == '.')
            return true;
    return false;
}

static const char *kind_expected(enum key_kind kind)
{
    switch (kind) {
    case KEY_INT:
        return "an integer";
    case KEY_SIZE:
        return "a size in bytes (optionally with a K, M or G suffix)";
    case KEY_RUNTIMES:
        return "a list of runtime names or a comma-separated string";
    case KEY_ENV:
        return "a mapping of variable names to values";
    case KEY_LOG_LEVEL:
        return "one of error, warn, info, debug";
    case KEY_LOG_FORMAT:
        return "text or json";
    default:
        return "a string";
    }
}

static int unknown_key(char *err, size_t errlen, const char *name)
{
    return set_error(err, errlen, EINVAL, "unknown key '%s'", name);
}

static int type_error(char *err, size_t errlen, const struct key_def *def, const char *value)
{
    return set_error(err, errlen, EINVAL, "%s: expected %s, got \"%.*s%s\"", def->name,
                     kind_expected(def->kind), ECHO_MAX, value,
                     strlen(value) > ECHO_MAX ? "..." : "");
}

static int range_error(char *err, size_t errlen, const struct key_def *def, int64_t v)
{
    return set_error(err, errlen, EINVAL,
                     "%s: must be between %" PRId64 " and %" PRId64 " (got %" PRId64 ")", def->name,
                     def->min, def->max, v);
}

/* Freeing */

static void free_secret(char *s)
{
    if (s) {
        secure_zero(s, strlen(s));
        free(s);
    }
}

static void free_runtimes(char **v)
{
    for (char **p = v; p && *p; p++)
        free(*p);
    free(v);
}

static void free_action_env(struct config *cfg)
{
    for (size_t i = 0; i < cfg->n_action_env; i++) {
        free(cfg->action_env[i].name);
        free(cfg->action_env[i].value);
    }
    free(cfg->action_env);
    cfg->action_env = NULL;
    cfg->n_action_env = 0;
}

void config_free(struct config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < ARRAY_SIZE(config_keys); i++) {
        const struct key_def *def = &config_keys[i];
        if (def->kind == KEY_STRING || def->kind == KEY_URL)
            free(*(char **)field(cfg, def));
        else if (def->kind == KEY_SECRET)
            free_secret(*(char **)field(cfg, def));
    }
    free_runtimes(cfg->runtimes);
    free_action_env(cfg);
    free(cfg->source_path);
    memset(cfg, 0, sizeof(*cfg));
}

/* Defaults */

static char *default_worker_name(void)
{
    char host[256];
    if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    return xasprintf("worker-%s", host);
}

void config_init_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->database_url = xstrdup("postgresql://postgres:postgres@localhost:5432/attune");
    cfg->database_connect_timeout = 10;
    cfg->message_queue_url = xstrdup("amqp://guest:guest@localhost:5672/%2f");
    cfg->packs_base_dir = xstrdup("/opt/attune/packs");
    cfg->worker_name = default_worker_name();
    cfg->worker_type = xstrdup("local");
    cfg->max_concurrent_tasks = 10;
    cfg->heartbeat_interval = 30;
    cfg->task_timeout = 300;
    cfg->shutdown_timeout = 30;
    cfg->max_stdout_bytes = 10 * MIB;
    cfg->max_stderr_bytes = 10 * MIB;
    cfg->artifacts_dir = xstrdup("/tmp/attune/artifacts");
    cfg->artifact_retention_days = 7;
    cfg->log_level = LOG_LEVEL_INFO;
    cfg->log_format = LOG_FORMAT_TEXT;
}

/* Setting one key from text */

static bool parse_size(const char *s, int64_t *out)
{
    size_t len = strlen(s);
    int64_t mult = 1;
    switch (len ? toupper((unsigned char)s[len - 1]) : 0) {
    case 'K':
        mult = KIB;
        break;
    case 'M':
        mult = MIB;
        break;
    case 'G':
        mult = GIB;
        break;
    }
    char *digits = xstrndup(s, mult > 1 ? len - 1 : len);
    int64_t v;
    bool ok = parse_int64(digits, &v) && v <= INT64_MAX / mult && v >= INT64_MIN / mult;
    free(digits);
    if (ok)
        *out = v * mult;
    return ok;
}

static int set_int(struct config *cfg, const struct key_def *def, const char *value, char *err,
                   size_t errlen)
{
    int64_t v;
    if (!parse_int64(value, &v))
        return type_error(err, errlen, def, value);
    if (v < INT_MIN || v > INT_MAX)
        return range_error(err, errlen, def, v);
    *(int *)field(cfg, def) = (int)v;
    return 0;
}

static int set_size(struct config *cfg, const struct key_def *def, const char *value, char *err,
                    size_t errlen)
{
    int64_t v;
    if (!parse_size(value, &v))
        return type_error(err, errlen, def, value);
    *(int64_t *)field(cfg, def) = v;
    return 0;
}

static void set_runtimes(struct config *cfg, char **items)
{
    free_runtimes(cfg->runtimes);
    cfg->runtimes = items;
}

/* "shell, python" is a list; "" and "all" restore the default (every runtime). */
static void set_runtimes_text(struct config *cfg, const char *value)
{
    if (value[0] == '\0' || strcasecmp(value, "all") == 0) {
        set_runtimes(cfg, NULL);
        return;
    }
    struct strv v;
    strv_init(&v);
    for (const char *p = value; *p;) {
        size_t n = strcspn(p, ",");
        const char *start = p, *end = p + n;
        while (start < end && isspace((unsigned char)*start))
            start++;
        while (end > start && isspace((unsigned char)end[-1]))
            end--;
        if (end > start)
            strv_push_owned(&v, xstrndup(start, (size_t)(end - start)));
        p += n + (p[n] == ',');
    }
    set_runtimes(cfg, v.items);
}

static void action_env_set(struct config *cfg, const char *name, const char *value)
{
    for (size_t i = 0; i < cfg->n_action_env; i++) {
        if (strcmp(cfg->action_env[i].name, name) == 0) {
            free(cfg->action_env[i].value);
            cfg->action_env[i].value = xstrdup(value);
            return;
        }
    }
    cfg->action_env = xrealloc(cfg->action_env, (cfg->n_action_env + 1) * sizeof(*cfg->action_env));
    cfg->action_env[cfg->n_action_env].name = xstrdup(name);
    cfg->action_env[cfg->n_action_env].value = xstrdup(value);
    cfg->n_action_env++;
}

static int set_log_level(struct config *cfg, const struct key_def *def, const char *value,
                         char *err, size_t errlen)
{
    enum log_level level;
    if (!log_level_parse(value, &level))
        return type_error(err, errlen, def, value);
    cfg->log_level = level;
    return 0;
}

static int set_log_format(struct config *cfg, const struct key_def *def, const char *value,
                          char *err, size_t errlen)
{
    enum log_format format;
    if (!log_format_parse(value, &format))
        return type_error(err, errlen, def, value);
    cfg->log_format = format;
    return 0;
}

int config_set(struct config *cfg, const char *dotted_key, const char *value, char *err,
               size_t errlen)
{
    if (!value)
        value = "";
    if (str_starts_with(dotted_key, WORKER_ENV_PREFIX)) {
        action_env_set(cfg, dotted_key + strlen(WORKER_ENV_PREFIX), value);
        return 0;
    }
    const struct key_def *def = key_find(dotted_key);
    if (!def)
        return unknown_key(err, errlen, dotted_key);
    char **str = field(cfg, def);
    switch (def->kind) {
    case KEY_STRING:
    case KEY_URL:
        free(*str);
        *str = xstrdup(value);
        return 0;
    case KEY_SECRET:
        free_secret(*str);
        *str = value[0] ? xstrdup(value) : NULL;
        return 0;
    case KEY_INT:
        return set_int(cfg, def, value, err, errlen);
    case KEY_SIZE:
        return set_size(cfg, def, value, err, errlen);
    case KEY_RUNTIMES:
        set_runtimes_text(cfg, value);
        return 0;
    case KEY_ENV:
        return set_error(err, errlen, EINVAL, "%s: set one variable as %s.NAME", def->name,
                         def->name);
    case KEY_LOG_LEVEL:
        return set_log_level(cfg, def, value, err, errlen);
    case KEY_LOG_FORMAT:
        return set_log_format(cfg, def, value, err, errlen);
    }
    return unknown_key(err, errlen, dotted_key);
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
                         kind_expected(def->kind), json_kind(map));
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)map, name, v)
    {
        char *text = scalar_text(v);
        if (!text)
            return set_error(err, errlen, EINVAL, "%s.%s: expected a string, got %s", def->name,
                             name, json_kind(v));
        action_env_set(cfg, name, text);
        free(text);
    }
    return 0;
}

static int apply_runtimes_list(struct config *cfg, const struct key_def *def, const json_t *list,
                               char *err, size_t errlen)
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
    set_runtimes(cfg, v.items);
    return 0;
}

static int apply_value(struct config *cfg, const char *name, const json_t *v, char *err,
                       size_t errlen)
{
    const struct key_def *def = key_find(name);
    if (!def)
        return unknown_key(err, errlen, name);
    if (def->kind == KEY_ENV)
        return apply_action_env(cfg, def, v, err, errlen);
    if (def->kind == KEY_RUNTIMES && json_is_array(v))
        return apply_runtimes_list(cfg, def, v, err, errlen);
    char *text = scalar_text(v);
    if (!text)
        return set_error(err, errlen, EINVAL, "%s: expected %s, got %s", def->name,
                         kind_expected(def->kind), json_kind(v));
    int rc = config_set(cfg, name, text, err, errlen);
    free_secret(text);
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
            rc = unknown_key(err, errlen, name);
        else if (!section && is_section(key))
            rc = apply_section(cfg, key, v, err, errlen);
        else
            rc = apply_value(cfg, name, v, err, errlen);
        free(name);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The text may hold the encryption key; the parsed copy is wiped too. */
static void wipe_parsed_secret(json_t *root)
{
    json_t *key = json_object_get(json_object_get(root, "security"), "encryption_key");
    if (json_is_string(key))
        secure_zero((char *)json_string_value(key), json_string_length(key));
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

/* The environment */

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
    if (!key_find(key) && !str_starts_with(key, WORKER_ENV_PREFIX)) {
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
    return apply_environment(cfg, err, errlen);
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

static int check_database_url(const struct config *cfg, const struct key_def *def, char *err,
                              size_t errlen)
{
    return check_scheme(cfg->database_url, def, "postgresql://", "postgres://", err, errlen);
}

static int check_mq_url(const struct config *cfg, const struct key_def *def, char *err,
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

static int check_worker_name(const struct config *cfg, const struct key_def *def, char *err,
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

static int check_worker_type(const struct config *cfg, const struct key_def *def, char *err,
                             size_t errlen)
{
    if (!in_list(cfg->worker_type, worker_types, ARRAY_SIZE(worker_types)))
        return set_error(err, errlen, EINVAL,
                         "%s: must be one of local, remote, container (got \"%.*s\")", def->name,
                         ECHO_MAX, cfg->worker_type);
    return 0;
}

static int check_runtimes(const struct config *cfg, const struct key_def *def, char *err,
                          size_t errlen)
{
    if (!cfg->runtimes)
        return 0;
    if (!cfg->runtimes[0])
        return set_error(err, errlen, EINVAL, "%s: must name at least one runtime, or be all",
                         def->name);
    for (char **r = cfg->runtimes; *r; r++)
        if (!in_list(*r, known_runtimes, ARRAY_SIZE(known_runtimes)))
            return set_error(err, errlen, EINVAL,
                             "%s: unknown runtime \"%.*s\" (known: shell, python, node, local)",
                             def->name, ECHO_MAX, *r);
    return 0;
}

static bool is_env_name(const char *s)
{
    return s[0] && strchr(ASCII_LETTERS "_", s[0]) && strspn(s, ASCII_ALNUM "_") == strlen(s);
}

static int check_action_env(const struct config *cfg, const struct key_def *def, char *err,
                            size_t errlen)
{
    for (size_t i = 0; i < cfg->n_action_env; i++)
        if (!is_env_name(cfg->action_env[i].name))
            return set_error(err, errlen, EINVAL,
                             "%s: \"%.*s\" is not a valid environment variable name", def->name,
                             ECHO_MAX, cfg->action_env[i].name);
    return 0;
}

static int check_kind(const struct config *cfg, const struct key_def *def, char *err, size_t errlen)
{
    int64_t v;
    const char *s;
    switch (def->kind) {
    case KEY_INT:
        v = *(const int *)field_c(cfg, def);
        return v < def->min || v > def->max ? range_error(err, errlen, def, v) : 0;
    case KEY_SIZE:
        v = *(const int64_t *)field_c(cfg, def);
        return v < def->min || v > def->max ? range_error(err, errlen, def, v) : 0;
    case KEY_STRING:
    case KEY_URL:
        s = *(char *const *)field_c(cfg, def);
        return !s || !s[0] ? set_error(err, errlen, EINVAL, "%s: must not be empty", def->name) : 0;
    case KEY_SECRET:
        s = *(char *const *)field_c(cfg, def);
        if (s && strlen(s) < ENCRYPTION_KEY_MIN)
            return set_error(err, errlen, EINVAL, "%s: must be at least %d characters (got %zu)",
                             def->name, ENCRYPTION_KEY_MIN, strlen(s));
        return 0;
    default:
        return 0;
    }
}

int config_validate(const struct config *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; i < ARRAY_SIZE(config_keys); i++) {
        const struct key_def *def = &config_keys[i];
        int rc = check_kind(cfg, def, err, errlen);
        if (rc == 0 && def->check)
            rc = def->check(cfg, def, err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The masked print */

static json_t *json_text(const char *s)
{
    struct strbuf clean;
    strbuf_init(&clean);
    utf8_sanitize(s, strlen(s), &clean);
    json_t *v = json_stringn(clean.data, clean.len);
    strbuf_free(&clean);
    return v;
}

/* Replaces the value of a "password=" query parameter (libpq accepts one). */
static void mask_query_password(const char *url, const char *from, struct strbuf *out)
{
    for (const char *p = from; *p;) {
        if (p > url && (p[-1] == '?' || p[-1] == '&') && strncasecmp(p, "password=", 9) == 0) {
            strbuf_puts(out, "password=" CONFIG_MASK);
            p += strcspn(p, "&");
            continue;
        }
        strbuf_putc(out, *p++);
    }
}

/* The password is taken to run from the first ':' after the scheme to the
 * last '@', so that an unescaped '/', '?' or '@' in it is still hidden; in
 * odd URLs this hides more than the password, never less. */
static char *url_masked(const char *url)
{
    struct strbuf out;
    strbuf_init(&out);
    const char *scheme_end = strstr(url, "://");
    const char *auth = scheme_end ? scheme_end + 3 : url;
    const char *at = strrchr(auth, '@');
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    const char *rest = url;
    if (colon) {
        strbuf_append(&out, url, (size_t)(colon + 1 - url));
        strbuf_puts(&out, CONFIG_MASK);
        rest = at;
    }
    mask_query_password(url, rest, &out);
    return strbuf_detach(&out, NULL);
}

static json_t *runtimes_json(char *const *runtimes)
{
    if (!runtimes)
        return json_string("all");
    json_t *list = json_array();
    for (char *const *r = runtimes; *r; r++)
        json_array_append_new(list, json_text(*r));
    return list;
}

static json_t *action_env_json(const struct config *cfg)
{
    json_t *map = json_object();
    for (size_t i = 0; i < cfg->n_action_env; i++) {
        struct strbuf name;
        strbuf_init(&name);
        utf8_sanitize(cfg->action_env[i].name, strlen(cfg->action_env[i].name), &name);
        json_object_set_new(map, name.data, json_text(cfg->action_env[i].value));
        strbuf_free(&name);
    }
    return map;
}

static json_t *key_json(const struct config *cfg, const struct key_def *def)
{
    const char *s = NULL;
    if (def->kind == KEY_STRING || def->kind == KEY_URL || def->kind == KEY_SECRET)
        s = *(char *const *)field_c(cfg, def);
    switch (def->kind) {
    case KEY_STRING:
        return json_text(s ? s : "");
    case KEY_URL: {
        char *masked = url_masked(s ? s : "");
        json_t *v = json_text(masked);
        free(masked);
        return v;
    }
    case KEY_SECRET:
        return json_string(s ? CONFIG_MASK : "(unset)");
    case KEY_INT:
        return json_integer(*(const int *)field_c(cfg, def));
    case KEY_SIZE:
        return json_integer(*(const int64_t *)field_c(cfg, def));
    case KEY_RUNTIMES:
        return runtimes_json(cfg->runtimes);
    case KEY_ENV:
        return action_env_json(cfg);
    case KEY_LOG_LEVEL:
        return json_string(log_level_name(cfg->log_level));
    case KEY_LOG_FORMAT:
        return json_string(cfg->log_format == LOG_FORMAT_JSON ? "json" : "text");
    }
    return json_null();
}

/* Builds the same nesting as the file: "worker.name" under "worker". */
static void put_key(json_t *root, const char *name, json_t *value)
{
    const char *dot = strchr(name, '.');
    if (!dot) {
        json_object_set_new(root, name, value);
        return;
    }
    char *section = xstrndup(name, (size_t)(dot - name));
    json_t *obj = json_object_get(root, section);
    if (!obj) {
        obj = json_object();
        json_object_set_new(root, section, obj);
    }
    json_object_set_new(obj, dot + 1, value);
    free(section);
}

void config_print_masked(const struct config *cfg, FILE *out)
{
    if (cfg->source_path)
        fprintf(out, "# configuration file: %s\n", cfg->source_path);
    else
        fputs("# no configuration file was read (defaults and environment only)\n", out);
    json_t *root = json_object();
    for (size_t i = 0; i < ARRAY_SIZE(config_keys); i++)
        put_key(root, config_keys[i].name, key_json(cfg, &config_keys[i]));
    struct strbuf yaml;
    strbuf_init(&yaml);
    if (yaml_emit(root, &yaml) == 0)
        fwrite(yaml.data, 1, yaml.len, out);
    strbuf_free(&yaml);
    json_decref(root);
}

int config_load_for_program(struct config *cfg, const char *program, const char *path,
                            const char *worker_name)
{
    char err[1024];
    config_init_defaults(cfg);
    int rc = config_load(cfg, path, err, sizeof(err));
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
