/* The secret values of an execution, for masking (see secret_mask.h). */
#include "executor/secret_mask.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"

static void add_named(struct mask_set *set, const json_t *params, const char *name)
{
    mask_set_add_json(set, json_object_get(params, name));
}

static void add_params(struct mask_set *set, const struct execution_request *req)
{
    size_t i;
    const json_t *name;
    json_array_foreach(req->hidden_params, i, name)
    {
        if (json_is_string(name))
            add_named(set, req->params, json_string_value(name));
    }
    const json_t *props = json_object_get(req->action->param_schema, "properties");
    const char *key;
    const json_t *def;
    json_object_foreach((json_t *)props, key, def)
    {
        if (json_is_true(json_object_get(def, "secret")))
            add_named(set, req->params, key);
    }
}

struct mask_set *execution_mask_set(const struct execution_request *req)
{
    struct mask_set *set = mask_set_new();
    const char *name;
    const json_t *value;
    json_object_foreach((json_t *)req->secrets, name, value)
    {
        mask_set_add_json(set, value);
    }
    add_params(set, req);
    if (req->api_token)
        mask_set_add_secret(set, req->api_token, strlen(req->api_token));
    mask_set_build(set);
    return set;
}

void execution_mask_result(const struct mask_set *set, json_t *result)
{
    static const char *const keys[] = {"error", "data", "queue_ack"};
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
        mask_json(set, json_object_get(result, keys[i]));
}

char *execution_unmask_log(const struct exec_files *files, const struct mask_set *set,
                           const struct output_sink *sink)
{
    const struct mask_match *matches;
    size_t count;
    if (!output_sink_matches(sink, &matches, &count) || count == 0)
        return NULL;
    struct strbuf raw, plain, clean;
    strbuf_init(&raw);
    strbuf_init(&plain);
    strbuf_init(&clean);
    (void)exec_files_read_log_raw(files, EXEC_FILES_STDOUT, sink->file_bytes, &raw);
    mask_unmask(set, raw.data ? raw.data : "", raw.len, matches, count, &plain);
    utf8_sanitize(plain.data ? plain.data : "", plain.len, &clean);
    strbuf_free(&raw);
    secure_zero(plain.data, plain.len);
    strbuf_free(&plain);
    return strbuf_detach(&clean, NULL);
}
