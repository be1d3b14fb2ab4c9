/* The read-only subcommands of attunectl: `execution get ID` (the row as
 * JSON) and `workers` (a table of the registered workers). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"

/* Column order of the execution query, which is also the JSON key order. */
static const char *const execution_keys[] = {
    "id",
    "action",
    "action_ref",
    "status",
    "worker",
    "started_at",
    "created",
    "updated",
    "timeout_seconds",
    "config",
    "result",
    "pack_release",
    "pack_release_digest",
};

static json_t *column_value(const PGresult *res, int col)
{
    if (PQgetisnull(res, 0, col))
        return json_null();
    const char *text = PQgetvalue(res, 0, col);
    const char *key = execution_keys[col];
    if (strcmp(key, "config") == 0 || strcmp(key, "result") == 0) {
        json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
        return v ? v : json_string(text);
    }
    if (strcmp(key, "id") == 0 || strcmp(key, "action") == 0 || strcmp(key, "worker") == 0 ||
        strcmp(key, "timeout_seconds") == 0 || strcmp(key, "pack_release") == 0)
        return json_integer(strtoll(text, NULL, 10));
    return json_string(text);
}

int ctl_execution_get(const struct config *cfg, const struct ctl_options *opts)
{
    static const char sql[] =
        "SELECT id, action, action_ref, status::text, worker, to_jsonb(started_at) #>> '{}', "
        "to_jsonb(created) #>> '{}', to_jsonb(updated) #>> '{}', timeout_seconds, config, result, "
        "pack_release, pack_release_digest FROM attune.execution WHERE id = $1::bigint";
    long long id;
    if (!ctl_parse_id(opts->args[0], &id))
        return ctl_usage_error("execution id must be a positive whole number, got '%s'",
                               opts->args[0]);
    PGconn *db = ctl_db_connect(cfg);
    if (!db)
        return CTL_EXIT_FAILED;
    const char *values[] = {opts->args[0]};
    PGresult *res = ctl_query(db, "cannot read the execution", sql, 1, values);
    int status = res ? CTL_EXIT_OK : CTL_EXIT_FAILED;
    if (res && PQntuples(res) == 0) {
        status = ctl_error("execution %lld not found", id);
    } else if (res) {
        json_t *obj = json_object();
        for (int col = 0; col < (int)ARRAY_SIZE(execution_keys); col++)
            json_object_set_new(obj, execution_keys[col], column_value(res, col));
        json_dumpf(obj, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(obj);
    }
    PQclear(res);
    PQfinish(db);
    return status;
}

/* capabilities.runtimes: a list of names (or of objects with a name). */
static char *runtime_names(const char *capabilities)
{
    json_t *caps = json_loads(capabilities, 0, NULL);
    json_t *list = json_object_get(caps, "runtimes");
    struct strbuf out;
    strbuf_init(&out);
    for (size_t i = 0; json_is_array(list) && i < json_array_size(list); i++) {
        json_t *item = json_array_get(list, i);
        const char *name = json_is_string(item) ? json_string_value(item)
                                                : json_string_value(json_object_get(item, "name"));
        if (name) {
            if (out.len)
                strbuf_putc(&out, ',');
            strbuf_puts(&out, name);
        }
    }
    json_decref(caps);
    if (!out.len)
        strbuf_puts(&out, "-");
    return strbuf_detach(&out, NULL);
}

int ctl_workers(const struct config *cfg, const struct ctl_options *opts)
{
    static const char sql[] =
        "SELECT id, name, status::text, worker_type::text, COALESCE(host, '-'), "
        "floor(extract(epoch FROM NOW() - last_heartbeat))::bigint, capabilities::text "
        "FROM attune.worker ORDER BY id";
    (void)opts;
    PGconn *db = ctl_db_connect(cfg);
    if (!db)
        return CTL_EXIT_FAILED;
    PGresult *res = ctl_query(db, "cannot list the workers", sql, 0, NULL);
    if (res) {
        printf("%-6s %-24s %-9s %-10s %-20s %-9s %s\n", "ID", "NAME", "STATUS", "TYPE", "HOST",
               "HEARTBEAT", "RUNTIMES");
        for (int i = 0; i < PQntuples(res); i++) {
            char *runtimes = runtime_names(PQgetisnull(res, i, 6) ? "{}" : PQgetvalue(res, i, 6));
            char age[32] = "-";
            if (!PQgetisnull(res, i, 5))
                snprintf(age, sizeof(age), "%ss", PQgetvalue(res, i, 5));
            printf("%-6s %-24s %-9s %-10s %-20s %-9s %s\n", PQgetvalue(res, i, 0),
                   PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
                   PQgetvalue(res, i, 4), age, runtimes);
            free(runtimes);
        }
    }
    int status = res ? CTL_EXIT_OK : CTL_EXIT_FAILED;
    PQclear(res);
    PQfinish(db);
    return status;
}
