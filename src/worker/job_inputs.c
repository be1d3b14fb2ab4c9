/* What a job makes of the rows it loads (see job_inputs.h). */
#include "worker/job_inputs.h"

#include <stdlib.h>

#include "core/util.h"
#include "runtime/registry.h"

int job_inputs_action(const struct action_row *row, const char *packs_base_dir, struct action **out,
                      char *err, size_t errlen)
{
    struct action_fields fields = {
        .name = row->name,
        .runner_type = registry_runner_name(row->runtime_name),
        .entry_point = row->entry_point,
        .label = row->label,
        .description = row->description,
        .parameter_delivery = row->parameter_delivery,
        .parameter_format = row->parameter_format,
        .output_format = row->output_format,
        .timeout_seconds = row->timeout_seconds,
        .enabled = row->enabled,
        .parameters = row->param_schema,
    };
    char *pack_dir = xasprintf("%s/%s", packs_base_dir, row->pack_ref);
    int rc = action_from_fields(&fields, row->pack_ref, pack_dir, out, err, errlen);
    free(pack_dir);
    if (rc == 0)
        rc = registry_check_runner(*out, err, errlen);
    return rc;
}

json_t *job_inputs_parameters(const json_t *config)
{
    if (!json_is_object(config))
        return json_object();
    json_t *p = json_object_get(config, "parameters");
    if (p)
        return json_is_object(p) ? json_deep_copy(p) : NULL;
    json_t *copy = json_deep_copy(config);
    json_object_del(copy, "context");
    json_object_del(copy, "env");
    return copy;
}
