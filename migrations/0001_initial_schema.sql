-- The attune schema of CONTRACT.md section 1: enums, the tables the worker and
-- attunectl use, their constraints and indexes, and the `updated` triggers.
-- Applied once by `attunectl migrate` (recorded in attune.schema_migrations).

CREATE SCHEMA IF NOT EXISTS attune;

-- Enums -------------------------------------------------------------------------

CREATE TYPE attune.execution_status_enum AS ENUM (
    'requested', 'scheduling', 'scheduled', 'running', 'completed',
    'failed', 'canceling', 'cancelled', 'timeout', 'abandoned');
CREATE TYPE attune.worker_type_enum AS ENUM ('local', 'remote', 'container');
CREATE TYPE attune.worker_status_enum AS ENUM ('active', 'inactive', 'busy', 'error');
CREATE TYPE attune.owner_type_enum AS ENUM ('system', 'identity', 'pack', 'action', 'sensor');
CREATE TYPE attune.runtime_type_enum AS ENUM ('action', 'sensor');

-- Every table's `updated` follows its last change.
CREATE FUNCTION attune.set_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated := NOW();
    RETURN NEW;
END
$$;

-- pack --------------------------------------------------------------------------

CREATE TABLE attune.pack (
    id            BIGSERIAL PRIMARY KEY,
    ref           TEXT NOT NULL UNIQUE CONSTRAINT pack_ref_format CHECK (ref ~ '^[a-z][a-z0-9_-]+$'),
    label         TEXT NOT NULL,
    description   TEXT,
    version       TEXT NOT NULL CONSTRAINT pack_version_semver
                  CHECK (version ~ '^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$'),
    conf_schema   JSONB NOT NULL DEFAULT '{}',
    config        JSONB NOT NULL DEFAULT '{}',
    meta          JSONB NOT NULL DEFAULT '{}',
    tags          TEXT[] NOT NULL DEFAULT '{}',
    runtime_deps  TEXT[] NOT NULL DEFAULT '{}',
    is_standard   BOOLEAN NOT NULL DEFAULT false,
    created       TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated       TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- runtime -----------------------------------------------------------------------

CREATE TABLE attune.runtime (
    id            BIGSERIAL PRIMARY KEY,
    ref           TEXT NOT NULL UNIQUE,
    pack          BIGINT REFERENCES attune.pack (id) ON DELETE CASCADE,
    pack_ref      TEXT,
    description   TEXT,
    runtime_type  attune.runtime_type_enum NOT NULL DEFAULT 'action',
    name          TEXT NOT NULL,
    distributions JSONB NOT NULL DEFAULT '{}',
    installation  JSONB,
    created       TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated       TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX runtime_pack_idx ON attune.runtime (pack);

-- action ------------------------------------------------------------------------

CREATE TABLE attune.action (
    id                 BIGSERIAL PRIMARY KEY,
    ref                TEXT NOT NULL UNIQUE,
    pack               BIGINT NOT NULL REFERENCES attune.pack (id) ON DELETE CASCADE,
    pack_ref           TEXT NOT NULL,
    label              TEXT NOT NULL,
    description        TEXT,
    entrypoint         TEXT NOT NULL,
    runtime            BIGINT REFERENCES attune.runtime (id) ON DELETE SET NULL,
    param_schema       JSONB,
    out_schema         JSONB,
    parameter_delivery TEXT NOT NULL DEFAULT 'stdin'
                       CONSTRAINT action_parameter_delivery_check
                       CHECK (parameter_delivery IN ('stdin', 'file')),
    parameter_format   TEXT NOT NULL DEFAULT 'json'
                       CONSTRAINT action_parameter_format_check
                       CHECK (parameter_format IN ('dotenv', 'json', 'yaml')),
    output_format      TEXT NOT NULL DEFAULT 'text'
                       CONSTRAINT action_output_format_check
                       CHECK (output_format IN ('text', 'json', 'yaml', 'jsonl')),
    is_adhoc           BOOLEAN NOT NULL DEFAULT false,
    timeout_seconds    INTEGER CONSTRAINT action_timeout_positive CHECK (timeout_seconds > 0),
    created            TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated            TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CONSTRAINT action_ref_in_pack CHECK (ref LIKE pack_ref || '.%')
);
CREATE INDEX action_pack_idx ON attune.action (pack);
CREATE INDEX action_runtime_idx ON attune.action (runtime);

-- worker ------------------------------------------------------------------------

CREATE TABLE attune.worker (
    id             BIGSERIAL PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    worker_type    attune.worker_type_enum NOT NULL DEFAULT 'local',
    runtime        BIGINT REFERENCES attune.runtime (id) ON DELETE SET NULL,
    host           TEXT,
    port           INTEGER,
    status         attune.worker_status_enum NOT NULL DEFAULT 'inactive',
    capabilities   JSONB NOT NULL DEFAULT '{}',
    meta           JSONB NOT NULL DEFAULT '{}',
    last_heartbeat TIMESTAMPTZ,
    created        TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated        TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX worker_status_idx ON attune.worker (status);

-- execution ---------------------------------------------------------------------

CREATE TABLE attune.execution (
    id              BIGSERIAL PRIMARY KEY,
    action          BIGINT REFERENCES attune.action (id) ON DELETE SET NULL,
    action_ref      TEXT NOT NULL,
    config          JSONB,
    parent          BIGINT REFERENCES attune.execution (id) ON DELETE SET NULL,
    enforcement     BIGINT,
    executor        BIGINT,
    status          attune.execution_status_enum NOT NULL DEFAULT 'requested',
    result          JSONB,
    worker          BIGINT REFERENCES attune.worker (id) ON DELETE SET NULL,
    started_at      TIMESTAMPTZ,
    timeout_seconds INTEGER CONSTRAINT execution_timeout_positive CHECK (timeout_seconds > 0),
    env_vars        JSONB CONSTRAINT execution_env_vars_object
                    CHECK (env_vars IS NULL OR jsonb_typeof(env_vars) = 'object'),
    created         TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated         TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX execution_status_idx ON attune.execution (status);
CREATE INDEX execution_worker_idx ON attune.execution (worker);
CREATE INDEX execution_action_idx ON attune.execution (action);
CREATE INDEX execution_parent_idx ON attune.execution (parent);
CREATE INDEX execution_created_idx ON attune.execution (created);

-- key ---------------------------------------------------------------------------

CREATE TABLE attune.key (
    id                  BIGSERIAL PRIMARY KEY,
    ref                 TEXT NOT NULL UNIQUE,
    owner_type          attune.owner_type_enum NOT NULL,
    owner               TEXT NOT NULL,
    owner_identity      BIGINT,
    owner_pack          BIGINT REFERENCES attune.pack (id) ON DELETE CASCADE,
    owner_pack_ref      TEXT,
    owner_action        BIGINT REFERENCES attune.action (id) ON DELETE CASCADE,
    owner_action_ref    TEXT,
    owner_sensor        BIGINT,
    owner_sensor_ref    TEXT,
    name                TEXT NOT NULL,
    encrypted           BOOLEAN NOT NULL DEFAULT false,
    encryption_key_hash TEXT,
    value               TEXT NOT NULL,
    created             TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated             TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CONSTRAINT key_owner_name_unique UNIQUE (owner_type, owner, name)
);
CREATE INDEX key_owner_idx ON attune.key (owner_type, owner);
CREATE INDEX key_owner_pack_idx ON attune.key (owner_pack);
CREATE INDEX key_owner_action_idx ON attune.key (owner_action);

-- updated triggers --------------------------------------------------------------

CREATE TRIGGER pack_updated BEFORE UPDATE ON attune.pack
    FOR EACH ROW EXECUTE FUNCTION attune.set_updated();
CREATE TRIGGER runtime_updated BEFORE UPDATE ON attune.runtime
    FOR EACH ROW EXECUTE FUNCTION attune.set_updated();
CREATE TRIGGER action_updated BEFORE UPDATE ON attune.action
    FOR EACH ROW EXECUTE FUNCTION attune.set_updated();
CREATE TRIGGER worker_updated BEFORE UPDATE ON attune.worker
    FOR EACH ROW EXECUTE FUNCTION attune.set_updated();
CREATE TRIGGER execution_updated BEFORE UPDATE ON attune.execution
    FOR EACH ROW EXECUTE FUNCTION attune.set_updated();
CREATE TRIGGER key_updated BEFORE UPDATE ON attune.key
    FOR EACH ROW EXECUTE FUNCTION attune.set_updated();
