/* The worker's configuration: defaults, then a YAML file, then
 * ATTUNE__SECTION__KEY environment variables, then command-line flags;
 * validation whose messages name the key; a printable, masked view. */
#ifndef ATTUNE_CORE_CONFIG_H
#define ATTUNE_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/log.h"

/* The uids handed to executions in sandbox uid mode unless configured. */
#define CONFIG_DEFAULT_UID_RANGE "200000-200999"

/* Exit status for a bad configuration (EX_CONFIG from sysexits.h). */
#define CONFIG_EXIT_STATUS 78

struct config_env_var {
    char *name;
    char *value;
};

struct config {
    char *source_path; /* file that was read, NULL if none */

    char *database_url;
    int database_connect_timeout; /* seconds */
    char *database_schema;        /* the schema of Attune's tables: letters, digits, '_' */
    /* Named statements, each prepared once per connection; false: every
     * statement unnamed, parsed and planned at each use. */
    bool database_prepared_statements;
    char *message_queue_url;
    /* The two secrets live in secmem (core/secmem.h): set them with config_set. */
    char *encryption_key;  /* security.encryption_key, NULL if unset */
    char *jwt_secret;      /* security.jwt_secret: signs execution tokens; NULL if unset */
    bool secrets_keystore; /* secrets.keystore: read the key table for each execution */
    char *packs_base_dir;
    /* Packs' runtime environments (virtualenvs...):
     * {runtime_envs_dir}/{pack}/{runtime}, as Attune lays them out. */
    char *runtime_envs_dir;

    char *worker_name;
    char *worker_type;
    int max_concurrent_tasks;
    /* Spare interpreter processes kept ready per runtime that has them
     * (shell, python, node), all of them at most max_concurrent_tasks; 0: none.
     * Service only. */
    int spare_processes;
    int heartbeat_interval;   /* seconds */
    int task_timeout;         /* seconds */
    int kill_grace_seconds;   /* from SIGTERM to SIGKILL of an action's group */
    int cancel_grace_seconds; /* the same, for an execution cancelled by a user */
    int shutdown_timeout;     /* seconds */
    int64_t max_stdout_bytes;
    int64_t max_stderr_bytes;
    char *artifacts_dir;
    int artifact_retention_days;
    /* Attune's retention for the log rows of an action that sets none. */
    char *log_retention_policy; /* versions, days, hours or minutes */
    int log_retention_limit;
    bool log_rows;   /* artifacts.log_rows: record stdout/stderr as Attune's artifact rows */
    char *api_url;   /* worker.api_url, or ATTUNE_API_URL: given to actions */
    char **runtimes; /* NULL-terminated; NULL means every runtime that validates */
    /* runtimes.python.fork_server: Python actions fork from a warm interpreter */
    bool python_fork_server;
    /* runtimes.python.preload: modules that interpreter imports; NULL-terminated, NULL: none */
    char **python_preload;
    /* worker.env: extra variables given to every action */
    struct config_env_var *action_env;
    size_t n_action_env;

    /* sandbox.mode: auto, uid, userns or none (config_sandbox.c) */
    char *sandbox_mode;
    /* sandbox.uid_range: "FIRST-LAST" or "FIRST+COUNT", the uids (and gids)
     * handed to executions in uid mode */
    char *sandbox_uid_range;
    /* sandbox.memory_max, tasks_max, cpu_max: per-execution limits, as
     * text ("unlimited", "256M", "20", "0.5" or "50%"); parsed by the
     * config_parse_* calls below */
    char *sandbox_memory_max;
    char *sandbox_tasks_max;
    char *sandbox_cpu_max;

    /* observability.listen: "HOST:PORT" of the HTTP endpoint, "" for none */
    char *observability_listen;

    enum log_level log_level;
    enum log_format log_format;
};

/* Fills cfg with the defaults of CONTRACT.md section 8. */
void config_init_defaults(struct config *cfg);
void config_free(struct config *cfg);

/* Loads the file (path, else $ATTUNE_CONFIG, else ./config.yaml if present;
 * path must exist when given) over the defaults, then the environment
 * overrides, then ATTUNE_API_URL (Attune's name for worker.api_url). Returns
 * 0, or a negative errno with a message naming the file, the key and the
 * problem in err. */
int config_load(struct config *cfg, const char *path, char *err, size_t errlen);

/* Removes from the environment the ATTUNE__ variables of keys that may hold a
 * secret (security.encryption_key, security.jwt_secret, the URLs, which may
 * carry passwords), overwriting their values first, so that they no longer
 * appear in /proc/PID/environ. Called once the configuration is loaded, by
 * the program that uses it; config_load itself leaves the environment alone. */
void config_scrub_environment(void);

/* Sets one key by its dotted name ("worker.max_concurrent_tasks") from text,
 * as the environment and the command line do. */
int config_set(struct config *cfg, const char *dotted_key, const char *value, char *err,
               size_t errlen);

/* Checks ranges and required values; the message names the key. */
int config_validate(const struct config *cfg, char *err, size_t errlen);

/* What every program does at start: defaults, config_load,
 * config_scrub_environment, the worker name from the command line (NULL:
 * none), config_validate, then log_setup. On a bad configuration prints
 * "PROGRAM: configuration error: ..." to stderr and returns
 * CONFIG_EXIT_STATUS; else 0. */
int config_load_for_program(struct config *cfg, const char *program, const char *path,
                            const char *worker_name);

/* The sandbox an execution runs in (docs/configuration.md, "sandbox"). */
enum sandbox_mode {
    SANDBOX_MODE_NONE,
    SANDBOX_MODE_AUTO,
    SANDBOX_MODE_UID,
    SANDBOX_MODE_USERNS,
};

/* sandbox.mode as an enum; the key was validated. */
enum sandbox_mode config_sandbox_mode(const struct config *cfg);

/* Parses a uid range ("200000-200999" or "200000+1000"); returns false when
 * the text is not one, or the range is empty or reaches uid 0 or (uid_t)-1. */
bool config_parse_uid_range(const char *text, uint32_t *first, uint32_t *count);

/* The per-execution limits (config_sandbox.c); 0 means unlimited. Each
 * returns false when the text is not a valid value of its key. */
struct config_limits {
    int64_t memory_max;   /* bytes */
    int64_t tasks_max;    /* processes and threads */
    int cpu_max_permille; /* thousandths of one CPU */
};
bool config_parse_memory_max(const char *text, int64_t *bytes);
bool config_parse_tasks_max(const char *text, int64_t *tasks);
bool config_parse_cpu_max(const char *text, int *permille);
/* All three from a validated configuration. */
void config_sandbox_limits(const struct config *cfg, struct config_limits *out);
struct sockaddr_storage;
/* Parses observability.listen: "IPV4:PORT", "[IPV6]:PORT" or "localhost:PORT"
 * (numeric, so nothing is looked up). Returns 0, or -EINVAL with a message
 * in err (config_observability.c). */
int config_parse_listen(const char *text, struct sockaddr_storage *addr, unsigned *addrlen,
                        char *err, size_t errlen);

/* Prints the effective configuration as YAML with secrets masked (the
 * encryption key, the JWT secret, passwords inside URLs). */
void config_print_masked(const struct config *cfg, FILE *out);

#endif
