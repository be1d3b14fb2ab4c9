-- The schema as Attune runs it today, for every table the worker and attunectl
-- touch: the same table and column names, types, enums and constraints as
-- upstream's migrations (a subset of their tables and columns). Rows of 0001
-- and 0002 are kept and converted in place.
--
-- Encrypted keys cannot be re-encrypted here (SQL has no key): their old
-- ciphertext is kept as a JSON string and the row is listed in
-- attune.key_legacy_ciphertext; `attunectl migrate` re-encrypts them with
-- security.encryption_key in the same transaction and empties that list.

-- Enums ---------------------------------------------------------------------------

CREATE TYPE attune.worker_role_enum AS ENUM ('action', 'sensor');
-- 0001 already has it; a database made by hand may not.
ALTER TYPE attune.execution_status_enum ADD VALUE IF NOT EXISTS 'canceling' BEFORE 'cancelled';

-- identity (subset) -----------------------------------------------------------------

CREATE TABLE attune.identity (
    id           BIGSERIAL PRIMARY KEY,
    login        TEXT NOT NULL UNIQUE,
    display_name TEXT,
    attributes   JSONB NOT NULL DEFAULT '{}',
    created      TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated      TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE TRIGGER identity_updated BEFORE UPDATE ON attune.identity
    FOR EACH ROW EXECUTE FUNCTION attune.set_updated();

-- enforcement (subset: what a worker reads) ------------------------------------------

CREATE TABLE attune.enforcement (
    id          BIGSERIAL PRIMARY KEY,
    rule        BIGINT,
    rule_ref    TEXT NOT NULL,
    trigger_ref TEXT NOT NULL,
    config      JSONB,
    event       BIGINT,
    payload     JSONB NOT NULL,
    created     TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- runtime, runtime_version ------------------------------------------------------------

ALTER TABLE attune.runtime
    ADD COLUMN aliases TEXT[] NOT NULL DEFAULT '{}',
    ADD COLUMN execution_config JSONB NOT NULL DEFAULT '{}';
-- Upstream lists a runtime's own name among its aliases.
UPDATE attune.runtime SET aliases = ARRAY[lower(name)];

CREATE TABLE attune.runtime_version (
    id               BIGSERIAL PRIMARY KEY,
    runtime          BIGINT NOT NULL REFERENCES attune.runtime (id) ON DELETE CASCADE,
    runtime_ref      TEXT NOT NULL,
    version          TEXT NOT NULL,
    version_major    INTEGER,
    version_minor    INTEGER,
    version_patch    INTEGER,
    execution_config JSONB NOT NULL DEFAULT '{}',
    distributions    JSONB NOT NULL DEFAULT '{}',
    is_default       BOOLEAN NOT NULL DEFAULT false,
    available        BOOLEAN NOT NULL DEFAULT true,
    verified_at      TIMESTAMPTZ,
    meta             JSONB NOT NULL DEFAULT '{}',
    retired_at       TIMESTAMPTZ,
    created          TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated          TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CONSTRAINT runtime_version_unique UNIQUE (runtime, version)
);
CREATE INDEX runtime_version_runtime_idx ON attune.runtime_version (runtime);
CREATE TRIGGER runtime_version_updated BEFORE UPDATE ON attune.runtime_version
    FOR EACH ROW EXECUTE FUNCTION attune.set_updated();

-- pack_release, pack.active_release -----------------------------------------------------

CREATE TABLE attune.pack_release (
    id           BIGSERIAL PRIMARY KEY,
    pack         BIGINT NOT NULL REFERENCES attune.pack (id) ON DELETE CASCADE,
    pack_ref     TEXT NOT NULL,
    version      TEXT NOT NULL,
    digest       TEXT NOT NULL,
    archive_path TEXT NOT NULL,
    content_path TEXT NOT NULL,
    archive_size BIGINT NOT NULL CHECK (archive_size >= 0),
    manifest     JSONB NOT NULL,
    created      TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CONSTRAINT pack_release_pack_version_unique UNIQUE (pack, version),
    CONSTRAINT pack_release_pack_id_unique UNIQUE (pack, id),
    CONSTRAINT pack_release_digest_sha256 CHECK (digest ~ '^[0-9a-f]{64}$'),
    CONSTRAINT pack_release_manifest_object CHECK (jsonb_typeof(manifest) = 'object')
);
CREATE INDEX pack_release_digest_idx ON attune.pack_release (digest);

ALTER TABLE attune.pack
    ADD COLUMN active_release BIGINT,
    ADD CONSTRAINT pack_active_release_same_pack FOREIGN KEY (id, active_release)
        REFERENCES attune.pack_release (pack, id) DEFERRABLE INITIALLY DEFERRED;

-- worker ------------------------------------------------------------------------------

-- Every worker registered so far ran actions.
ALTER TABLE attune.worker
    ADD COLUMN worker_role attune.worker_role_enum NOT NULL DEFAULT 'action',
    ADD COLUMN cordoned BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN cordon_reason TEXT,
    ADD COLUMN cordoned_by BIGINT REFERENCES attune.identity (id) ON DELETE SET NULL,
    ADD COLUMN cordoned_at TIMESTAMPTZ,
    ALTER COLUMN capabilities DROP NOT NULL,
    ALTER COLUMN meta DROP NOT NULL;
-- As upstream: whoever registers a worker says what it is.
ALTER TABLE attune.worker ALTER COLUMN worker_role DROP DEFAULT;
CREATE INDEX worker_role_cordoned_status_idx ON attune.worker (worker_role, cordoned, status);

-- execution ---------------------------------------------------------------------------

-- The references to identity and enforcement were plain numbers until now:
-- NOT VALID keeps rows that name no such row, and checks every new one.
ALTER TABLE attune.execution
    ADD COLUMN permission_set_refs TEXT[] NOT NULL DEFAULT '{}',
    ADD COLUMN trace_tag TEXT,
    ADD COLUMN pack_release BIGINT REFERENCES attune.pack_release (id) ON DELETE SET NULL,
    ADD COLUMN pack_release_digest TEXT,
    ADD COLUMN executable_snapshot JSONB,
    ADD CONSTRAINT execution_release_pin_complete CHECK (
        (pack_release IS NULL AND pack_release_digest IS NULL AND executable_snapshot IS NULL)
        OR (pack_release_digest IS NOT NULL AND executable_snapshot IS NOT NULL)),
    ADD CONSTRAINT execution_release_digest_sha256 CHECK (
        pack_release_digest IS NULL OR pack_release_digest ~ '^[0-9a-f]{64}$'),
    ADD CONSTRAINT execution_executor_fkey FOREIGN KEY (executor)
        REFERENCES attune.identity (id) ON DELETE SET NULL NOT VALID,
    ADD CONSTRAINT execution_enforcement_fkey FOREIGN KEY (enforcement)
        REFERENCES attune.enforcement (id) ON DELETE SET NULL NOT VALID;
CREATE INDEX execution_enforcement_idx ON attune.execution (enforcement);
CREATE INDEX execution_executor_idx ON attune.execution (executor);

-- execution_secret_value ----------------------------------------------------------------

CREATE TABLE attune.execution_secret_value (
    id                  BIGSERIAL PRIMARY KEY,
    entity_type         TEXT NOT NULL,
    entity_id           BIGINT NOT NULL,
    json_path           TEXT NOT NULL,
    source_kind         TEXT NOT NULL,
    source_ref          TEXT,
    encrypted_value     JSONB NOT NULL,
    encryption_key_hash TEXT,
    created             TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    UNIQUE (entity_type, entity_id, json_path)
);

-- key ---------------------------------------------------------------------------------

-- The canonical ref of a key: the owner's scope, then the local ref.
CREATE FUNCTION attune.canonical_key_ref(p_owner_type attune.owner_type_enum,
                                         p_owner_identity_login TEXT, p_owner_pack_ref TEXT,
                                         p_owner_action_ref TEXT, p_owner_sensor_ref TEXT,
                                         p_local_ref TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_owner_type
        WHEN 'system' THEN 'system.' || p_local_ref
        WHEN 'identity' THEN 'identity.' || p_owner_identity_login || '.' || p_local_ref
        WHEN 'pack' THEN 'pack.' || p_owner_pack_ref || '.' || p_local_ref
        WHEN 'action' THEN 'action.' || p_owner_action_ref || '.' || p_local_ref
        WHEN 'sensor' THEN 'sensor.' || p_owner_sensor_ref || '.' || p_local_ref
    END
$$;

DO $$
BEGIN
    -- attunectl never wrote these, and there is no identity or sensor row to name them by.
    IF EXISTS (SELECT 1 FROM attune.key WHERE owner_type IN ('identity', 'sensor')) THEN
        RAISE EXCEPTION 'the key table has keys owned by an identity or a sensor, which this '
                        'migration cannot convert; remove them and migrate again';
    END IF;
END
$$;

-- Refs may meet mid-way through the rewrite; uniqueness is checked again at the end.
ALTER TABLE attune.key DROP CONSTRAINT key_ref_key;
ALTER TABLE attune.key ADD COLUMN local_ref TEXT, ALTER COLUMN owner DROP NOT NULL;

-- The owner column names the owner by ref, no longer by id.
UPDATE attune.key k SET owner = p.ref, owner_pack_ref = p.ref
    FROM attune.pack p WHERE k.owner_type = 'pack' AND k.owner_pack = p.id;
UPDATE attune.key k SET owner = a.ref, owner_action_ref = a.ref
    FROM attune.action a WHERE k.owner_type = 'action' AND k.owner_action = a.id;

-- A name that is not a valid local ref (upper case, too long) gets a derived
-- one; the name itself, which actions pass to get_secret, is kept.
UPDATE attune.key SET local_ref = CASE
    WHEN name ~ '^[a-z0-9][a-z0-9_-]{0,62}$' THEN name
    ELSE left(COALESCE(NULLIF(regexp_replace(regexp_replace(lower(name), '[^a-z0-9_-]+', '_', 'g'),
                                             '^[^a-z0-9]+', ''), ''), 'key'), 50)
         || '_' || left(md5(name), 12)
    END;
UPDATE attune.key SET ref = attune.canonical_key_ref(owner_type, owner, owner_pack_ref,
                                                     owner_action_ref, owner_sensor_ref, local_ref);

-- Values become JSON: a plain text is the JSON string of itself; an encrypted
-- value keeps its old ciphertext (as a JSON string) until attunectl migrate
-- re-encrypts it.
CREATE TABLE attune.key_legacy_ciphertext (
    key     BIGINT PRIMARY KEY REFERENCES attune.key (id) ON DELETE CASCADE,
    created TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
INSERT INTO attune.key_legacy_ciphertext (key) SELECT id FROM attune.key WHERE encrypted;
ALTER TABLE attune.key ALTER COLUMN value TYPE JSONB USING to_jsonb(value);

ALTER TABLE attune.key
    ALTER COLUMN local_ref SET NOT NULL,
    ADD CONSTRAINT key_ref_key UNIQUE (ref),
    ADD CONSTRAINT key_local_ref_format CHECK (local_ref ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    ADD CONSTRAINT key_ref_canonical CHECK (
        ref = attune.canonical_key_ref(owner_type, owner, owner_pack_ref, owner_action_ref,
                                       owner_sensor_ref, local_ref)),
    ADD CONSTRAINT key_owner_identity_fkey FOREIGN KEY (owner_identity)
        REFERENCES attune.identity (id) NOT VALID;

-- As upstream's trigger of the same name: the owner columns are checked and
-- owner, *_ref and ref are filled from the owner's row, so writers give only
-- owner_type, the owner's id and local_ref. Owner and local ref never change.
CREATE FUNCTION attune.validate_key_owner() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    owners INTEGER := (NEW.owner_identity IS NOT NULL)::int + (NEW.owner_pack IS NOT NULL)::int
                      + (NEW.owner_action IS NOT NULL)::int + (NEW.owner_sensor IS NOT NULL)::int;
BEGIN
    IF TG_OP = 'UPDATE' AND (NEW.owner_type IS DISTINCT FROM OLD.owner_type
                             OR NEW.owner_identity IS DISTINCT FROM OLD.owner_identity
                             OR NEW.owner_pack IS DISTINCT FROM OLD.owner_pack
                             OR NEW.owner_action IS DISTINCT FROM OLD.owner_action
                             OR NEW.owner_sensor IS DISTINCT FROM OLD.owner_sensor
                             OR NEW.local_ref IS DISTINCT FROM OLD.local_ref) THEN
        RAISE EXCEPTION 'Key owner and local_ref cannot be changed';
    END IF;
    NEW.owner_pack_ref := NULL;
    NEW.owner_action_ref := NULL;
    NEW.owner_sensor_ref := NULL;
    IF NEW.owner_type = 'system' THEN
        IF owners > 0 THEN
            RAISE EXCEPTION 'System owner cannot have specific owner fields set';
        END IF;
        NEW.owner := 'system';
    ELSIF owners <> 1 THEN
        RAISE EXCEPTION 'Exactly one owner field must be set for owner_type %', NEW.owner_type;
    ELSIF NEW.owner_type = 'identity' AND NEW.owner_identity IS NOT NULL THEN
        SELECT login INTO STRICT NEW.owner FROM attune.identity WHERE id = NEW.owner_identity;
    ELSIF NEW.owner_type = 'pack' AND NEW.owner_pack IS NOT NULL THEN
        SELECT ref INTO STRICT NEW.owner_pack_ref FROM attune.pack WHERE id = NEW.owner_pack;
        NEW.owner := NEW.owner_pack_ref;
    ELSIF NEW.owner_type = 'action' AND NEW.owner_action IS NOT NULL THEN
        SELECT ref INTO STRICT NEW.owner_action_ref FROM attune.action WHERE id = NEW.owner_action;
        NEW.owner := NEW.owner_action_ref;
    ELSIF NEW.owner_type = 'sensor' THEN
        RAISE EXCEPTION 'sensor-owned keys are not supported by this schema (it has no sensor table)';
    ELSE
        RAISE EXCEPTION 'owner_% must be set for owner_type %', NEW.owner_type, NEW.owner_type;
    END IF;
    NEW.ref := attune.canonical_key_ref(NEW.owner_type, NEW.owner, NEW.owner_pack_ref,
                                        NEW.owner_action_ref, NEW.owner_sensor_ref, NEW.local_ref);
    RETURN NEW;
END
$$;
CREATE TRIGGER validate_key_owner_trigger BEFORE INSERT OR UPDATE ON attune.key
    FOR EACH ROW EXECUTE FUNCTION attune.validate_key_owner();
