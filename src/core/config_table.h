/* What the configuration's sources share and nothing outside them needs: the
 * table of keys, and the helpers that read and write a key through it. */
#ifndef ATTUNE_CORE_CONFIG_TABLE_H
#define ATTUNE_CORE_CONFIG_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

#define WORKER_ENV_PREFIX "worker.env."
/* Bounds what an error message quotes back from a bad value. */
#define ECHO_MAX 80
/* A KEY_STRING's min: "" is allowed (it turns something off). */
#define KEY_MAY_BE_EMPTY 1

enum key_kind {
    KEY_STRING,
    KEY_URL,    /* a string whose password is masked when printed */
    KEY_SECRET, /* optional; never printed or quoted back */
    KEY_INT,
    KEY_BOOL, /* true or false */
    KEY_SIZE, /* bytes, with an optional K, M or G suffix */
    KEY_RUNTIMES,
    KEY_LIST, /* a NULL-terminated char ** (NULL: empty): a YAML list or "a, b" */
    KEY_ENV,
    KEY_LOG_LEVEL,
    KEY_LOG_FORMAT,
};

struct key_def {
    const char *name; /* dotted, as in the file: "worker.task_timeout" */
    enum key_kind kind;
    size_t offset;
    int64_t min, max; /* KEY_INT and KEY_SIZE; min: KEY_SECRET's shortest length */
    /* checks beyond what the kind implies */
    int (*check)(const struct config *cfg, const struct key_def *def, char *err, size_t errlen);
};

/* Every key, in the order of the printed configuration (config.c). */
extern const struct key_def config_keys[];
extern const size_t config_n_keys;

/* Field access through the table's offsets. */

static inline void *config_field(struct config *cfg, const struct key_def *def)
{
    return (char *)cfg + def->offset;
}

static inline const void *config_field_c(const struct config *cfg, const struct key_def *def)
{
    return (const char *)cfg + def->offset;
}

const struct key_def *config_key_find(const char *name);
/* What a key of this kind takes, for "expected X" messages. */
const char *config_kind_expected(enum key_kind kind);
int config_unknown_key(char *err, size_t errlen, const char *name);
int config_range_error(char *err, size_t errlen, const struct key_def *def, int64_t v);

void config_free_secret(char *s);
/* Takes ownership of items (NULL-terminated; NULL: every runtime). */
void config_set_runtimes(struct config *cfg, char **items);
/* Replaces the KEY_LIST at def with items (NULL-terminated, owned; NULL: empty). */
void config_set_list(struct config *cfg, const struct key_def *def, char **items);
/* Adds or replaces one worker.env variable. */
void config_action_env_set(struct config *cfg, const char *name, const char *value);

/* Applies the ATTUNE__ environment overrides, then ATTUNE_API_URL
 * (config_env.c). */
int config_apply_environment(struct config *cfg, char *err, size_t errlen);

/* The checks beyond what a key's kind implies (config_load.c). */
int config_check_database_schema(const struct config *cfg, const struct key_def *def, char *err,
                                 size_t errlen);
int config_check_database_url(const struct config *cfg, const struct key_def *def, char *err,
                              size_t errlen);
int config_check_mq_url(const struct config *cfg, const struct key_def *def, char *err,
                        size_t errlen);
int config_check_api_url(const struct config *cfg, const struct key_def *def, char *err,
                         size_t errlen);
int config_check_worker_name(const struct config *cfg, const struct key_def *def, char *err,
                             size_t errlen);
int config_check_worker_type(const struct config *cfg, const struct key_def *def, char *err,
                             size_t errlen);
int config_check_runtimes(const struct config *cfg, const struct key_def *def, char *err,
                          size_t errlen);
int config_check_log_retention_policy(const struct config *cfg, const struct key_def *def,
                                      char *err, size_t errlen);
int config_check_action_env(const struct config *cfg, const struct key_def *def, char *err,
                            size_t errlen);
int config_check_sandbox_mode(const struct config *cfg, const struct key_def *def, char *err,
                              size_t errlen);
int config_check_uid_range(const struct config *cfg, const struct key_def *def, char *err,
                           size_t errlen);
int config_check_memory_max(const struct config *cfg, const struct key_def *def, char *err,
                            size_t errlen);
int config_check_tasks_max(const struct config *cfg, const struct key_def *def, char *err,
                           size_t errlen);
int config_check_cpu_max(const struct config *cfg, const struct key_def *def, char *err,
                         size_t errlen);
int config_check_observability_listen(const struct config *cfg, const struct key_def *def,
                                      char *err, size_t errlen);

#endif
