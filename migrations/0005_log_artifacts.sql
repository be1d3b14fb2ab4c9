-- The rows Attune keeps for an execution's stdout and stderr: artifact,
-- artifact_version and log_stream, with the same names, types, enums, defaults,
-- NOT NULL, CHECK, UNIQUE and foreign-key constraints and indexes as upstream's
-- migrations (20250101000007_supporting_systems, ..._017_artifact_log_classification,
-- ..._025_artifact_path_constraints, 20260909000003/04/06, 20260912000001/02/03;
-- tests/attune/upstream_schema.sql names each). Not here: upstream's notification,
-- retention and body-lifecycle triggers, log_segment and the object-store tables,
-- which only Attune's own services use. Also the action's log retention override
-- (action.log_retention_policy, log_retention_limit), which the worker reads.

-- Enums ---------------------------------------------------------------------------

CREATE TYPE attune.artifact_type_enum AS ENUM (
    'file_binary', 'file_datatable', 'file_image', 'file_text', 'other', 'progress', 'url');
CREATE TYPE attune.artifact_visibility_enum AS ENUM ('public', 'private');
CREATE TYPE attune.artifact_retention_enum AS ENUM ('versions', 'days', 'hours', 'minutes');
CREATE TYPE attune.artifact_classification_enum AS ENUM ('general', 'runtime_log');
CREATE TYPE attune.artifact_body_state_enum AS ENUM (
    'pending', 'ready', 'deleting', 'cleanup_claimed');
CREATE TYPE attune.log_stream_backend_enum AS ENUM ('object_segments', 'shared_file');

-- action: the log retention an action may set -----------------------------------------

ALTER TABLE attune.action
    ADD COLUMN log_retention_policy attune.artifact_retention_enum,
    ADD COLUMN log_retention_limit INTEGER,
    ADD CONSTRAINT action_log_retention_limit_positive
        CHECK (log_retention_limit IS NULL OR log_retention_limit > 0);

-- artifact ---------------------------------------------------------------------------

CREATE TABLE attune.artifact (
    id               BIGSERIAL PRIMARY KEY,
    ref              TEXT NOT NULL,
    scope            attune.owner_type_enum NOT NULL DEFAULT 'system',
    owner            TEXT NOT NULL DEFAULT '',
    type             attune.artifact_type_enum NOT NULL,
    visibility       attune.artifact_visibility_enum NOT NULL DEFAULT 'private',
    name             TEXT,
    description      TEXT,
    content_type     TEXT,
    size_bytes       BIGINT,
    data             JSONB,
    retention_policy attune.artifact_retention_enum NOT NULL DEFAULT 'versions',
    retention_limit  INTEGER NOT NULL DEFAULT 1,
    classification   attune.artifact_classification_enum NOT NULL DEFAULT 'general',
    created          TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated          TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CONSTRAINT artifact_ref_path_safe CHECK (
        ref <> '' AND ref = btrim(ref) AND ref !~ '(^\.|\.{2}|[/:\\]|\.$)')
);
CREATE INDEX idx_artifact_ref ON attune.artifact (ref);
CREATE INDEX idx_artifact_scope_owner ON attune.artifact (scope, owner);
CREATE INDEX idx_artifact_created ON attune.artifact (created DESC);
CREATE INDEX idx_artifact_classification ON attune.artifact (classification);
CREATE TRIGGER artifact_updated BEFORE UPDATE ON attune.artifact
    FOR EACH ROW EXECUTE FUNCTION attune.set_updated();

-- artifact_version ---------------------------------------------------------------------

CREATE TABLE attune.artifact_version (
    id                         BIGSERIAL PRIMARY KEY,
    artifact                   BIGINT NOT NULL REFERENCES attune.artifact (id) ON DELETE CASCADE,
    version                    INTEGER NOT NULL,
    execution                  BIGINT,
    content_type               TEXT,
    size_bytes                 BIGINT,
    content                    BYTEA,
    content_json               JSONB,
    file_path                  TEXT,
    meta                       JSONB,
    created_by                 TEXT,
    created                    TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    body_state                 attune.artifact_body_state_enum,
    object_key                 TEXT,
    provider_version           TEXT,
    sha256                     TEXT,
    body_updated               TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    legacy_snapshot_expires_at TIMESTAMPTZ,
    CONSTRAINT uq_artifact_version_artifact_version UNIQUE (artifact, version),
    CONSTRAINT artifact_version_file_path_safe CHECK (
        file_path IS NULL
        OR (file_path <> '' AND file_path !~ '(^/|\\|(^|/)\.\.?(/|$)|//|/$|:)')),
    CONSTRAINT ck_artifact_version_object_metadata CHECK (
        (body_state IS NULL AND object_key IS NULL AND provider_version IS NULL AND sha256 IS NULL)
        OR (body_state IN ('pending', 'cleanup_claimed') AND provider_version IS NULL
            AND sha256 IS NULL AND size_bytes IS NULL)
        OR (body_state IN ('ready', 'deleting') AND size_bytes IS NOT NULL AND size_bytes >= 0
            AND sha256 ~ '^[0-9a-f]{64}$'
            AND ((object_key IS NOT NULL AND provider_version IS NOT NULL)
                 OR (object_key IS NULL AND provider_version IS NULL AND file_path IS NOT NULL))))
);
CREATE UNIQUE INDEX uq_artifact_version_object_key ON attune.artifact_version (object_key)
    WHERE object_key IS NOT NULL;
CREATE INDEX idx_artifact_version_artifact_version ON attune.artifact_version (artifact, version DESC);
CREATE INDEX idx_artifact_version_execution ON attune.artifact_version (execution)
    WHERE execution IS NOT NULL;
CREATE INDEX idx_artifact_version_artifact_execution ON attune.artifact_version (artifact, execution)
    WHERE execution IS NOT NULL;
CREATE INDEX idx_artifact_version_file_path ON attune.artifact_version (file_path)
    WHERE file_path IS NOT NULL;

-- log_stream ------------------------------------------------------------------------------

CREATE TABLE attune.log_stream (
    id                         BIGSERIAL PRIMARY KEY,
    artifact_version           BIGINT NOT NULL UNIQUE
                               REFERENCES attune.artifact_version (id) ON DELETE CASCADE,
    max_unflushed_bytes        BIGINT NOT NULL CHECK (max_unflushed_bytes > 0),
    max_unflushed_milliseconds BIGINT NOT NULL CHECK (max_unflushed_milliseconds > 0),
    next_sequence              BIGINT NOT NULL DEFAULT 0 CHECK (next_sequence >= 0),
    total_bytes                BIGINT NOT NULL DEFAULT 0 CHECK (total_bytes >= 0),
    truncated                  BOOLEAN NOT NULL DEFAULT FALSE,
    sealed                     BOOLEAN NOT NULL DEFAULT FALSE,
    created                    TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    sealed_at                  TIMESTAMPTZ,
    backend                    attune.log_stream_backend_enum NOT NULL DEFAULT 'object_segments'
);
