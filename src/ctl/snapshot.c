/* What `attunectl run` pins an execution to, as Attune's API does when it
 * creates one (ExecutableSnapshotRepository::resolve in
 * crates/common/src/repositories/executable_snapshot.rs@03eeaa5b): the active
 * release of the action's pack, and the action, its runtime and the runtime's
 * versions as Attune's models serialise them (models.rs@a354b9c). */
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"

/* The fields of Attune's Action, Runtime and RuntimeVersion models. A column
 * this schema lacks gets the value Attune's table would hold by default;
 * columns the models do not have are left out, as serde drops them. */
static const char action_keys[] =
    "{id,ref,pack,pack_ref,label,description,entrypoint,runtime,enabled,enabled_override,"
    "runtime_version_constraint,required_worker_runtimes,worker_selector,worker_tolerations,"
    "worker_affinity,param_schema,out_schema,workflow_def,is_adhoc,accesses_mcp,"
    "default_execution_permission_set_refs,reference_visibility,reference_allowed_pack_refs,"
    "log_retention_policy,log_retention_limit,artifact_retention_policy,"
    "artifact_retention_limit,timeout_seconds,parameter_delivery,parameter_format,"
    "output_format,retired_at,created,updated}";
static const char runtime_keys[] =
    "{id,ref,pack,pack_ref,description,name,aliases,distributions,installation,installers,"
    "execution_config,auto_detected,detection_config,retired_at,created,updated}";
static const char runtime_version_keys[] =
    "{id,runtime,runtime_ref,version,version_major,version_minor,version_patch,"
    "execution_config,distributions,is_default,available,verified_at,meta,retired_at,created,"
    "updated}";

/* An action outside a pack with an active release has no snapshot (no row). */
static const char snapshot_sql[] =
    "SELECT pr.id, pr.digest, jsonb_build_object("
    "'release', jsonb_build_object('id', pr.id, 'digest', pr.digest, 'content_path', "
    "pr.content_path), "
    "'executable', jsonb_build_object("
    "'action', (SELECT jsonb_object_agg(e.key, e.value) FROM jsonb_each(jsonb_build_object("
    "'enabled', true, 'enabled_override', NULL, 'runtime_version_constraint', NULL, "
    "'required_worker_runtimes', '{}'::jsonb, 'worker_selector', '{}'::jsonb, "
    "'worker_tolerations', '[]'::jsonb, 'worker_affinity', '{}'::jsonb, 'workflow_def', NULL, "
    "'is_adhoc', false, 'accesses_mcp', false, 'default_execution_permission_set_refs', "
    "'[]'::jsonb, 'reference_visibility', 'public', 'reference_allowed_pack_refs', '[]'::jsonb, "
    "'log_retention_policy', NULL, 'log_retention_limit', NULL, 'artifact_retention_policy', "
    "NULL, 'artifact_retention_limit', NULL, 'retired_at', NULL) || to_jsonb(a)) e "
    "WHERE e.key = ANY($2::text[])), "
    "'runtime', (SELECT jsonb_object_agg(e.key, e.value) FROM jsonb_each(jsonb_build_object("
    "'installers', '{}'::jsonb, 'auto_detected', false, 'detection_config', '{}'::jsonb, "
    "'retired_at', NULL) || to_jsonb(r)) e WHERE r.id IS NOT NULL AND e.key = ANY($3::text[])), "
    "'runtime_versions', COALESCE((SELECT jsonb_agg((SELECT jsonb_object_agg(e.key, e.value) "
    "FROM jsonb_each(jsonb_build_object('retired_at', NULL) || to_jsonb(rv)) e "
    "WHERE e.key = ANY($4::text[])) ORDER BY rv.version, rv.id) FROM attune.runtime_version rv "
    "WHERE rv.runtime = r.id), '[]'::jsonb), "
    "'workflow_definition', NULL), "
    "'pack_executables', '{}'::jsonb)::text "
    "FROM attune.action a JOIN attune.pack p ON p.id = a.pack "
    "JOIN attune.pack_release pr ON pr.id = p.active_release "
    "LEFT JOIN attune.runtime r ON r.id = a.runtime WHERE a.id = $1::bigint";

int ctl_pin_action(PGconn *db, const char *action_id, const char *action_ref, struct ctl_pin *pin)
{
    const char *values[] = {action_id, action_keys, runtime_keys, runtime_version_keys};
    PGresult *res = ctl_query(db, "cannot read the action's release", snapshot_sql, 4, values);
    if (!res)
        return CTL_EXIT_FAILED;
    int status = CTL_EXIT_OK;
    if (PQntuples(res) == 0)
        status = ctl_usage_error("action '%s' does not belong to a pack with an active release "
                                 "(attunectl pack load DIR releases the pack)",
                                 action_ref);
    else
        *pin = (struct ctl_pin){.release_id = xstrdup(PQgetvalue(res, 0, 0)),
                                .digest = xstrdup(PQgetvalue(res, 0, 1)),
                                .snapshot = xstrdup(PQgetvalue(res, 0, 2))};
    PQclear(res);
    return status;
}

void ctl_pin_free(struct ctl_pin *pin)
{
    free(pin->release_id);
    free(pin->digest);
    free(pin->snapshot);
    *pin = (struct ctl_pin){0};
}
