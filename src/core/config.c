/* The worker's configuration (CONTRACT.md section 8): the table of keys, the
 * defaults, freeing, and setting one key from text. One table of keys drives
 * setting, validation (config_load.c) and the masked print (config_print.c),
 * so a key added to the table is handled everywhere. */
#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/config_table.h"
#include "core/secmem.h"
#include "core/util.h"

#define KIB INT64_C(1024)
#define MIB (KIB * 1024)
#define GIB (MIB * 1024)

#define FIELD(f) offsetof(struct config, f)

/* Order here is the order of the printed configuration. */
const struct key_def config_keys[] = {
    {"database.url", KEY_URL, FIELD(database_url), 0, 0, config_check_database_url},
    {"database.connect_timeout", KEY_INT, FIELD(database_connect_timeout), 1, 600, NULL},
    {"database.schema", KEY_STRING, FIELD(database_schema), 0, 0, config_check_database_schema},
    {"database.prepared_statements", KEY_BOOL, FIELD(database_prepared_statements), 0, 0, NULL},
    {"message_queue.url", KEY_URL, FIELD(message_queue_url), 0, 0, config_check_mq_url},
    /* The contract: the encryption key has at least 32 characters. Attune
     * sets no minimum for the JWT secret, and neither does the worker. */
    {"security.encryption_key", KEY_SECRET, FIELD(encryption_key), 32, 0, NULL},
    {"security.jwt_secret", KEY_SECRET, FIELD(jwt_secret), 0, 0, NULL},
    {"secrets.keystore", KEY_BOOL, FIELD(secrets_keystore), 0, 0, NULL},
    {"packs_base_dir", KEY_STRING, FIELD(packs_base_dir), 0, 0, NULL},
    {"runtime_envs_dir", KEY_STRING, FIELD(runtime_envs_dir), 0, 0, NULL},
    {"worker.name", KEY_STRING, FIELD(worker_name), 0, 0, config_check_worker_name},
    {"worker.worker_type", KEY_STRING, FIELD(worker_type), 0, 0, config_check_worker_type},
    {"worker.max_concurrent_tasks", KEY_INT, FIELD(max_concurrent_tasks), 1, 1000, NULL},
    {"worker.spare_processes", KEY_INT, FIELD(spare_processes), 0, 1000, NULL},
    {"worker.heartbeat_interval", KEY_INT, FIELD(heartbeat_interval), 1, 3600, NULL},
    {"worker.task_timeout", KEY_INT, FIELD(task_timeout), 1, 604800, NULL},
    {"worker.kill_grace_seconds", KEY_INT, FIELD(kill_grace_seconds), 1, 3600, NULL},
    {"worker.cancel_grace_seconds", KEY_INT, FIELD(cancel_grace_seconds), 1, 3600, NULL},
    {"worker.shutdown_timeout", KEY_INT, FIELD(shutdown_timeout), 0, 86400, NULL},
    {"worker.max_stdout_bytes", KEY_SIZE, FIELD(max_stdout_bytes), KIB, GIB, NULL},
    {"worker.max_stderr_bytes", KEY_SIZE, FIELD(max_stderr_bytes), KIB, GIB, NULL},
    {"worker.artifacts_dir", KEY_STRING, FIELD(artifacts_dir), 0, 0, NULL},
    {"worker.artifact_retention_days", KEY_INT, FIELD(artifact_retention_days), 0, 3650, NULL},
    {"worker.execution_log_retention_policy", KEY_STRING, FIELD(log_retention_policy), 0, 0,
     config_check_log_retention_policy},
    {"worker.execution_log_retention_limit", KEY_INT, FIELD(log_retention_limit), 1, INT_MAX, NULL},
    {"worker.api_url", KEY_URL, FIELD(api_url), 0, 0, config_check_api_url},
    {"worker.runtimes", KEY_RUNTIMES, FIELD(runtimes), 0, 0, config_check_runtimes},
    {"worker.env", KEY_ENV, 0, 0, 0, config_check_action_env},
    {"runtimes.python.fork_server", KEY_BOOL, FIELD(python_fork_server), 0, 0, NULL},
    {"runtimes.python.preload", KEY_LIST, FIELD(python_preload), 0, 0, NULL},
    {"sandbox.mode", KEY_STRING, FIELD(sandbox_mode), 0, 0, config_check_sandbox_mode},
    {"sandbox.uid_range", KEY_STRING, FIELD(sandbox_uid_range), 0, 0, config_check_uid_range},
    {"sandbox.memory_max", KEY_STRING, FIELD(sandbox_memory_max), 0, 0, config_check_memory_max},
    {"sandbox.tasks_max", KEY_STRING, FIELD(sandbox_tasks_max), 0, 0, config_check_tasks_max},
    {"sandbox.cpu_max", KEY_STRING, FIELD(sandbox_cpu_max), 0, 0, config_check_cpu_max},
    {"artifacts.log_rows", KEY_BOOL, FIELD(log_rows), 0, 0, NULL},
    {"observability.listen", KEY_STRING, FIELD(observability_listen), KEY_MAY_BE_EMPTY, 0,
     config_check_observability_listen},
    {"log.level", KEY_LOG_LEVEL, FIELD(log_level), 0, 0, NULL},
    {"log.format", KEY_LOG_FORMAT, FIELD(log_format), 0, 0, NULL},
};

