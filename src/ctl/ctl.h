/* attunectl's subcommands and what they share: the parsed command line, a
 * blocking database connection, and one-line error reporting. */
#ifndef ATTUNE_CTL_CTL_H
#define ATTUNE_CTL_CTL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"
#include "core/util.h"
#include "db/schema.h"

/* Exit statuses (a bad configuration exits with CONFIG_EXIT_STATUS, 78). */
#define CTL_EXIT_OK 0
#define CTL_EXIT_FAILED 1
#define CTL_EXIT_USAGE 2

struct ctl_options {
    const char *config_path;
    const char *pack_ref;    /* key set --pack */
    const char *action_ref;  /* key set --action */
    bool encrypt;            /* key set --encrypt */
    struct strv assignments; /* run -p NAME=VALUE */
    const char *params_json; /* run --params-json */
    int timeout_seconds;     /* run --timeout, 0 if not given */
    bool wait;               /* run --wait */
    bool follow;             /* execution tail -f */
    const char *stream;      /* execution tail --stream, NULL if not given */
    char **args;             /* the words after the command ("pack load": after "load") */
    int nargs;
};

/* Prints "attunectl: <message>" on stderr; returns CTL_EXIT_FAILED. */
int ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same, returning CTL_EXIT_USAGE. */
int ctl_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ctl_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Connects to database.url (with database.connect_timeout); prints why and
 * returns NULL on failure. */
PGconn *ctl_db_connect(const struct config *cfg);

/* Runs one parameterized statement (values are text, NULL is SQL NULL).
 * Returns the result when it succeeded; otherwise prints
 * "attunectl: <what>: <server message>" and returns NULL. */
/* Runs one parameterized statement (written for the default schema) and
 * returns libpq's result as it is, errors included. */
PGresult *ctl_query_quiet(PGconn *db, const char *sql, int nparams, const char *const *values);
PGresult *ctl_query(PGconn *db, const char *what, const char *sql, int nparams,
                    const char *const *values);
/* ctl_query for statements whose result is not needed; returns 0 or -1. */
int ctl_exec(PGconn *db, const char *what, const char *sql, int nparams, const char *const *values);

/* The first line of the connection's last error message. */
const char *ctl_db_message(PGconn *db, const PGresult *res, char *buf, size_t buflen);

/* One message for ctl_publish. */
struct ctl_message {
    const char *exchange;
    const char *routing_key;
    const char *type; /* the envelope's message_type, also the AMQP type property */
    const char *message_id;
    const char *correlation_id;
    const char *body;
};

/* Publishes m (persistent, application/json, mandatory) and waits for the
 * broker's confirm. Returns 0, or a negative errno with the reason in err. */
int ctl_publish(const struct config *cfg, const struct ctl_message *m, char *err, size_t errlen);

/* What an execution is pinned to: its pack's active release and the
 * executable snapshot (snapshot.c). */
struct ctl_pin {
    char *release_id;
    char *digest;
    char *snapshot; /* executable_snapshot, JSON text */
};

/* Resolves the pin of action action_id as Attune's API does when it creates an
 * execution. Returns CTL_EXIT_OK, or the exit status after printing why (an
 * action whose pack has no active release exits with CTL_EXIT_USAGE). */
int ctl_pin_action(PGconn *db, const char *action_id, const char *action_ref, struct ctl_pin *pin);
void ctl_pin_free(struct ctl_pin *pin);

/* Parses a positive whole number (an id); false on anything else. */
bool ctl_parse_id(const char *text, long long *out);

/* Whether an execution's status is one it ends in. */
bool ctl_status_is_final(const char *status);

/* Inside migrate's transaction: re-encrypts the keys migration
 * 0003_attune_today left in the old format (attune.key_legacy_ciphertext)
 * with security.encryption_key, as encrypt_json; *converted is their number.
 * Returns CTL_EXIT_OK, or the exit status after printing why (a missing key
 * is CONFIG_EXIT_STATUS); the caller rolls back then. */
int ctl_migrate_keys(PGconn *db, const struct config *cfg, int *converted);

int ctl_migrate(const struct config *cfg, const struct ctl_options *opts);
int ctl_pack_load(const struct config *cfg, const struct ctl_options *opts);
int ctl_key_set(const struct config *cfg, const struct ctl_options *opts);
int ctl_run(const struct config *cfg, const struct ctl_options *opts);
int ctl_execution_get(const struct config *cfg, const struct ctl_options *opts);
int ctl_execution_tail(const struct config *cfg, const struct ctl_options *opts);
int ctl_cancel(const struct config *cfg, const struct ctl_options *opts);
int ctl_workers(const struct config *cfg, const struct ctl_options *opts);

#endif
