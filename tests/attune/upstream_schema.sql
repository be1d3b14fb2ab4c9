-- Today's Attune schema (GitHub attune-system/attune) for the tables a worker
-- touches, written for the compatibility tests from upstream's migrations: the
-- same names, types, enums, constraints, defaults and triggers, without the
-- tables the worker never reaches (rule, sensor, workflow, log_segment, ...).
-- attune_support.py applies this file with psycopg2 to a fresh database; the
-- worker must run against it unchanged, and `attunectl migrate` must see a
-- database managed by Attune's own migration runner and leave it alone.
--
-- Sources, as path@commit of attune-system/attune unless noted. Two of the
-- files are not in the stored copy of attune-system/attune and were read from
-- the project's earlier repository AndroxxTraxxon/attune (same files, older
-- history); where a later upstream migration or models.rs (@a354b9c) says
-- more, that is what is written here:
--   M0  migrations/20240101000000_migration_runner_claim.sql@5e1b952
--   M1  migrations/20250101000001_initial_setup.sql (AndroxxTraxxon@39d7ccc)
--   M2  migrations/20250101000002_pack_system.sql (AndroxxTraxxon@aa14253)
--   M3  migrations/20250101000003_identity_and_auth.sql@346b08b
--   M4  migrations/20250101000004_trigger_sensor_event_rule.sql@33f01fa
--   M5  migrations/20250101000005_execution_and_operations.sql@7f6dc89
--   M6  migrations/20250101000006_workflow_system.sql@e76cd03a
--   M7  migrations/20250101000007_supporting_systems.sql@33f01fa
--   M9  migrations/20250101000009_timescaledb_history.sql@a354b9c
--   M15 migrations/20250101000015_trace_tags.sql@20473d8
--   M20 migrations/20250101000020_notification_payload_envelope.sql@232956e
--   RV  migrations/20260226000000_runtime_versions.sql (AndroxxTraxxon@495b812)
--   PWP migrations/20260821000001_pack_worker_placement.sql@6e67237
--   PIS migrations/20260818000002_pack_install_status.sql@5ec2c01
--   CKR migrations/20260831000001_canonical_key_refs.sql@a807dbc
--   NTT migrations/20260902000001_execution_notification_trace_tag.sql@266eeef
--   PR  migrations/20260909000001_pack_releases.sql@03eeaa5b
--   PIN migrations/20260909000002_async_pack_release_pins.sql@03eeaa5b
--   PRO migrations/20260909000005_pack_release_object_storage.sql@03eeaa5b
--   CR  migrations/20260916000003_component_retirement.sql@126b167e
--   ALC migrations/20250101000017_artifact_log_classification.sql@d87a1d6
--   APC migrations/20250101000025_artifact_path_constraints.sql@457e0ae
--   AOS migrations/20260909000003_artifact_object_storage.sql@03eeaa5b
--   ILS migrations/20260909000004_immutable_log_segments.sql@03eeaa5b
--   SMM migrations/20260909000006_storage_migration_maintenance.sql@03eeaa5b
--   BOR migrations/20260909000007_bounded_object_retention.sql@03eeaa5b
--   SFL migrations/20260912000001_shared_file_log_streams.sql@7ea0e94
--   ACC migrations/20260912000002_artifact_cleanup_claims.sql@1b10964 and
--       20260912000003_artifact_cleanup_claim_constraints.sql@1b10964
--   LSN migrations/20260912000005_log_stream_notifications.sql@e20b607
--   DAU migrations/20260915000001_direct_artifact_uploads.sql@4f7073b
--   RT  docs QUICKREF-unified-runtime-detection.md (runtime columns) and
--       crates/common/src/models.rs@a354b9c (Runtime, Pack, PackRelease)
--
-- Like upstream's migrations, everything below is created through
-- `SET search_path TO attune, public` and the trigger functions name tables
-- without a schema: they resolve through the search_path of the session that
-- fires them (upstream's services set `attune, public` on every connection).

-- Migration history (M0; sqlx's own table) -----------------------------------------

-- Embedded sqlx migrations (`attune-api --migrate`) keep their history in
-- attune._sqlx_migrations (migrations/README.md@cc47afc), with sqlx's columns.
-- M0 claims the database for one runner in public._attune_migration_runner.
CREATE SCHEMA attune;
SET search_path TO attune, public;

CREATE TABLE attune._sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL,
    execution_time BIGINT NOT NULL
);

CREATE TABLE public._attune_migration_runner (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    runner TEXT NOT NULL CHECK (runner IN ('sqlx', 'docker')),
    claimed_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
INSERT INTO public._attune_migration_runner (id, runner) VALUES (1, 'sqlx');

-- The history of a database migrated to e76cd03a (the newest migrations). The
-- checksums are SHA-384 of the file name here, not of upstream's file bytes,
-- which this copy does not have; nothing in these tests validates them.
INSERT INTO attune._sqlx_migrations (version, description, success, checksum, execution_time)
SELECT split_part(f, '_', 1)::BIGINT,
       replace(substr(f, length(split_part(f, '_', 1)) + 2), '_', ' '),
       true, sha384(convert_to(f, 'UTF8')), 0
FROM unnest(ARRAY[
    '20240101000000_migration_runner_claim', '20250101000001_initial_setup',
    '20250101000002_pack_system', '20250101000003_identity_and_auth',
    '20250101000004_trigger_sensor_event_rule', '20250101000005_execution_and_operations',
    '20250101000006_workflow_system', '20250101000007_supporting_systems',
    '20250101000009_timescaledb_history', '20250101000012_work_queues',
    '20250101000013_audit_log', '20250101000014_runtime_retention_supervisor',
    '20250101000015_action_reference_visibility', '20250101000016_source_trace_tags',
    '20250101000017_artifact_log_classification', '20250101000018_dashboards',
    '20250101000019_execution_pack_ref_expression_index',
    '20250101000020_notification_payload_envelope', '20250101000021_cache',
    '20250101000022_cache_lifecycle_correctness', '20250101000023_workflow_cache_iteration',
    '20250101000024_cache_physical_byte_accounting', '20250101000025_artifact_path_constraints',
    '20250101000026_standard_pack_index', '20250101000027_v021_upgrade_compatibility',
    '20260818000001_pack_test_pass_rate_double_precision', '20260818000002_pack_install_status',
    '20260821000001_pack_worker_placement', '20260821000002_standard_pack_index_bootstrap',
    '20260822000001_standard_pack_index_history', '20260822000002_pack_install_worker',
    '20260822000003_standard_pack_index_v040', '20260822000004_pack_install_requester',
    '20260823000001_pack_install_activation', '20260831000001_canonical_key_refs',
    '20260902000001_execution_notification_trace_tag',
    '20260902000002_related_notification_trace_tags', '20260902000003_sensor_workload_assignment',
    '20260903000001_preserve_runtime_version_precision', '20260909000001_pack_releases',
    '20260909000002_async_pack_release_pins', '20260909000003_artifact_object_storage',
    '20260909000004_immutable_log_segments', '20260909000005_pack_release_object_storage',
    '20260909000006_storage_migration_maintenance', '20260909000007_bounded_object_retention',
    '20260912000001_shared_file_log_streams', '20260912000002_artifact_cleanup_claims',
    '20260912000003_artifact_cleanup_claim_constraints', '20260912000004_log_segment_range_index',
    '20260912000005_log_stream_notifications', '20260912000006_workflow_log_outbox',
    '20260913000001_execution_log_stream_leases', '20260913000002_harden_workflow_log_outbox',
    '20260915000001_direct_artifact_uploads', '20260916000001_platform_catalog',
    '20260916000002_catalog_bootstrap_and_release_lock', '20260916000003_component_retirement',
    '20260919000001_workflow_task_waits', '20260919000002_absent_metadata_policy',
    '20260919000003_external_identity_mapping', '20260921000001_inquiry_callback_delivery',
    '20261006000001_native_partitions', '20261006000002_hourly_summaries',
    '20261006000003_native_reconciliation_cursor', '20261007000001_cache_generation_partitions'
]) AS f;

-- Enums (M1; the role enum as models.rs@a354b9c: the older M1 also had 'hybrid') ----

CREATE TYPE worker_type_enum AS ENUM ('local', 'remote', 'container');
CREATE TYPE worker_role_enum AS ENUM ('action', 'sensor');
CREATE TYPE worker_status_enum AS ENUM ('active', 'inactive', 'busy', 'error');
CREATE TYPE enforcement_status_enum AS ENUM ('created', 'processed', 'disabled');
CREATE TYPE enforcement_condition_enum AS ENUM ('any', 'all');
CREATE TYPE execution_status_enum AS ENUM (
    'requested', 'scheduling', 'scheduled', 'running', 'completed',
    'failed', 'canceling', 'cancelled', 'timeout', 'abandoned');
CREATE TYPE owner_type_enum AS ENUM ('system', 'identity', 'pack', 'action', 'sensor');
CREATE TYPE artifact_retention_enum AS ENUM ('versions', 'days', 'hours', 'minutes');
-- M4
CREATE TYPE action_reference_visibility_enum AS ENUM ('public', 'private', 'restricted');

-- Shared function (M1)
CREATE OR REPLACE FUNCTION update_updated_column()
RETURNS TRIGGER AS $$
BEGIN
    NEW.updated = NOW();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

-- pack (M2, PWP, PIS, PR; install columns as models.rs Pack) -------------------------

CREATE TABLE pack (
    id BIGSERIAL PRIMARY KEY,
    ref TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    description TEXT,
    version TEXT NOT NULL,
    conf_schema JSONB NOT NULL DEFAULT '{}'::jsonb,
    config JSONB NOT NULL DEFAULT '{}'::jsonb,
    meta JSONB NOT NULL DEFAULT '{}'::jsonb,
    tags TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
    runtime_deps TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
    dependencies TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
    is_standard BOOLEAN NOT NULL DEFAULT FALSE,
    installers JSONB DEFAULT '[]'::jsonb,
    source_type TEXT,
    source_url TEXT,
    source_ref TEXT,
    checksum TEXT,
    checksum_verified BOOLEAN DEFAULT FALSE,
    installed_at TIMESTAMPTZ,
    installed_by BIGINT,
    installation_method TEXT,
    storage_path TEXT,
    created TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CONSTRAINT pack_ref_lowercase CHECK (ref = LOWER(ref)),
    CONSTRAINT pack_ref_format CHECK (ref ~ '^[a-z][a-z0-9_-]+$'),
    CONSTRAINT pack_version_semver CHECK (
        version ~ '^\d+\.\d+\.\d+(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$'
    )
);
CREATE INDEX idx_pack_ref ON pack(ref);
CREATE TRIGGER update_pack_updated
    BEFORE UPDATE ON pack FOR EACH ROW EXECUTE FUNCTION update_updated_column();

-- PWP
ALTER TABLE pack
    ADD COLUMN worker_selector JSONB NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN worker_tolerations JSONB NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN worker_affinity JSONB NOT NULL DEFAULT '{}'::jsonb;
-- PIS
ALTER TABLE pack
    ADD COLUMN install_status TEXT NOT NULL DEFAULT 'installed'
        CONSTRAINT valid_pack_install_status
        CHECK (install_status IN ('pending', 'installed', 'install_failed'));

-- runtime (M2; aliases .. detection_config as RT; retired_at from CR) ---------------

CREATE TABLE runtime (
    id BIGSERIAL PRIMARY KEY,
    ref TEXT NOT NULL UNIQUE,
    pack BIGINT REFERENCES pack(id) ON DELETE CASCADE,
    pack_ref TEXT,
    description TEXT,
    name TEXT NOT NULL,
    aliases TEXT[] NOT NULL DEFAULT '{}',
    distributions JSONB NOT NULL,
    installation JSONB,
    installers JSONB DEFAULT '[]'::jsonb,
    execution_config JSONB NOT NULL DEFAULT '{}',
    auto_detected BOOLEAN NOT NULL DEFAULT FALSE,
    detection_config JSONB NOT NULL DEFAULT '{}',
    created TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CONSTRAINT runtime_ref_lowercase CHECK (ref = LOWER(ref))
);
CREATE INDEX idx_runtime_pack ON runtime(pack);
CREATE INDEX idx_runtime_name ON runtime(name);
CREATE TRIGGER update_runtime_updated
    BEFORE UPDATE ON runtime FOR EACH ROW EXECUTE FUNCTION update_updated_column();

-- runtime_version (RV; retired_at and the lifecycle guard from CR) -------------------

CREATE TABLE runtime_version (
    id BIGSERIAL PRIMARY KEY,
    runtime BIGINT NOT NULL REFERENCES runtime(id) ON DELETE CASCADE,
    runtime_ref TEXT NOT NULL,
    version TEXT NOT NULL,
    version_major INT,
    version_minor INT,
    version_patch INT,
    execution_config JSONB NOT NULL DEFAULT '{}'::jsonb,
    distributions JSONB NOT NULL DEFAULT '{}'::jsonb,
    is_default BOOLEAN NOT NULL DEFAULT FALSE,
    available BOOLEAN NOT NULL DEFAULT TRUE,
    verified_at TIMESTAMPTZ,
    meta JSONB NOT NULL DEFAULT '{}'::jsonb,
    created TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CONSTRAINT runtime_version_unique UNIQUE(runtime, version)
);
CREATE INDEX idx_runtime_version_runtime ON runtime_version(runtime);
CREATE TRIGGER update_runtime_version_updated
    BEFORE UPDATE ON runtime_version FOR EACH ROW EXECUTE FUNCTION update_updated_column();

-- identity (M3, subset: no permission, token or policy tables) -----------------------

CREATE TABLE identity (
    id BIGSERIAL PRIMARY KEY,
    login TEXT NOT NULL UNIQUE,
    display_name TEXT,
    password_hash TEXT,
    attributes JSONB NOT NULL DEFAULT '{}'::jsonb,
    created TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE TRIGGER update_identity_updated
    BEFORE UPDATE ON identity FOR EACH ROW EXECUTE FUNCTION update_updated_column();
ALTER TABLE pack
    ADD CONSTRAINT fk_pack_installed_by
    FOREIGN KEY (installed_by) REFERENCES identity(id) ON DELETE SET NULL;
ALTER TABLE identity ADD COLUMN frozen BOOLEAN NOT NULL DEFAULT false;

-- pack_release (PR, PRO; inactive_since as models.rs PackRelease) -------------------

CREATE TABLE pack_release (
    id BIGSERIAL PRIMARY KEY,
    pack BIGINT NOT NULL REFERENCES pack(id) ON DELETE CASCADE,
    pack_ref TEXT NOT NULL,
    version TEXT NOT NULL,
    digest TEXT NOT NULL,
    archive_path TEXT NOT NULL,
    content_path TEXT NOT NULL,
    archive_size BIGINT NOT NULL CHECK (archive_size >= 0),
    manifest JSONB NOT NULL,
    created TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CONSTRAINT pack_release_pack_version_unique UNIQUE (pack, version),
    CONSTRAINT pack_release_pack_id_unique UNIQUE (pack, id),
    CONSTRAINT pack_release_digest_sha256 CHECK (digest ~ '^[0-9a-f]{64}$'),
    CONSTRAINT pack_release_manifest_object CHECK (jsonb_typeof(manifest) = 'object')
);
CREATE INDEX idx_pack_release_pack_created ON pack_release(pack, created DESC);
CREATE INDEX idx_pack_release_digest ON pack_release(digest);

ALTER TABLE pack
    ADD COLUMN active_release BIGINT,
    ADD CONSTRAINT pack_active_release_same_pack
        FOREIGN KEY (id, active_release)
        REFERENCES pack_release(pack, id)
        DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE pack_release
    ADD COLUMN object_key TEXT,
    ADD COLUMN provider_version TEXT,
    ALTER COLUMN archive_path DROP NOT NULL;
ALTER TABLE pack_release
    ADD CONSTRAINT pack_release_object_pointer_complete CHECK (
        (object_key IS NULL AND provider_version IS NULL)
        OR (object_key IS NOT NULL AND provider_version IS NOT NULL)
    );
ALTER TABLE pack_release ADD COLUMN inactive_since TIMESTAMPTZ;

-- enforcement (M4; the release pin from PIN; the rule FK of M5 is left out with the
-- rule table) -------------------------------------------------------------------

CREATE TABLE enforcement (
    id BIGSERIAL PRIMARY KEY,
    rule BIGINT,
    rule_ref TEXT NOT NULL,
    trigger_ref TEXT NOT NULL,
    config JSONB,
    event BIGINT,
    status enforcement_status_enum NOT NULL DEFAULT 'created',
    payload JSONB NOT NULL,
    condition enforcement_condition_enum NOT NULL DEFAULT 'all',
    conditions JSONB NOT NULL DEFAULT '[]'::jsonb,
    created TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    resolved_at TIMESTAMPTZ,
    CONSTRAINT enforcement_condition_check CHECK (condition IN ('any', 'all'))
);
CREATE INDEX idx_enforcement_rule ON enforcement(rule);
ALTER TABLE enforcement
    ADD COLUMN pack_release BIGINT REFERENCES pack_release(id) ON DELETE SET NULL,
    ADD COLUMN pack_release_digest TEXT,
    ADD COLUMN executable_snapshot JSONB,
    ADD CONSTRAINT enforcement_release_pin_complete CHECK (
        (pack_release IS NULL AND pack_release_digest IS NULL AND executable_snapshot IS NULL)
        OR (pack_release_digest IS NOT NULL AND executable_snapshot IS NOT NULL)
    ),
    ADD CONSTRAINT enforcement_release_digest_sha256 CHECK (
        pack_release_digest IS NULL OR pack_release_digest ~ '^[0-9a-f]{64}$'
    );

-- action (M4; workflow columns from M6 without the workflow_definition FK;
-- retirement and the enable override from CR) --------------------------------------

CREATE TABLE action (
    id BIGSERIAL PRIMARY KEY,
    ref TEXT NOT NULL UNIQUE,
    pack BIGINT NOT NULL REFERENCES pack(id) ON DELETE CASCADE,
    pack_ref TEXT NOT NULL,
    label TEXT NOT NULL,
    description TEXT,
    entrypoint TEXT NOT NULL,
    runtime BIGINT REFERENCES runtime(id),
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    param_schema JSONB,
    out_schema JSONB,
    parameter_delivery TEXT NOT NULL DEFAULT 'stdin' CHECK (parameter_delivery IN ('stdin', 'file')),
    parameter_format TEXT NOT NULL DEFAULT 'json' CHECK (parameter_format IN ('dotenv', 'json', 'yaml')),
    output_format TEXT NOT NULL DEFAULT 'text' CHECK (output_format IN ('text', 'json', 'yaml', 'jsonl')),
    is_adhoc BOOLEAN NOT NULL DEFAULT FALSE,
    timeout_seconds INTEGER,
    max_retries INTEGER DEFAULT 0,
    runtime_version_constraint TEXT,
    accesses_mcp BOOLEAN NOT NULL DEFAULT FALSE,
    default_execution_permission_set_refs TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
    reference_visibility action_reference_visibility_enum NOT NULL DEFAULT 'public',
    reference_allowed_pack_refs TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
    log_retention_policy artifact_retention_enum,
    log_retention_limit INTEGER,
    artifact_retention_policy artifact_retention_enum,
    artifact_retention_limit INTEGER,
    created TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CONSTRAINT action_ref_lowercase CHECK (ref = LOWER(ref)),
    CONSTRAINT action_ref_format CHECK (ref ~ '^[^.]+\.[^.]+$'),
    CONSTRAINT action_log_retention_limit_positive CHECK (log_retention_limit IS NULL OR log_retention_limit > 0),
    CONSTRAINT action_artifact_retention_limit_positive CHECK (artifact_retention_limit IS NULL OR artifact_retention_limit > 0),
    CONSTRAINT action_timeout_seconds_positive CHECK (timeout_seconds IS NULL OR timeout_seconds > 0),
    CONSTRAINT action_reference_allowed_pack_refs_non_null
        CHECK (array_position(reference_allowed_pack_refs, NULL) IS NULL),
    CONSTRAINT action_reference_allowed_pack_refs_restricted_only
        CHECK (reference_visibility = 'restricted' OR cardinality(reference_allowed_pack_refs) = 0)
);
CREATE INDEX idx_action_ref ON action(ref);
CREATE INDEX idx_action_pack ON action(pack);
CREATE INDEX idx_action_runtime ON action(runtime);
CREATE TRIGGER update_action_updated
    BEFORE UPDATE ON action FOR EACH ROW EXECUTE FUNCTION update_updated_column();

-- M6
ALTER TABLE action
    ADD COLUMN workflow_def BIGINT,
    ADD COLUMN required_worker_runtimes JSONB NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN worker_selector JSONB NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN worker_tolerations JSONB NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN worker_affinity JSONB NOT NULL DEFAULT '{}'::jsonb;

-- CR
ALTER TABLE runtime ADD COLUMN retired_at TIMESTAMPTZ;
CREATE INDEX idx_runtime_active ON runtime (retired_at) WHERE retired_at IS NULL;
ALTER TABLE action ADD COLUMN retired_at TIMESTAMPTZ;
CREATE INDEX idx_action_active ON action (retired_at) WHERE retired_at IS NULL;
ALTER TABLE runtime_version ADD COLUMN retired_at TIMESTAMPTZ;
CREATE INDEX idx_runtime_version_active ON runtime_version (runtime, version)
    WHERE retired_at IS NULL;
ALTER TABLE action ADD COLUMN enabled_override BOOLEAN,
    ADD COLUMN effective_enabled BOOLEAN GENERATED ALWAYS AS (COALESCE(enabled_override, enabled)) STORED;

CREATE OR REPLACE FUNCTION guard_runtime_version_lifecycle() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.retired_at IS NULL AND EXISTS (
        SELECT 1 FROM runtime WHERE id = NEW.runtime AND retired_at IS NOT NULL
    ) THEN
        RAISE EXCEPTION 'active runtime version requires an active parent runtime';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER guard_runtime_version_lifecycle
    BEFORE INSERT OR UPDATE OF runtime, retired_at ON runtime_version
    FOR EACH ROW EXECUTE FUNCTION guard_runtime_version_lifecycle();

-- worker (M5) -------------------------------------------------------------------

CREATE TABLE worker (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    worker_type worker_type_enum NOT NULL,
    worker_role worker_role_enum NOT NULL,
    runtime BIGINT REFERENCES runtime(id) ON DELETE SET NULL,
    host TEXT,
    port INTEGER,
    status worker_status_enum NOT NULL DEFAULT 'active',
    capabilities JSONB,
    meta JSONB,
    last_heartbeat TIMESTAMPTZ,
    cordoned BOOLEAN NOT NULL DEFAULT FALSE,
    cordon_reason TEXT,
    cordoned_by BIGINT REFERENCES identity(id) ON DELETE SET NULL,
    cordoned_at TIMESTAMPTZ,
    created TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_worker_name ON worker(name);
CREATE INDEX idx_worker_status ON worker(status);
CREATE INDEX idx_worker_status_role ON worker(status, worker_role);
CREATE INDEX idx_worker_role_cordoned_status ON worker(worker_role, cordoned, status);
CREATE TRIGGER update_worker_updated
    BEFORE UPDATE ON worker FOR EACH ROW EXECUTE FUNCTION update_updated_column();

-- execution (M5; trace_tag from M15; the release pin from PIN) ----------------------

CREATE TABLE execution (
    id BIGSERIAL PRIMARY KEY,
    action BIGINT,
    action_ref TEXT NOT NULL,
    config JSONB,
    env_vars JSONB,
    parent BIGINT,
    enforcement BIGINT,
    executor BIGINT,
    permission_set_refs TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
    artifact_retention_policy artifact_retention_enum,
    artifact_retention_limit INTEGER,
    worker_selector JSONB,
    worker_tolerations JSONB,
    worker_affinity JSONB,
    worker BIGINT,
    status execution_status_enum NOT NULL DEFAULT 'requested',
    result JSONB,
    started_at TIMESTAMPTZ,
    timeout_seconds INTEGER,
    created TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    workflow_def BIGINT,
    workflow_task JSONB,
    retry_count INTEGER NOT NULL DEFAULT 0,
    max_retries INTEGER,
    retry_reason TEXT,
    original_execution BIGINT,
    updated TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CONSTRAINT execution_artifact_retention_limit_positive CHECK (artifact_retention_limit IS NULL OR artifact_retention_limit > 0),
    CONSTRAINT execution_timeout_seconds_positive CHECK (timeout_seconds IS NULL OR timeout_seconds > 0)
);
CREATE INDEX idx_execution_action ON execution(action);
CREATE INDEX idx_execution_enforcement ON execution(enforcement);
CREATE INDEX idx_execution_worker ON execution(worker);
CREATE INDEX idx_execution_status ON execution(status);
CREATE UNIQUE INDEX uq_execution_top_level_enforcement
    ON execution (enforcement)
    WHERE enforcement IS NOT NULL
      AND parent IS NULL
      AND (config IS NULL OR NOT (config ? 'retry_of'));
CREATE TRIGGER update_execution_updated
    BEFORE UPDATE ON execution FOR EACH ROW EXECUTE FUNCTION update_updated_column();

ALTER TABLE execution
    ADD CONSTRAINT execution_action_fkey
    FOREIGN KEY (action) REFERENCES action(id) ON DELETE SET NULL;
ALTER TABLE execution
    ADD CONSTRAINT execution_parent_fkey
    FOREIGN KEY (parent) REFERENCES execution(id) ON DELETE SET NULL;
ALTER TABLE execution
    ADD CONSTRAINT execution_original_execution_fkey
    FOREIGN KEY (original_execution) REFERENCES execution(id) ON DELETE SET NULL;
ALTER TABLE execution
    ADD CONSTRAINT execution_enforcement_fkey
    FOREIGN KEY (enforcement) REFERENCES enforcement(id) ON DELETE SET NULL;
ALTER TABLE execution
    ADD CONSTRAINT execution_executor_fkey
    FOREIGN KEY (executor) REFERENCES identity(id) ON DELETE SET NULL;
ALTER TABLE execution
    ADD CONSTRAINT execution_worker_fkey
    FOREIGN KEY (worker) REFERENCES worker(id) ON DELETE SET NULL;

-- M15
ALTER TABLE execution ADD COLUMN trace_tag TEXT;
CREATE INDEX idx_execution_trace_tag ON execution(trace_tag) WHERE trace_tag IS NOT NULL;

-- PIN
ALTER TABLE execution
    ADD COLUMN pack_release BIGINT REFERENCES pack_release(id) ON DELETE SET NULL,
    ADD COLUMN pack_release_digest TEXT,
    ADD COLUMN executable_snapshot JSONB,
    ADD CONSTRAINT execution_release_pin_complete CHECK (
        (pack_release IS NULL AND pack_release_digest IS NULL AND executable_snapshot IS NULL)
        OR (pack_release_digest IS NOT NULL AND executable_snapshot IS NOT NULL)
    ),
    ADD CONSTRAINT execution_release_digest_sha256 CHECK (
        pack_release_digest IS NULL OR pack_release_digest ~ '^[0-9a-f]{64}$'
    );

-- execution_secret_value (M5) -----------------------------------------------------

CREATE TABLE execution_secret_value (
    id BIGSERIAL PRIMARY KEY,
    entity_type TEXT NOT NULL,
    entity_id BIGINT NOT NULL,
    json_path TEXT NOT NULL,
    source_kind TEXT NOT NULL,
    source_ref TEXT,
    encrypted_value JSONB NOT NULL,
    encryption_key_hash TEXT,
    created TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (entity_type, entity_id, json_path)
);
CREATE INDEX idx_execution_secret_value_entity
    ON execution_secret_value (entity_type, entity_id);

-- key (M7, as CKR left it; the owner_sensor FK is left out with the sensor table) ---

CREATE TABLE key (
    id BIGSERIAL PRIMARY KEY,
    ref TEXT NOT NULL,
    owner_type owner_type_enum NOT NULL,
    owner TEXT,
    owner_identity BIGINT REFERENCES identity(id),
    owner_pack BIGINT REFERENCES pack(id),
    owner_pack_ref TEXT,
    owner_action BIGINT,
    owner_action_ref TEXT,
    owner_sensor BIGINT,
    owner_sensor_ref TEXT,
    name TEXT NOT NULL,
    encrypted BOOLEAN NOT NULL,
    encryption_key_hash TEXT,
    value JSONB NOT NULL,
    created TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE UNIQUE INDEX idx_key_unique ON key(owner_type, owner, name);
CREATE INDEX idx_key_owner_pack ON key(owner_pack);
CREATE INDEX idx_key_owner_action ON key(owner_action);
CREATE TRIGGER update_key_updated
    BEFORE UPDATE ON key FOR EACH ROW EXECUTE FUNCTION update_updated_column();
ALTER TABLE key
    ADD CONSTRAINT key_owner_action_fkey
    FOREIGN KEY (owner_action) REFERENCES action(id) ON DELETE CASCADE;

-- CKR: a canonical ref derived from the owner and a dot-free local ref.
ALTER TABLE key ADD COLUMN local_ref TEXT NOT NULL;

CREATE OR REPLACE FUNCTION canonical_key_ref(
    p_owner_type owner_type_enum,
    p_owner_identity_login TEXT,
    p_owner_pack_ref TEXT,
    p_owner_action_ref TEXT,
    p_owner_sensor_ref TEXT,
    p_local_ref TEXT
)
RETURNS TEXT AS $$
BEGIN
    RETURN CASE p_owner_type
        WHEN 'system' THEN 'system.' || p_local_ref
        WHEN 'identity' THEN 'identity.' || p_owner_identity_login || '.' || p_local_ref
        WHEN 'pack' THEN 'pack.' || p_owner_pack_ref || '.' || p_local_ref
        WHEN 'action' THEN 'action.' || p_owner_action_ref || '.' || p_local_ref
        WHEN 'sensor' THEN 'sensor.' || p_owner_sensor_ref || '.' || p_local_ref
    END;
END;
$$ LANGUAGE plpgsql IMMUTABLE;

ALTER TABLE key ADD CONSTRAINT key_ref_key UNIQUE (ref);
ALTER TABLE key ADD CONSTRAINT key_local_ref_format
    CHECK (local_ref ~ '^[a-z0-9][a-z0-9_-]{0,62}$');
ALTER TABLE key ADD CONSTRAINT key_ref_canonical CHECK (
    ref = canonical_key_ref(
        owner_type, owner, owner_pack_ref, owner_action_ref, owner_sensor_ref, local_ref
    )
);

CREATE OR REPLACE FUNCTION validate_key_owner()
RETURNS TRIGGER AS $$
DECLARE
    owner_count INTEGER := 0;
BEGIN
    IF TG_OP = 'UPDATE' AND (
        NEW.owner_type IS DISTINCT FROM OLD.owner_type
        OR NEW.owner_identity IS DISTINCT FROM OLD.owner_identity
        OR NEW.owner_pack IS DISTINCT FROM OLD.owner_pack
        OR NEW.owner_action IS DISTINCT FROM OLD.owner_action
        OR NEW.owner_sensor IS DISTINCT FROM OLD.owner_sensor
        OR NEW.local_ref IS DISTINCT FROM OLD.local_ref
    ) THEN
        RAISE EXCEPTION 'Key owner and local_ref cannot be changed';
    END IF;

    IF NEW.owner_identity IS NOT NULL THEN owner_count := owner_count + 1; END IF;
    IF NEW.owner_pack IS NOT NULL THEN owner_count := owner_count + 1; END IF;
    IF NEW.owner_action IS NOT NULL THEN owner_count := owner_count + 1; END IF;
    IF NEW.owner_sensor IS NOT NULL THEN owner_count := owner_count + 1; END IF;

    IF NEW.owner_type = 'system' THEN
        IF owner_count > 0 THEN
            RAISE EXCEPTION 'System owner cannot have specific owner fields set';
        END IF;
        NEW.owner := 'system';
        NEW.owner_pack_ref := NULL;
        NEW.owner_action_ref := NULL;
        NEW.owner_sensor_ref := NULL;
    ELSIF owner_count != 1 THEN
        RAISE EXCEPTION 'Exactly one owner field must be set for owner_type %', NEW.owner_type;
    ELSIF NEW.owner_type = 'identity' THEN
        IF NEW.owner_identity IS NULL THEN
            RAISE EXCEPTION 'owner_identity must be set for owner_type identity';
        END IF;
        SELECT login INTO STRICT NEW.owner FROM identity WHERE id = NEW.owner_identity;
        NEW.owner_pack_ref := NULL;
        NEW.owner_action_ref := NULL;
        NEW.owner_sensor_ref := NULL;
    ELSIF NEW.owner_type = 'pack' THEN
        IF NEW.owner_pack IS NULL THEN
            RAISE EXCEPTION 'owner_pack must be set for owner_type pack';
        END IF;
        SELECT ref INTO STRICT NEW.owner_pack_ref FROM pack WHERE id = NEW.owner_pack;
        NEW.owner := NEW.owner_pack_ref;
        NEW.owner_action_ref := NULL;
        NEW.owner_sensor_ref := NULL;
    ELSIF NEW.owner_type = 'action' THEN
        IF NEW.owner_action IS NULL THEN
            RAISE EXCEPTION 'owner_action must be set for owner_type action';
        END IF;
        SELECT ref INTO STRICT NEW.owner_action_ref FROM action WHERE id = NEW.owner_action;
        NEW.owner := NEW.owner_action_ref;
        NEW.owner_pack_ref := NULL;
        NEW.owner_sensor_ref := NULL;
    ELSIF NEW.owner_type = 'sensor' THEN
        IF NEW.owner_sensor IS NULL THEN
            RAISE EXCEPTION 'owner_sensor must be set for owner_type sensor';
        END IF;
        SELECT ref INTO STRICT NEW.owner_sensor_ref FROM sensor WHERE id = NEW.owner_sensor;
        NEW.owner := NEW.owner_sensor_ref;
        NEW.owner_pack_ref := NULL;
        NEW.owner_action_ref := NULL;
    END IF;

    NEW.ref := canonical_key_ref(
        NEW.owner_type, NEW.owner, NEW.owner_pack_ref, NEW.owner_action_ref,
        NEW.owner_sensor_ref, NEW.local_ref
    );
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER validate_key_owner_trigger
    BEFORE INSERT OR UPDATE ON key
    FOR EACH ROW
    EXECUTE FUNCTION validate_key_owner();

-- History: every worker write to execution and worker fires these (M9@a354b9c;
-- record_execution_history as PIN last redefined it) ---------------------------------

CREATE OR REPLACE FUNCTION _jsonb_digest_summary(val JSONB)
RETURNS JSONB AS $$
BEGIN
    IF val IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN jsonb_build_object(
        'digest', 'md5:' || md5(val::text),
        'size',   octet_length(val::text),
        'type',   jsonb_typeof(val)
    );
END;
$$ LANGUAGE plpgsql IMMUTABLE;

CREATE TABLE execution_history (
    time             TIMESTAMPTZ    NOT NULL DEFAULT NOW(),
    operation        TEXT           NOT NULL,
    entity_id        BIGINT         NOT NULL,
    entity_ref       TEXT,
    changed_fields   TEXT[]         NOT NULL DEFAULT '{}',
    old_values       JSONB,
    new_values       JSONB
) PARTITION BY RANGE (time);
CREATE TABLE execution_history_default PARTITION OF execution_history DEFAULT;
CREATE INDEX idx_execution_history_entity ON execution_history (entity_id, time DESC);

CREATE TABLE worker_history (
    time             TIMESTAMPTZ    NOT NULL DEFAULT NOW(),
    operation        TEXT           NOT NULL,
    entity_id        BIGINT         NOT NULL,
    entity_ref       TEXT,
    changed_fields   TEXT[]         NOT NULL DEFAULT '{}',
    old_values       JSONB,
    new_values       JSONB
);
CREATE INDEX idx_worker_history_entity ON worker_history (entity_id, time DESC);

CREATE OR REPLACE FUNCTION record_execution_history()
RETURNS TRIGGER AS $$
DECLARE
    changed TEXT[] := '{}';
    old_vals JSONB := '{}';
    new_vals JSONB := '{}';
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO execution_history (time, operation, entity_id, entity_ref, changed_fields, old_values, new_values)
        VALUES (NOW(), 'INSERT', NEW.id, NEW.action_ref, '{}', NULL,
                jsonb_build_object(
                    'status', NEW.status,
                    'action_ref', NEW.action_ref,
                    'executor', NEW.executor,
                    'worker', NEW.worker,
                    'parent', NEW.parent,
                    'enforcement', NEW.enforcement,
                    'started_at', NEW.started_at,
                    'trace_tag', NEW.trace_tag,
                    'pack_release', NEW.pack_release,
                    'pack_release_digest', NEW.pack_release_digest,
                    'executable_snapshot', _jsonb_digest_summary(NEW.executable_snapshot)
                ));
        RETURN NEW;
    END IF;

    IF TG_OP = 'DELETE' THEN
        INSERT INTO execution_history (time, operation, entity_id, entity_ref, changed_fields, old_values, new_values)
        VALUES (NOW(), 'DELETE', OLD.id, OLD.action_ref, '{}', NULL, NULL);
        RETURN OLD;
    END IF;

    IF OLD.status IS DISTINCT FROM NEW.status THEN
        changed := array_append(changed, 'status');
        old_vals := old_vals || jsonb_build_object('status', OLD.status);
        new_vals := new_vals || jsonb_build_object('status', NEW.status);
    END IF;
    IF OLD.result IS DISTINCT FROM NEW.result THEN
        changed := array_append(changed, 'result');
        old_vals := old_vals || jsonb_build_object('result', _jsonb_digest_summary(OLD.result));
        new_vals := new_vals || jsonb_build_object('result', _jsonb_digest_summary(NEW.result));
    END IF;
    IF OLD.executor IS DISTINCT FROM NEW.executor THEN
        changed := array_append(changed, 'executor');
        old_vals := old_vals || jsonb_build_object('executor', OLD.executor);
        new_vals := new_vals || jsonb_build_object('executor', NEW.executor);
    END IF;
    IF OLD.worker IS DISTINCT FROM NEW.worker THEN
        changed := array_append(changed, 'worker');
        old_vals := old_vals || jsonb_build_object('worker', OLD.worker);
        new_vals := new_vals || jsonb_build_object('worker', NEW.worker);
    END IF;
    IF OLD.workflow_task IS DISTINCT FROM NEW.workflow_task THEN
        changed := array_append(changed, 'workflow_task');
        old_vals := old_vals || jsonb_build_object('workflow_task', OLD.workflow_task);
        new_vals := new_vals || jsonb_build_object('workflow_task', NEW.workflow_task);
    END IF;
    IF OLD.env_vars IS DISTINCT FROM NEW.env_vars THEN
        changed := array_append(changed, 'env_vars');
        old_vals := old_vals || jsonb_build_object('env_vars', _jsonb_digest_summary(OLD.env_vars));
        new_vals := new_vals || jsonb_build_object('env_vars', _jsonb_digest_summary(NEW.env_vars));
    END IF;
    IF OLD.started_at IS DISTINCT FROM NEW.started_at THEN
        changed := array_append(changed, 'started_at');
        old_vals := old_vals || jsonb_build_object('started_at', OLD.started_at);
        new_vals := new_vals || jsonb_build_object('started_at', NEW.started_at);
    END IF;
    IF OLD.trace_tag IS DISTINCT FROM NEW.trace_tag THEN
        changed := array_append(changed, 'trace_tag');
        old_vals := old_vals || jsonb_build_object('trace_tag', OLD.trace_tag);
        new_vals := new_vals || jsonb_build_object('trace_tag', NEW.trace_tag);
    END IF;
    IF OLD.pack_release IS DISTINCT FROM NEW.pack_release THEN
        changed := array_append(changed, 'pack_release');
        old_vals := old_vals || jsonb_build_object('pack_release', OLD.pack_release);
        new_vals := new_vals || jsonb_build_object('pack_release', NEW.pack_release);
    END IF;
    IF OLD.pack_release_digest IS DISTINCT FROM NEW.pack_release_digest THEN
        changed := array_append(changed, 'pack_release_digest');
        old_vals := old_vals || jsonb_build_object('pack_release_digest', OLD.pack_release_digest);
        new_vals := new_vals || jsonb_build_object('pack_release_digest', NEW.pack_release_digest);
    END IF;
    IF OLD.executable_snapshot IS DISTINCT FROM NEW.executable_snapshot THEN
        changed := array_append(changed, 'executable_snapshot');
        old_vals := old_vals || jsonb_build_object('executable_snapshot', _jsonb_digest_summary(OLD.executable_snapshot));
        new_vals := new_vals || jsonb_build_object('executable_snapshot', _jsonb_digest_summary(NEW.executable_snapshot));
    END IF;

    IF array_length(changed, 1) > 0 THEN
        INSERT INTO execution_history (time, operation, entity_id, entity_ref, changed_fields, old_values, new_values)
        VALUES (NOW(), 'UPDATE', NEW.id, NEW.action_ref, changed, old_vals, new_vals);
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION record_worker_history()
RETURNS TRIGGER AS $$
DECLARE
    changed TEXT[] := '{}';
    old_vals JSONB := '{}';
    new_vals JSONB := '{}';
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO worker_history (time, operation, entity_id, entity_ref, changed_fields, old_values, new_values)
        VALUES (NOW(), 'INSERT', NEW.id, NEW.name, '{}', NULL,
                jsonb_build_object(
                    'name', NEW.name,
                    'worker_type', NEW.worker_type,
                    'worker_role', NEW.worker_role,
                    'status', NEW.status,
                    'capabilities', NEW.capabilities,
                    'meta', NEW.meta,
                    'host', NEW.host,
                    'port', NEW.port,
                    'cordoned', NEW.cordoned,
                    'cordon_reason', NEW.cordon_reason,
                    'cordoned_by', NEW.cordoned_by,
                    'cordoned_at', NEW.cordoned_at
                ));
        RETURN NEW;
    END IF;

    IF TG_OP = 'DELETE' THEN
        INSERT INTO worker_history (time, operation, entity_id, entity_ref, changed_fields, old_values, new_values)
        VALUES (NOW(), 'DELETE', OLD.id, OLD.name, '{}', to_jsonb(OLD), NULL);
        RETURN OLD;
    END IF;

    IF OLD.name IS DISTINCT FROM NEW.name THEN
        changed := array_append(changed, 'name');
        old_vals := old_vals || jsonb_build_object('name', OLD.name);
        new_vals := new_vals || jsonb_build_object('name', NEW.name);
    END IF;
    IF OLD.status IS DISTINCT FROM NEW.status THEN
        changed := array_append(changed, 'status');
        old_vals := old_vals || jsonb_build_object('status', OLD.status);
        new_vals := new_vals || jsonb_build_object('status', NEW.status);
    END IF;
    IF OLD.capabilities IS DISTINCT FROM NEW.capabilities THEN
        changed := array_append(changed, 'capabilities');
        old_vals := old_vals || jsonb_build_object('capabilities', OLD.capabilities);
        new_vals := new_vals || jsonb_build_object('capabilities', NEW.capabilities);
    END IF;
    IF OLD.meta IS DISTINCT FROM NEW.meta THEN
        changed := array_append(changed, 'meta');
        old_vals := old_vals || jsonb_build_object('meta', OLD.meta);
        new_vals := new_vals || jsonb_build_object('meta', NEW.meta);
    END IF;
    IF OLD.host IS DISTINCT FROM NEW.host THEN
        changed := array_append(changed, 'host');
        old_vals := old_vals || jsonb_build_object('host', OLD.host);
        new_vals := new_vals || jsonb_build_object('host', NEW.host);
    END IF;
    IF OLD.port IS DISTINCT FROM NEW.port THEN
        changed := array_append(changed, 'port');
        old_vals := old_vals || jsonb_build_object('port', OLD.port);
        new_vals := new_vals || jsonb_build_object('port', NEW.port);
    END IF;
    IF OLD.cordoned IS DISTINCT FROM NEW.cordoned THEN
        changed := array_append(changed, 'cordoned');
        old_vals := old_vals || jsonb_build_object('cordoned', OLD.cordoned);
        new_vals := new_vals || jsonb_build_object('cordoned', NEW.cordoned);
    END IF;
    IF OLD.cordon_reason IS DISTINCT FROM NEW.cordon_reason THEN
        changed := array_append(changed, 'cordon_reason');
        old_vals := old_vals || jsonb_build_object('cordon_reason', OLD.cordon_reason);
        new_vals := new_vals || jsonb_build_object('cordon_reason', NEW.cordon_reason);
    END IF;
    IF OLD.cordoned_by IS DISTINCT FROM NEW.cordoned_by THEN
        changed := array_append(changed, 'cordoned_by');
        old_vals := old_vals || jsonb_build_object('cordoned_by', OLD.cordoned_by);
        new_vals := new_vals || jsonb_build_object('cordoned_by', NEW.cordoned_by);
    END IF;
    IF OLD.cordoned_at IS DISTINCT FROM NEW.cordoned_at THEN
        changed := array_append(changed, 'cordoned_at');
        old_vals := old_vals || jsonb_build_object('cordoned_at', OLD.cordoned_at);
        new_vals := new_vals || jsonb_build_object('cordoned_at', NEW.cordoned_at);
    END IF;

    IF array_length(changed, 1) > 0 THEN
        INSERT INTO worker_history (time, operation, entity_id, entity_ref, changed_fields, old_values, new_values)
        VALUES (NOW(), 'UPDATE', NEW.id, NEW.name, changed, old_vals, new_vals);
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER execution_history_trigger
    AFTER INSERT OR UPDATE OR DELETE ON execution
    FOR EACH ROW EXECUTE FUNCTION record_execution_history();
CREATE TRIGGER worker_history_trigger
    AFTER INSERT OR UPDATE OR DELETE ON worker
    FOR EACH ROW EXECUTE FUNCTION record_worker_history();

-- Execution notifications for the notifier (M5 triggers; the size guard of M20;
-- the functions as NTT last wrote them) ----------------------------------------------

CREATE OR REPLACE FUNCTION _notify_payload_guard(
    channel TEXT,
    full_payload TEXT,
    compact_payload TEXT
)
RETURNS VOID AS $$
BEGIN
    IF octet_length(full_payload) <= 7000 THEN
        PERFORM pg_notify(channel, full_payload);
    ELSE
        PERFORM pg_notify(channel, compact_payload);
    END IF;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION notify_execution_created()
RETURNS TRIGGER AS $$
DECLARE
    payload JSON;
    compact JSON;
    enforcement_rule_ref TEXT;
    enforcement_trigger_ref TEXT;
BEGIN
    IF NEW.enforcement IS NOT NULL THEN
        SELECT rule_ref, trigger_ref
        INTO enforcement_rule_ref, enforcement_trigger_ref
        FROM enforcement
        WHERE id = NEW.enforcement;
    END IF;

    payload := json_build_object(
        'entity_type', 'execution',
        'entity_id', NEW.id,
        'id', NEW.id,
        'action_id', NEW.action,
        'action_ref', NEW.action_ref,
        'status', NEW.status,
        'trace_tag', NEW.trace_tag,
        'enforcement', NEW.enforcement,
        'rule_ref', enforcement_rule_ref,
        'trigger_ref', enforcement_trigger_ref,
        'parent', NEW.parent,
        'started_at', NEW.started_at,
        'workflow_task', NEW.workflow_task,
        'created', NEW.created,
        'updated', NEW.updated,
        'auth_mode', 'full'
    );

    compact := json_build_object(
        'entity_type', 'execution',
        'entity_id', NEW.id,
        'id', NEW.id,
        'status', NEW.status,
        'trace_tag', NEW.trace_tag,
        'auth_mode', 'deferred'
    );

    PERFORM _notify_payload_guard('execution_created', payload::text, compact::text);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION notify_execution_status_changed()
RETURNS TRIGGER AS $$
DECLARE
    payload JSON;
    compact JSON;
    enforcement_rule_ref TEXT;
    enforcement_trigger_ref TEXT;
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status IS DISTINCT FROM NEW.status THEN
        IF NEW.enforcement IS NOT NULL THEN
            SELECT rule_ref, trigger_ref
            INTO enforcement_rule_ref, enforcement_trigger_ref
            FROM enforcement
            WHERE id = NEW.enforcement;
        END IF;

        payload := json_build_object(
            'entity_type', 'execution',
            'entity_id', NEW.id,
            'id', NEW.id,
            'action_id', NEW.action,
            'action_ref', NEW.action_ref,
            'status', NEW.status,
            'old_status', OLD.status,
            'trace_tag', NEW.trace_tag,
            'enforcement', NEW.enforcement,
            'rule_ref', enforcement_rule_ref,
            'trigger_ref', enforcement_trigger_ref,
            'parent', NEW.parent,
            'started_at', NEW.started_at,
            'workflow_task', NEW.workflow_task,
            'created', NEW.created,
            'updated', NEW.updated,
            'auth_mode', 'full'
        );

        compact := json_build_object(
            'entity_type', 'execution',
            'entity_id', NEW.id,
            'id', NEW.id,
            'status', NEW.status,
            'old_status', OLD.status,
            'trace_tag', NEW.trace_tag,
            'auth_mode', 'deferred'
        );

        PERFORM _notify_payload_guard('execution_status_changed', payload::text, compact::text);
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER execution_created_notify
    AFTER INSERT ON execution
    FOR EACH ROW EXECUTE FUNCTION notify_execution_created();
CREATE TRIGGER execution_status_changed_notify
    AFTER UPDATE ON execution
    FOR EACH ROW EXECUTE FUNCTION notify_execution_status_changed();

-- Runtime logs: artifact, artifact_version, log_stream (ATTUNE-TODAY 3.11, 5.8) ------
-- The tables as the migrations named on each part leave them, with the triggers
-- that fire on what a worker writes (the version's creation and its seal). Left
-- out: log_segment and the object-store tables (object_maintenance_ledger,
-- artifact_upload_grant) with their triggers, which a shared-file log never
-- reaches, and the COMMENT ON statements.

-- Enums: artifact_type_enum and artifact_visibility_enum from M1
-- (AndroxxTraxxon@39d7ccc); ALC; AOS with the value ACC adds (created whole here,
-- since a value added by ALTER TYPE cannot be used in the same transaction).
CREATE TYPE artifact_type_enum AS ENUM (
    'file_binary', 'file_datatable', 'file_image', 'file_text', 'other', 'progress', 'url');
CREATE TYPE artifact_visibility_enum AS ENUM ('public', 'private');
CREATE TYPE artifact_classification_enum AS ENUM ('general', 'runtime_log');
CREATE TYPE artifact_body_state_enum AS ENUM ('pending', 'ready', 'deleting', 'cleanup_claimed');
-- SFL
CREATE TYPE log_stream_backend_enum AS ENUM ('object_segments', 'shared_file');

-- artifact (M7; classification from ALC; the ref check from APC)
CREATE TABLE artifact (
    id BIGSERIAL PRIMARY KEY,
    ref TEXT NOT NULL,
    scope owner_type_enum NOT NULL DEFAULT 'system',
    owner TEXT NOT NULL DEFAULT '',
    type artifact_type_enum NOT NULL,
    visibility artifact_visibility_enum NOT NULL DEFAULT 'private',
    name TEXT,
    description TEXT,
    content_type TEXT,
    size_bytes BIGINT,
    data JSONB,
    retention_policy artifact_retention_enum NOT NULL DEFAULT 'versions',
    retention_limit INTEGER NOT NULL DEFAULT 1,
    created TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_artifact_ref ON artifact(ref);
CREATE INDEX idx_artifact_scope ON artifact(scope);
CREATE INDEX idx_artifact_owner ON artifact(owner);
CREATE INDEX idx_artifact_type ON artifact(type);
CREATE INDEX idx_artifact_created ON artifact(created DESC);
CREATE INDEX idx_artifact_scope_owner ON artifact(scope, owner);
CREATE INDEX idx_artifact_type_created ON artifact(type, created DESC);
CREATE INDEX idx_artifact_visibility ON artifact(visibility);
CREATE INDEX idx_artifact_visibility_scope ON artifact(visibility, scope, owner);
CREATE TRIGGER update_artifact_updated
    BEFORE UPDATE ON artifact FOR EACH ROW EXECUTE FUNCTION update_updated_column();
-- ALC
ALTER TABLE artifact
    ADD COLUMN IF NOT EXISTS classification artifact_classification_enum NOT NULL DEFAULT 'general';
CREATE INDEX IF NOT EXISTS idx_artifact_classification ON artifact(classification);
CREATE INDEX IF NOT EXISTS idx_artifact_classification_created ON artifact(classification, created DESC);

-- artifact_version (M7; the body columns of AOS and SMM; the check as ACC leaves it)
CREATE TABLE artifact_version (
    id BIGSERIAL PRIMARY KEY,
    artifact BIGINT NOT NULL REFERENCES artifact(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    execution BIGINT,
    content_type TEXT,
    size_bytes BIGINT,
    content BYTEA,
    content_json JSONB,
    file_path TEXT,
    meta JSONB,
    created_by TEXT,
    created TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
ALTER TABLE artifact_version
    ADD CONSTRAINT uq_artifact_version_artifact_version UNIQUE (artifact, version);
CREATE INDEX idx_artifact_name ON artifact(name);
CREATE INDEX idx_artifact_version_artifact ON artifact_version(artifact);
CREATE INDEX idx_artifact_version_artifact_version ON artifact_version(artifact, version DESC);
CREATE INDEX idx_artifact_version_created ON artifact_version(created DESC);
CREATE INDEX idx_artifact_version_file_path ON artifact_version(file_path) WHERE file_path IS NOT NULL;
CREATE INDEX idx_artifact_version_execution ON artifact_version(execution) WHERE execution IS NOT NULL;
CREATE INDEX idx_artifact_version_artifact_execution ON artifact_version(artifact, execution) WHERE execution IS NOT NULL;
-- AOS
ALTER TABLE artifact_version
    ADD COLUMN body_state artifact_body_state_enum,
    ADD COLUMN object_key TEXT,
    ADD COLUMN provider_version TEXT,
    ADD COLUMN sha256 TEXT;
CREATE UNIQUE INDEX uq_artifact_version_object_key
    ON artifact_version(object_key)
    WHERE object_key IS NOT NULL;
-- SMM
ALTER TABLE artifact_version
    ADD COLUMN body_updated TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    ADD COLUMN legacy_snapshot_expires_at TIMESTAMPTZ;
CREATE INDEX idx_artifact_version_body_maintenance
    ON artifact_version(body_state, body_updated, id)
    WHERE body_state IS NOT NULL;
-- ACC (the check AOS added, as SFL and then ACC replaced it)
ALTER TABLE artifact_version
    ADD CONSTRAINT ck_artifact_version_object_metadata CHECK (
        (body_state IS NULL AND object_key IS NULL AND provider_version IS NULL AND sha256 IS NULL)
        OR (
            body_state IN ('pending', 'cleanup_claimed')
            AND provider_version IS NULL
            AND sha256 IS NULL
            AND size_bytes IS NULL
        )
        OR (
            body_state IN ('ready', 'deleting')
            AND size_bytes IS NOT NULL
            AND size_bytes >= 0
            AND sha256 ~ '^[0-9a-f]{64}$'
            AND (
                (object_key IS NOT NULL AND provider_version IS NOT NULL)
                OR (object_key IS NULL AND provider_version IS NULL AND file_path IS NOT NULL)
            )
        )
    );
-- APC
ALTER TABLE artifact
    ADD CONSTRAINT artifact_ref_path_safe CHECK (
        ref <> ''
        AND ref = btrim(ref)
        AND ref !~ '(^\.|\.{2}|[/:\\]|\.$)'
    ) NOT VALID;
ALTER TABLE artifact_version
    ADD CONSTRAINT artifact_version_file_path_safe CHECK (
        file_path IS NULL
        OR (
            file_path <> ''
            AND file_path !~ '(^/|\\|(^|/)\.\.?(/|$)|//|/$|:)'
        )
    ) NOT VALID;

-- log_stream (ILS; backend from SFL)
CREATE TABLE log_stream (
    id BIGSERIAL PRIMARY KEY,
    artifact_version BIGINT NOT NULL UNIQUE REFERENCES artifact_version(id) ON DELETE CASCADE,
    max_unflushed_bytes BIGINT NOT NULL CHECK (max_unflushed_bytes > 0),
    max_unflushed_milliseconds BIGINT NOT NULL CHECK (max_unflushed_milliseconds > 0),
    next_sequence BIGINT NOT NULL DEFAULT 0 CHECK (next_sequence >= 0),
    total_bytes BIGINT NOT NULL DEFAULT 0 CHECK (total_bytes >= 0),
    truncated BOOLEAN NOT NULL DEFAULT FALSE,
    sealed BOOLEAN NOT NULL DEFAULT FALSE,
    created TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    sealed_at TIMESTAMPTZ
);
ALTER TABLE log_stream
    ADD COLUMN backend log_stream_backend_enum NOT NULL DEFAULT 'object_segments';

-- The body lifecycle guard (AOS; the function as ACC last wrote it)
CREATE OR REPLACE FUNCTION enforce_artifact_body_immutability()
RETURNS TRIGGER AS $$
BEGIN
    IF OLD.object_key IS NOT NULL AND NEW.object_key IS DISTINCT FROM OLD.object_key THEN
        RAISE EXCEPTION 'artifact object key is immutable';
    END IF;
    IF OLD.body_state IN ('ready', 'deleting') AND (
        NEW.provider_version IS DISTINCT FROM OLD.provider_version
        OR NEW.sha256 IS DISTINCT FROM OLD.sha256
        OR NEW.size_bytes IS DISTINCT FROM OLD.size_bytes
    ) THEN
        RAISE EXCEPTION 'ready artifact body metadata is immutable';
    END IF;
    IF OLD.body_state = 'ready' AND NEW.body_state NOT IN ('ready', 'deleting') THEN
        RAISE EXCEPTION 'ready artifact body can only transition to deleting';
    END IF;
    IF OLD.body_state IN ('deleting', 'cleanup_claimed') AND NEW.body_state <> OLD.body_state THEN
        RAISE EXCEPTION 'claimed artifact body cannot transition';
    END IF;
    IF NEW.body_state IS DISTINCT FROM OLD.body_state THEN
        NEW.body_updated = NOW();
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER trg_artifact_body_immutability
    BEFORE UPDATE ON artifact_version
    FOR EACH ROW
    EXECUTE FUNCTION enforce_artifact_body_immutability();

-- Version retention and the artifact's size (M7 trigger; the function as DAU
-- last wrote it; the ready trigger from BOR)
CREATE OR REPLACE FUNCTION enforce_artifact_retention()
RETURNS TRIGGER AS $$
DECLARE
    v_policy artifact_retention_enum;
    v_limit INTEGER;
BEGIN
    IF NEW.body_state = 'pending' OR NEW.body_state = 'deleting' THEN
        RETURN NEW;
    END IF;

    SELECT retention_policy, retention_limit INTO v_policy, v_limit
    FROM artifact WHERE id = NEW.artifact;

    IF v_policy = 'versions' AND v_limit > 0 THEN
        DELETE FROM artifact_version
        WHERE id IN (
            SELECT stale.id FROM artifact_version stale
            WHERE stale.artifact = NEW.artifact
              AND (stale.body_state IS NULL OR stale.body_state = 'ready')
              AND NOT EXISTS (
                  SELECT 1 FROM log_stream stream
                  WHERE stream.artifact_version = stale.id
                    AND stream.backend = 'shared_file'
              )
              AND stale.id NOT IN (
                  SELECT kept.id FROM artifact_version kept
                  WHERE kept.artifact = NEW.artifact
                    AND (kept.body_state IS NULL OR kept.body_state = 'ready')
                  ORDER BY kept.version DESC LIMIT v_limit
              )
            ORDER BY stale.version ASC LIMIT 100
        );
    END IF;

    UPDATE artifact
    SET size_bytes = NEW.size_bytes,
        content_type = COALESCE(NEW.content_type, content_type)
    WHERE id = NEW.artifact
      AND NEW.version = (
          SELECT MAX(latest.version) FROM artifact_version latest
          WHERE latest.artifact = NEW.artifact
            AND (latest.body_state IS NULL OR latest.body_state = 'ready')
      );
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER trg_enforce_artifact_retention
    AFTER INSERT ON artifact_version
    FOR EACH ROW
    EXECUTE FUNCTION enforce_artifact_retention();
CREATE TRIGGER trg_enforce_artifact_retention_ready
    AFTER UPDATE OF body_state ON artifact_version
    FOR EACH ROW
    WHEN (OLD.body_state = 'pending' AND NEW.body_state = 'ready')
    EXECUTE FUNCTION enforce_artifact_retention();

-- Artifact notifications (M7 triggers; the functions as M20 last wrote them)
CREATE OR REPLACE FUNCTION notify_artifact_created()
RETURNS TRIGGER AS $$
DECLARE
    payload JSON;
    compact JSON;
BEGIN
    payload := json_build_object(
        'entity_type', 'artifact',
        'entity_id', NEW.id,
        'id', NEW.id,
        'ref', NEW.ref,
        'type', NEW.type,
        'visibility', NEW.visibility,
        'classification', NEW.classification,
        'name', NEW.name,
        'scope', NEW.scope,
        'owner', NEW.owner,
        'content_type', NEW.content_type,
        'size_bytes', NEW.size_bytes,
        'created', NEW.created,
        'auth_mode', 'full'
    );

    compact := json_build_object(
        'entity_type', 'artifact',
        'entity_id', NEW.id,
        'id', NEW.id,
        'ref', NEW.ref,
        'type', NEW.type,
        'visibility', NEW.visibility,
        'scope', NEW.scope,
        'owner', NEW.owner,
        'auth_mode', 'deferred'
    );

    PERFORM _notify_payload_guard('artifact_created', payload::text, compact::text);

    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION notify_artifact_updated()
RETURNS TRIGGER AS $$
DECLARE
    payload JSON;
    compact JSON;
    latest_percent DOUBLE PRECISION;
    latest_message TEXT;
    entry_count INTEGER;
    latest_execution BIGINT;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        SELECT av.execution
        INTO latest_execution
        FROM artifact_version av
        WHERE av.artifact = NEW.id
        ORDER BY av.version DESC
        LIMIT 1;

        IF NEW.type = 'progress' AND NEW.data IS NOT NULL AND jsonb_typeof(NEW.data) = 'array' THEN
            entry_count := jsonb_array_length(NEW.data);
            IF entry_count > 0 THEN
                latest_percent := (NEW.data -> (entry_count - 1) ->> 'percent')::DOUBLE PRECISION;
                latest_message := NEW.data -> (entry_count - 1) ->> 'message';
            END IF;
        END IF;

        payload := json_build_object(
            'entity_type', 'artifact',
            'entity_id', NEW.id,
            'id', NEW.id,
            'ref', NEW.ref,
            'type', NEW.type,
            'visibility', NEW.visibility,
            'classification', NEW.classification,
            'name', NEW.name,
            'scope', NEW.scope,
            'owner', NEW.owner,
            'content_type', NEW.content_type,
            'size_bytes', NEW.size_bytes,
            'execution', latest_execution,
            'progress_percent', latest_percent,
            'progress_message', latest_message,
            'progress_entries', entry_count,
            'created', NEW.created,
            'updated', NEW.updated,
            'auth_mode', 'full'
        );

        compact := json_build_object(
            'entity_type', 'artifact',
            'entity_id', NEW.id,
            'id', NEW.id,
            'ref', NEW.ref,
            'type', NEW.type,
            'visibility', NEW.visibility,
            'scope', NEW.scope,
            'owner', NEW.owner,
            'execution', latest_execution,
            'progress_percent', latest_percent,
            'progress_entries', entry_count,
            'auth_mode', 'deferred'
        );

        PERFORM _notify_payload_guard('artifact_updated', payload::text, compact::text);
    END IF;

    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION notify_artifact_version_changed()
RETURNS TRIGGER AS $$
DECLARE
    artifact_row artifact%ROWTYPE;
    payload JSON;
    compact JSON;
    latest_percent DOUBLE PRECISION;
    latest_message TEXT;
    entry_count INTEGER;
BEGIN
    SELECT *
    INTO artifact_row
    FROM artifact
    WHERE id = NEW.artifact;

    IF NOT FOUND THEN
        RETURN NEW;
    END IF;

    IF artifact_row.type = 'progress'
        AND artifact_row.data IS NOT NULL
        AND jsonb_typeof(artifact_row.data) = 'array'
    THEN
        entry_count := jsonb_array_length(artifact_row.data);
        IF entry_count > 0 THEN
            latest_percent := (artifact_row.data -> (entry_count - 1) ->> 'percent')::DOUBLE PRECISION;
            latest_message := artifact_row.data -> (entry_count - 1) ->> 'message';
        END IF;
    END IF;

    payload := json_build_object(
        'entity_type', 'artifact',
        'entity_id', artifact_row.id,
        'id', artifact_row.id,
        'ref', artifact_row.ref,
        'type', artifact_row.type,
        'visibility', artifact_row.visibility,
        'classification', artifact_row.classification,
        'name', artifact_row.name,
        'scope', artifact_row.scope,
        'owner', artifact_row.owner,
        'content_type', COALESCE(NEW.content_type, artifact_row.content_type),
        'size_bytes', COALESCE(NEW.size_bytes, artifact_row.size_bytes),
        'execution', NEW.execution,
        'artifact_version_id', NEW.id,
        'version', NEW.version,
        'progress_percent', latest_percent,
        'progress_message', latest_message,
        'progress_entries', entry_count,
        'created', artifact_row.created,
        'updated', NOW(),
        'auth_mode', 'full'
    );

    compact := json_build_object(
        'entity_type', 'artifact',
        'entity_id', artifact_row.id,
        'id', artifact_row.id,
        'ref', artifact_row.ref,
        'type', artifact_row.type,
        'visibility', artifact_row.visibility,
        'scope', artifact_row.scope,
        'owner', artifact_row.owner,
        'execution', NEW.execution,
        'artifact_version_id', NEW.id,
        'version', NEW.version,
        'progress_percent', latest_percent,
        'progress_entries', entry_count,
        'auth_mode', 'deferred'
    );

    PERFORM _notify_payload_guard('artifact_updated', payload::text, compact::text);

    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER artifact_created_notify
    AFTER INSERT ON artifact
    FOR EACH ROW
    EXECUTE FUNCTION notify_artifact_created();
CREATE TRIGGER artifact_updated_notify
    AFTER UPDATE ON artifact
    FOR EACH ROW
    EXECUTE FUNCTION notify_artifact_updated();
CREATE TRIGGER artifact_version_notify
    AFTER INSERT OR UPDATE OF size_bytes, file_path, content, content_json ON artifact_version
    FOR EACH ROW
    EXECUTE FUNCTION notify_artifact_version_changed();

-- LSN
CREATE OR REPLACE FUNCTION notify_log_stream_changed()
RETURNS TRIGGER AS $$
BEGIN
    PERFORM pg_notify(
        'log_stream_changed',
        json_build_object(
            'stream_id', NEW.id,
            'artifact_version_id', NEW.artifact_version,
            'total_bytes', NEW.total_bytes,
            'sealed', NEW.sealed
        )::text
    );
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER log_stream_changed_notify
    AFTER UPDATE OF total_bytes, sealed ON log_stream
    FOR EACH ROW
    WHEN (OLD.total_bytes IS DISTINCT FROM NEW.total_bytes OR OLD.sealed IS DISTINCT FROM NEW.sealed)
    EXECUTE FUNCTION notify_log_stream_changed();