const size_t config_n_keys = ARRAY_SIZE(config_keys);

const struct key_def *config_key_find(const char *name)
{
    for (size_t i = 0; i < config_n_keys; i++)
        if (strcmp(config_keys[i].name, name) == 0)
            return &config_keys[i];
    return NULL;
}

const char *config_kind_expected(enum key_kind kind)
{
    switch (kind) {
    case KEY_INT:
        return "an integer";
    case KEY_BOOL:
        return "true or false";
    case KEY_SIZE:
        return "a size in bytes (optionally with a K, M or G suffix)";
    case KEY_RUNTIMES:
        return "a list of runtime names or a comma-separated string";
    case KEY_LIST:
        return "a list of names or a comma-separated string";
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

int config_unknown_key(char *err, size_t errlen, const char *name)
{
    return set_error(err, errlen, EINVAL, "unknown key '%s'", name);
}

static int type_error(char *err, size_t errlen, const struct key_def *def, const char *value)
{
    return set_error(err, errlen, EINVAL, "%s: expected %s, got \"%.*s%s\"", def->name,
                     config_kind_expected(def->kind), ECHO_MAX, value,
                     strlen(value) > ECHO_MAX ? "..." : "");
}

int config_range_error(char *err, size_t errlen, const struct key_def *def, int64_t v)
{
    return set_error(err, errlen, EINVAL,
                     "%s: must be between %" PRId64 " and %" PRId64 " (got %" PRId64 ")", def->name,
                     def->min, def->max, v);
}

/* Freeing */

void config_free_secret(char *s)
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
    for (size_t i = 0; i < config_n_keys; i++) {
        const struct key_def *def = &config_keys[i];
        if (def->kind == KEY_STRING || def->kind == KEY_URL)
            free(*(char **)config_field(cfg, def));
        else if (def->kind == KEY_SECRET)
            secmem_free(*(char **)config_field(cfg, def));
        else if (def->kind == KEY_LIST)
            free_runtimes(*(char ***)config_field(cfg, def));
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
    cfg->database_schema = xstrdup("attune");
    cfg->database_prepared_statements = true;
    cfg->message_queue_url = xstrdup("amqp://guest:guest@localhost:5672/%2f");
    cfg->secrets_keystore = true;
    cfg->packs_base_dir = xstrdup("/opt/attune/packs");
    cfg->runtime_envs_dir = xstrdup("/opt/attune/runtime_envs");
    cfg->worker_name = default_worker_name();
    cfg->worker_type = xstrdup("local");
    cfg->max_concurrent_tasks = 10;
    cfg->spare_processes = 2;
    cfg->heartbeat_interval = 30;
    cfg->task_timeout = 300;
    cfg->kill_grace_seconds = 5;
    cfg->cancel_grace_seconds = 10;
    cfg->shutdown_timeout = 30;
    cfg->max_stdout_bytes = 10 * MIB;
    cfg->max_stderr_bytes = 10 * MIB;
    cfg->artifacts_dir = xstrdup("/var/lib/attune/artifacts");
    cfg->artifact_retention_days = 7;
    cfg->log_retention_policy = xstrdup("days");
    cfg->log_retention_limit = 7;
    cfg->log_rows = true;
    cfg->python_fork_server = true;
    cfg->api_url = xstrdup("http://127.0.0.1:8080");
    cfg->sandbox_mode = xstrdup("auto");
    cfg->sandbox_uid_range = xstrdup(CONFIG_DEFAULT_UID_RANGE);
    cfg->sandbox_memory_max = xstrdup("unlimited");
    cfg->sandbox_tasks_max = xstrdup("unlimited");
    cfg->sandbox_cpu_max = xstrdup("unlimited");
    cfg->observability_listen = xstrdup("127.0.0.1:9464");
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
        return config_range_error(err, errlen, def, v);
    *(int *)config_field(cfg, def) = (int)v;
    return 0;
}

static int set_size(struct config *cfg, const struct key_def *def, const char *value, char *err,
                    size_t errlen)
{
    int64_t v;
    if (!parse_size(value, &v))
        return type_error(err, errlen, def, value);
    *(int64_t *)config_field(cfg, def) = v;
    return 0;
}

void config_set_runtimes(struct config *cfg, char **items)
{
    free_runtimes(cfg->runtimes);
    cfg->runtimes = items;
}

void config_set_list(struct config *cfg, const struct key_def *def, char **items)
{
    char ***field = config_field(cfg, def);
    free_runtimes(*field);
    *field = items;
}

/* "a, b" as a NULL-terminated list; NULL when it names nothing. */
static char **split_list(const char *value)
{
    struct strv v;
    strv_init(&v);
    for (const char *p = value; *p;) {
        size_t n = strcspn(p, ","), len = n;
        const char *start = p;
        str_trim(&start, &len);
        if (len > 0)
            strv_push_owned(&v, xstrndup(start, len));
        p += n + (p[n] == ',');
    }
    return v.items;
}

/* "shell, python" is a list; "" and "all" restore the default (every runtime). */
static void set_runtimes_text(struct config *cfg, const char *value)
{
    bool all = value[0] == '\0' || strcasecmp(value, "all") == 0;
    config_set_runtimes(cfg, all ? NULL : split_list(value));
}

void config_action_env_set(struct config *cfg, const char *name, const char *value)
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

static int set_bool(struct config *cfg, const struct key_def *def, const char *value, char *err,
                    size_t errlen)
{
    bool *field = config_field(cfg, def);
    if (strcasecmp(value, "true") == 0)
        *field = true;
    else if (strcasecmp(value, "false") == 0)
        *field = false;
    else
        return type_error(err, errlen, def, value);
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
        config_action_env_set(cfg, dotted_key + strlen(WORKER_ENV_PREFIX), value);
        return 0;
    }
    const struct key_def *def = config_key_find(dotted_key);
    if (!def)
        return config_unknown_key(err, errlen, dotted_key);
    char **str = config_field(cfg, def);
    switch (def->kind) {
    case KEY_STRING:
    case KEY_URL:
        free(*str);
        *str = xstrdup(value);
        return 0;
    case KEY_SECRET:
        secmem_free(*str);
        *str = value[0] ? secmem_strdup(value) : NULL;
        return 0;
    case KEY_INT:
        return set_int(cfg, def, value, err, errlen);
    case KEY_BOOL:
        return set_bool(cfg, def, value, err, errlen);
    case KEY_SIZE:
        return set_size(cfg, def, value, err, errlen);
    case KEY_RUNTIMES:
        set_runtimes_text(cfg, value);
        return 0;
    case KEY_LIST:
        config_set_list(cfg, def, split_list(value));
        return 0;
    case KEY_ENV:
        return set_error(err, errlen, EINVAL, "%s: set one variable as %s.NAME", def->name,
                         def->name);
    case KEY_LOG_LEVEL:
        return set_log_level(cfg, def, value, err, errlen);
    case KEY_LOG_FORMAT:
        return set_log_format(cfg, def, value, err, errlen);
    }
    return config_unknown_key(err, errlen, dotted_key);
}
