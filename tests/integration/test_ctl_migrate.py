"""`attunectl migrate` against a real PostgreSQL: the schema (the original
contract's tables, made a compatible subset of Attune's tables of today by
0003_attune_today: enums, tables, columns, constraints, triggers; Attune's log
rows' tables from 0005_log_artifacts), applied once,
safe to run twice and from two processes at once. Upgrades of older databases
and databases Attune's own migrations manage: test_ctl_migrate_upgrade.py."""
import os
import subprocess
import time
import unittest

import psycopg2
import psycopg2.extras

from ctl_support import CTL_BIN, EXIT_CONFIG, EXIT_FAILED, EXIT_OK, CtlTestCase

ENUMS = {
    "execution_status_enum": ["requested", "scheduling", "scheduled", "running", "completed",
                              "failed", "canceling", "cancelled", "timeout", "abandoned"],
    "worker_type_enum": ["local", "remote", "container"],
    "worker_role_enum": ["action", "sensor"],
    "worker_status_enum": ["active", "inactive", "busy", "error"],
    "owner_type_enum": ["system", "identity", "pack", "action", "sensor"],
    "runtime_type_enum": ["action", "sensor"],
    "artifact_type_enum": ["file_binary", "file_datatable", "file_image", "file_text", "other",
                           "progress", "url"],
    "artifact_visibility_enum": ["public", "private"],
    "artifact_retention_enum": ["versions", "days", "hours", "minutes"],
    "artifact_classification_enum": ["general", "runtime_log"],
    "artifact_body_state_enum": ["pending", "ready", "deleting", "cleanup_claimed"],
    "log_stream_backend_enum": ["object_segments", "shared_file"],
}

TS = "timestamp with time zone"

# Columns the worker and attunectl rely on: name -> (data type, nullable).
COLUMNS = {
    "pack": {
        "id": ("bigint", False), "ref": ("text", False), "label": ("text", False),
        "description": ("text", True), "version": ("text", False),
        "conf_schema": ("jsonb", False), "config": ("jsonb", False), "meta": ("jsonb", False),
        "tags": ("ARRAY", False), "runtime_deps": ("ARRAY", False),
        "is_standard": ("boolean", False), "active_release": ("bigint", True),
    },
    "runtime": {
        "id": ("bigint", False), "ref": ("text", False), "pack": ("bigint", True),
        "pack_ref": ("text", True), "description": ("text", True),
        "runtime_type": ("USER-DEFINED", False), "name": ("text", False),
        "aliases": ("ARRAY", False), "execution_config": ("jsonb", False),
        "distributions": ("jsonb", False), "installation": ("jsonb", True),
    },
    "runtime_version": {
        "id": ("bigint", False), "runtime": ("bigint", False), "runtime_ref": ("text", False),
        "version": ("text", False), "version_major": ("integer", True),
        "version_minor": ("integer", True), "version_patch": ("integer", True),
        "execution_config": ("jsonb", False), "distributions": ("jsonb", False),
        "is_default": ("boolean", False), "available": ("boolean", False),
        "verified_at": (TS, True), "meta": ("jsonb", False), "retired_at": (TS, True),
    },
    "action": {
        "id": ("bigint", False), "ref": ("text", False), "pack": ("bigint", False),
        "pack_ref": ("text", False), "label": ("text", False), "description": ("text", True),
        "entrypoint": ("text", False), "runtime": ("bigint", True),
        "param_schema": ("jsonb", True), "out_schema": ("jsonb", True),
        "parameter_delivery": ("text", False), "parameter_format": ("text", False),
        "output_format": ("text", False), "is_adhoc": ("boolean", False),
        "timeout_seconds": ("integer", True), "enabled": ("boolean", False),
        "log_retention_policy": ("USER-DEFINED", True), "log_retention_limit": ("integer", True),
    },
    "execution": {
        "id": ("bigint", False), "action": ("bigint", True), "action_ref": ("text", False),
        "config": ("jsonb", True), "parent": ("bigint", True), "enforcement": ("bigint", True),
        "executor": ("bigint", True), "status": ("USER-DEFINED", False),
        "result": ("jsonb", True), "worker": ("bigint", True),
        "started_at": (TS, True), "timeout_seconds": ("integer", True),
        "env_vars": ("jsonb", True), "permission_set_refs": ("ARRAY", False),
        "trace_tag": ("text", True), "pack_release": ("bigint", True),
        "pack_release_digest": ("text", True), "executable_snapshot": ("jsonb", True),
        "workflow_task": ("jsonb", True),
    },
    "worker": {
        "id": ("bigint", False), "name": ("text", False), "worker_type": ("USER-DEFINED", False),
        "worker_role": ("USER-DEFINED", False),
        "runtime": ("bigint", True), "host": ("text", True), "port": ("integer", True),
        "status": ("USER-DEFINED", False), "capabilities": ("jsonb", True),
        "meta": ("jsonb", True), "last_heartbeat": (TS, True),
        "cordoned": ("boolean", False), "cordon_reason": ("text", True),
        "cordoned_by": ("bigint", True), "cordoned_at": (TS, True),
    },
    "key": {
        "id": ("bigint", False), "ref": ("text", False), "local_ref": ("text", False),
        "owner_type": ("USER-DEFINED", False),
        "owner": ("text", True), "owner_identity": ("bigint", True),
        "owner_pack": ("bigint", True), "owner_pack_ref": ("text", True),
        "owner_action": ("bigint", True), "owner_action_ref": ("text", True),
        "owner_sensor": ("bigint", True), "owner_sensor_ref": ("text", True),
        "name": ("text", False), "encrypted": ("boolean", False),
        "encryption_key_hash": ("text", True), "value": ("jsonb", False),
    },
    "identity": {
        "id": ("bigint", False), "login": ("text", False), "display_name": ("text", True),
        "attributes": ("jsonb", False),
    },
    # Tables upstream gives no `updated` column.
    "enforcement": {
        "id": ("bigint", False), "rule": ("bigint", True), "rule_ref": ("text", False),
        "trigger_ref": ("text", False), "config": ("jsonb", True), "event": ("bigint", True),
        "payload": ("jsonb", False), "created": (TS, False),
    },
    "pack_release": {
        "id": ("bigint", False), "pack": ("bigint", False), "pack_ref": ("text", False),
        "version": ("text", False), "digest": ("text", False), "archive_path": ("text", False),
        "content_path": ("text", False), "archive_size": ("bigint", False),
        "manifest": ("jsonb", False), "created": (TS, False),
    },
    "execution_secret_value": {
        "id": ("bigint", False), "entity_type": ("text", False), "entity_id": ("bigint", False),
        "json_path": ("text", False), "source_kind": ("text", False),
        "source_ref": ("text", True), "encrypted_value": ("jsonb", False),
        "encryption_key_hash": ("text", True), "created": (TS, False),
    },
    # This project's: the keys 0003 could not re-encrypt, until attunectl migrate does.
    "key_legacy_ciphertext": {"key": ("bigint", False), "created": (TS, False)},
    # Attune's log rows (0005).
    "artifact": {
        "id": ("bigint", False), "ref": ("text", False), "scope": ("USER-DEFINED", False),
        "owner": ("text", False), "type": ("USER-DEFINED", False),
        "visibility": ("USER-DEFINED", False), "name": ("text", True),
        "description": ("text", True), "content_type": ("text", True),
        "size_bytes": ("bigint", True), "data": ("jsonb", True),
        "retention_policy": ("USER-DEFINED", False), "retention_limit": ("integer", False),
        "classification": ("USER-DEFINED", False),
    },
    "artifact_version": {
        "id": ("bigint", False), "artifact": ("bigint", False), "version": ("integer", False),
        "execution": ("bigint", True), "content_type": ("text", True),
        "size_bytes": ("bigint", True), "content": ("bytea", True),
        "content_json": ("jsonb", True), "file_path": ("text", True), "meta": ("jsonb", True),
        "created_by": ("text", True), "body_state": ("USER-DEFINED", True),
        "object_key": ("text", True), "provider_version": ("text", True),
        "sha256": ("text", True), "body_updated": (TS, False),
        "legacy_snapshot_expires_at": (TS, True),
    },
    "log_stream": {
        "id": ("bigint", False), "artifact_version": ("bigint", False),
        "max_unflushed_bytes": ("bigint", False), "max_unflushed_milliseconds": ("bigint", False),
        "next_sequence": ("bigint", False), "total_bytes": ("bigint", False),
        "truncated": ("boolean", False), "sealed": ("boolean", False),
        "sealed_at": (TS, True), "backend": ("USER-DEFINED", False),
    },
}
WITHOUT_UPDATED = {"enforcement", "pack_release", "execution_secret_value",
                   "key_legacy_ciphertext", "artifact_version", "log_stream"}

DIGEST = "ab" * 32

MIGRATIONS = sorted(f[:-4] for f in os.listdir(os.path.join(os.environ["ATTUNE_SOURCE_DIR"], "migrations"))
                    if f.endswith(".sql"))
APPLIED_ALL = "".join("applied %s\n" % m for m in MIGRATIONS)


class MigrateTest(CtlTestCase):

    def test_migrate_twice(self):
        first = self.migrate()
        self.assertEqual(first.stdout, APPLIED_ALL)
        self.assertEqual(first.stderr, "")
        second = self.migrate()
        self.assertEqual(second.stdout, "database is up to date\n")
        self.assertEqual(second.stderr, "")
        applied = self.rows("SELECT name, applied_at FROM attune.schema_migrations")
        self.assertEqual([r["name"] for r in applied], MIGRATIONS)
        self.assertIsNotNone(applied[0]["applied_at"])

    def test_concurrent_migrates_apply_once(self):
        procs = [subprocess.Popen([CTL_BIN, "migrate"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=self.env(), cwd=self.tmp, text=True)
                 for _ in range(3)]
        outputs = [p.communicate(timeout=60) + (p.returncode,) for p in procs]
        for out, err, rc in outputs:
            self.assertEqual(rc, EXIT_OK, "stdout: %s\nstderr: %s" % (out, err))
            self.assertEqual(err, "")
        applied = sorted(out for out, _, _ in outputs)
        self.assertEqual(applied, [APPLIED_ALL, "database is up to date\n",
                                   "database is up to date\n"])
        self.assertEqual(self.value("SELECT count(*) FROM attune.schema_migrations"),
                         len(MIGRATIONS))

    def test_enums(self):
        self.migrate()
        found = {}
        for r in self.rows(
                "SELECT t.typname, e.enumlabel FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid "
                "JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = 'attune' "
                "ORDER BY t.typname, e.enumsortorder"):
            found.setdefault(r["typname"], []).append(r["enumlabel"])
        self.assertEqual(found, ENUMS)

    def test_tables_and_columns(self):
        self.migrate()
        tables = {r["table_name"] for r in self.rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'attune'")}
        self.assertEqual(tables, set(COLUMNS) | {"schema_migrations"})
        for table, expected in COLUMNS.items():
            cols = {r["column_name"]: (r["data_type"], r["is_nullable"] == "YES")
                    for r in self.rows(
                        "SELECT column_name, data_type, is_nullable FROM "
                        "information_schema.columns WHERE table_schema = 'attune' AND "
                        "table_name = %s", (table,))}
            for name, spec in expected.items():
                self.assertEqual(cols.get(name), spec, "%s.%s" % (table, name))
            self.assertEqual(cols.get("created"), (TS, False), table)
            if table not in WITHOUT_UPDATED:
                self.assertEqual(cols.get("updated"), (TS, False), table)

    def test_defaults(self):
        self.migrate()
        self.execute("INSERT INTO attune.pack (ref, label, version) VALUES ('p1', 'P', '1.0.0')")
        pack = self.row("SELECT * FROM attune.pack")
        self.assertEqual((pack["conf_schema"], pack["config"], pack["meta"]), ({}, {}, {}))
        self.assertEqual((pack["tags"], pack["runtime_deps"], pack["is_standard"]), ([], [], False))
        self.execute("INSERT INTO attune.action (ref, pack, pack_ref, label, entrypoint) "
                     "VALUES ('p1.a', %s, 'p1', 'A', 'a.sh')", (pack["id"],))
        action = self.row("SELECT * FROM attune.action")
        self.assertEqual((action["parameter_delivery"], action["parameter_format"],
                          action["output_format"], action["is_adhoc"]),
                         ("stdin", "json", "text", False))
        self.assertIsNone(action["timeout_seconds"])
        self.execute("INSERT INTO attune.execution (action_ref) VALUES ('p1.a')")
        execution = self.row("SELECT status::text, permission_set_refs, pack_release, "
                             "executable_snapshot FROM attune.execution")
        self.assertEqual(execution, {"status": "requested", "permission_set_refs": [],
                                     "pack_release": None, "executable_snapshot": None})
        self.execute("INSERT INTO attune.worker (name, worker_role) VALUES ('w1', 'action')")
        worker = self.row("SELECT worker_role::text, cordoned FROM attune.worker")
        self.assertEqual(worker, {"worker_role": "action", "cordoned": False})
        self.execute("INSERT INTO attune.runtime (ref, name) VALUES ('p1.shell', 'shell')")
        runtime = self.row("SELECT aliases, execution_config FROM attune.runtime")
        self.assertEqual(runtime, {"aliases": [], "execution_config": {}})

    def test_constraints(self):
        self.migrate()
        self.execute("INSERT INTO attune.pack (ref, label, version) VALUES ('p1', 'P', '1.2.3-rc.1')")
        self.execute("INSERT INTO attune.key (owner_type, local_ref, name, encrypted, value) "
                     "VALUES ('system', 'k', 'k', false, '\"v\"')")
        release = ("INSERT INTO attune.pack_release (pack, pack_ref, version, digest, archive_path, "
                   "content_path, archive_size, manifest) VALUES ((SELECT id FROM attune.pack), "
                   "'p1', '%s', '%s', 'a.tar', 'c', %d, '%s')")
        self.execute(release % ("1.0.0", DIGEST, 10, "{}"))
        self.execute("INSERT INTO attune.artifact (ref, type) VALUES ('p1.a.stdout.log', "
                     "'file_text')")
        version = ("INSERT INTO attune.artifact_version (artifact, version, file_path, body_state, "
                   "size_bytes, sha256) VALUES ((SELECT id FROM attune.artifact), %d, '%s', %s, "
                   "%s, %s)")
        self.execute(version % (1, "w/1/stdout.log", "'pending'", "NULL", "NULL"))
        bad = [
            "INSERT INTO attune.pack (ref, label, version) VALUES ('Bad', 'x', '1.0.0')",
            "INSERT INTO attune.pack (ref, label, version) VALUES ('x', 'x', '1.0.0')",
            "INSERT INTO attune.pack (ref, label, version) VALUES ('ok', 'x', 'one')",
            "INSERT INTO attune.action (ref, pack, pack_ref, label, entrypoint, "
            "parameter_delivery) VALUES ('p1.a', 1, 'p1', 'A', 'a.sh', 'argv')",
            "INSERT INTO attune.action (ref, pack, pack_ref, label, entrypoint, "
            "parameter_format) VALUES ('p1.a', 1, 'p1', 'A', 'a.sh', 'xml')",
            "INSERT INTO attune.action (ref, pack, pack_ref, label, entrypoint, "
            "output_format) VALUES ('p1.a', 1, 'p1', 'A', 'a.sh', 'csv')",
            "INSERT INTO attune.action (ref, pack, pack_ref, label, entrypoint) "
            "VALUES ('p1.a', 999, 'p1', 'A', 'a.sh')",
            "INSERT INTO attune.pack (ref, label, version) VALUES ('p1', 'again', '1.0.0')",
            # key: same owner and name; local refs Attune refuses; no value
            "INSERT INTO attune.key (owner_type, local_ref, name, encrypted, value) "
            "VALUES ('system', 'k', 'k', false, '1')",
            "INSERT INTO attune.key (owner_type, local_ref, name, encrypted, value) "
            "VALUES ('system', 'Upper', 'Upper', false, '1')",
            "INSERT INTO attune.key (owner_type, local_ref, name, encrypted, value) "
            "VALUES ('system', 'a.b', 'a.b', false, '1')",
            "INSERT INTO attune.key (owner_type, name, encrypted, value) "
            "VALUES ('system', 'nolocal', false, '1')",
            "INSERT INTO attune.key (owner_type, local_ref, name, encrypted) "
            "VALUES ('system', 'novalue', 'novalue', false)",
            # worker: a role is required
            "INSERT INTO attune.worker (name) VALUES ('norole')",
            # execution: a digest is 64 lowercase hex digits, and a pin is complete
            "INSERT INTO attune.execution (action_ref, pack_release_digest, executable_snapshot) "
            "VALUES ('x', 'ABC', '{}')",
            "INSERT INTO attune.execution (action_ref, pack_release_digest) VALUES ('x', '%s')"
            % DIGEST,
            "INSERT INTO attune.execution (action_ref, pack_release) "
            "VALUES ('x', (SELECT id FROM attune.pack_release))",
            "INSERT INTO attune.execution (action_ref, executor) VALUES ('x', 12345)",
            "INSERT INTO attune.execution (action_ref, enforcement) VALUES ('x', 12345)",
            # pack_release: digest, size, manifest, one version per pack
            release % ("2.0.0", "xyz", 10, "{}"),
            release % ("2.0.0", DIGEST, -1, "{}"),
            release % ("2.0.0", DIGEST, 10, "[]"),
            release % ("1.0.0", DIGEST, 10, "{}"),
            "INSERT INTO attune.execution_secret_value (entity_type, entity_id, json_path, "
            "source_kind, encrypted_value) VALUES ('execution_config', 1, '/p', 'key', '1'), "
            "('execution_config', 1, '/p', 'key', '2')",
            # log rows: refs and paths that could leave the artifacts root, a version
            # number twice, a ready body with a bad digest, a stream without limits
            "INSERT INTO attune.artifact (ref, type) VALUES ('p1/a', 'file_text')",
            "INSERT INTO attune.artifact (ref, type) VALUES ('..p1', 'file_text')",
            version % (2, "../w/stdout.log", "'pending'", "NULL", "NULL"),
            version % (2, "/w/stdout.log", "'pending'", "NULL", "NULL"),
            version % (1, "w/2/stdout.log", "'pending'", "NULL", "NULL"),
            version % (2, "w/2/stdout.log", "'ready'", "5", "'not-a-digest'"),
            "INSERT INTO attune.log_stream (artifact_version, max_unflushed_bytes, "
            "max_unflushed_milliseconds) VALUES ((SELECT id FROM attune.artifact_version), 0, 1)",
        ]
        for sql in bad:
            with self.subTest(sql=sql):
                with self.assertRaises((psycopg2.IntegrityError, psycopg2.errors.RaiseException)):
                    self.execute(sql)
        with self.assertRaises(psycopg2.DataError):
            self.execute("INSERT INTO attune.execution (action_ref, status) VALUES ('x', 'done')")
        with self.assertRaises(psycopg2.DataError):
            self.execute("INSERT INTO attune.worker (name, worker_role) VALUES ('w', 'other')")
        # A complete pin is accepted, and so is canceling.
        self.execute("INSERT INTO attune.execution (action_ref, status, pack_release, "
                     "pack_release_digest, executable_snapshot) VALUES ('x', 'canceling', "
                     "(SELECT id FROM attune.pack_release), %s, '{}')", (DIGEST,))

    def test_key_trigger_fills_owner_and_ref(self):
        """As upstream's validate_key_owner: writers give the owner's id and the
        local ref; owner, owner_*_ref and the canonical ref follow from them."""
        self.migrate()
        pack_id = self.value("INSERT INTO attune.pack (ref, label, version) "
                             "VALUES ('p1', 'P', '1.0.0') RETURNING id")
        action_id = self.value("INSERT INTO attune.action (ref, pack, pack_ref, label, "
                               "entrypoint) VALUES ('p1.a', %s, 'p1', 'A', 'a.sh') RETURNING id",
                               (pack_id,))
        insert = ("INSERT INTO attune.key (ref, owner, owner_type, owner_pack, owner_action, "
                  "local_ref, name, encrypted, value) VALUES ('ignored', 'ignored', %s, %s, %s, "
                  "'tok', 'tok', false, '\"v\"') RETURNING ref, owner, owner_pack_ref, "
                  "owner_action_ref")
        self.assertEqual(self.rows(insert, ("system", None, None)),
                         [{"ref": "system.tok", "owner": "system", "owner_pack_ref": None,
                           "owner_action_ref": None}])
        self.assertEqual(self.rows(insert, ("pack", pack_id, None)),
                         [{"ref": "pack.p1.tok", "owner": "p1", "owner_pack_ref": "p1",
                           "owner_action_ref": None}])
        self.assertEqual(self.rows(insert, ("action", None, action_id)),
                         [{"ref": "action.p1.a.tok", "owner": "p1.a", "owner_pack_ref": None,
                           "owner_action_ref": "p1.a"}])
        for owner_type, pack, action in (("system", pack_id, None), ("pack", None, None),
                                         ("pack", pack_id, action_id), ("action", pack_id, None),
                                         ("pack", 999, None)):
            with self.subTest(owner_type=owner_type, pack=pack, action=action):
                with self.assertRaises(psycopg2.Error):
                    self.execute(insert.replace("'tok', 'tok'", "'other', 'other'"),
                                 (owner_type, pack, action))
        with self.assertRaises(psycopg2.errors.RaiseException):
            self.execute("UPDATE attune.key SET local_ref = 'renamed' WHERE ref = 'system.tok'")
        self.execute("UPDATE attune.key SET value = '{\"a\": 1}' WHERE ref = 'system.tok'")
        self.assertEqual(self.value("SELECT value FROM attune.key WHERE ref = 'system.tok'"),
                         {"a": 1})

    def test_cascades(self):
        self.migrate()
        pack_id = self.value("INSERT INTO attune.pack (ref, label, version) "
                             "VALUES ('p1', 'P', '1.0.0') RETURNING id")
        action_id = self.value("INSERT INTO attune.action (ref, pack, pack_ref, label, "
                               "entrypoint) VALUES ('p1.a', %s, 'p1', 'A', 'a.sh') RETURNING id",
                               (pack_id,))
        self.execute("INSERT INTO attune.key (owner_type, owner_action, local_ref, name, "
                     "encrypted, value) VALUES ('action', %s, 'k', 'k', false, '\"v\"')",
                     (action_id,))
        self.execute("INSERT INTO attune.key (owner_type, owner_pack, local_ref, name, "
                     "encrypted, value) VALUES ('pack', %s, 'k', 'k', false, '\"v\"')",
                     (pack_id,))
        exec_id = self.value("INSERT INTO attune.execution (action, action_ref) "
                             "VALUES (%s, 'p1.a') RETURNING id", (action_id,))
        self.execute("DELETE FROM attune.pack WHERE id = %s", (pack_id,))
        self.assertEqual(self.value("SELECT count(*) FROM attune.action"), 0)
        self.assertEqual(self.value("SELECT count(*) FROM attune.key"), 0)
        # the execution is history: it stays, without its action
        self.assertIsNone(self.value("SELECT action FROM attune.execution WHERE id = %s",
                                     (exec_id,)))

    def test_updated_trigger_on_every_table(self):
        self.migrate()
        triggers = {r["event_object_table"] for r in self.rows(
            "SELECT event_object_table FROM information_schema.triggers WHERE "
            "trigger_schema = 'attune' AND action_timing = 'BEFORE' AND "
            "event_manipulation = 'UPDATE' AND action_statement LIKE '%%set_updated%%'")}
        self.assertEqual(triggers, set(COLUMNS) - WITHOUT_UPDATED)
        self.execute("INSERT INTO attune.pack (ref, label, version) VALUES ('p1', 'P', '1.0.0')")
        self.execute("INSERT INTO attune.worker (name, worker_role) VALUES ('w1', 'action')")
        before = self.row("SELECT p.created, p.updated, w.updated AS wupdated "
                          "FROM attune.pack p, attune.worker w")
        self.assertEqual(before["created"], before["updated"])
        time.sleep(0.05)
        self.execute("UPDATE attune.pack SET label = 'Q'")
        self.execute("UPDATE attune.worker SET status = 'active'")
        after = self.row("SELECT p.created, p.updated, w.updated AS wupdated "
                         "FROM attune.pack p, attune.worker w")
        self.assertEqual(after["created"], before["created"])
        self.assertGreater(after["updated"], before["updated"])
        self.assertGreater(after["wupdated"], before["wupdated"])

    def test_indexes(self):
        self.migrate()
        indexes = {r["indexdef"].split(" USING ")[1] for r in self.rows(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'attune'")}
        for wanted in ("btree (status)", "btree (worker)", "btree (owner_type, owner)",
                       "btree (name)", "btree (owner_type, owner, name)"):
            self.assertIn(wanted, indexes)


class MigrateErrorsTest(CtlTestCase):

    def test_unreachable_database(self):
        proc = self.ctl("migrate", env={
            "ATTUNE__DATABASE__URL": "postgresql://postgres:postgres@127.0.0.1:1/attune"})
        self.assertOneLineError(proc, EXIT_FAILED, "cannot connect to the database")
        self.assertNotIn("postgres:postgres", proc.stderr)

    def test_bad_configuration(self):
        proc = self.ctl("migrate", env={"ATTUNE__WORKER__MAX_CONCURRENT_TASKS": "many"})
        self.assertOneLineError(proc, EXIT_CONFIG, "max_concurrent_tasks")

    def test_help_and_version(self):
        self.assertIn("attunectl", self.assertExit(self.ctl("--version"), EXIT_OK).stdout)
        text = self.assertExit(self.ctl("--help"), EXIT_OK).stdout
        for command in ("migrate", "pack load", "key set", "run", "execution get", "workers"):
            self.assertIn(command, text)

    def test_usage_errors(self):
        for argv in ([], ["bogus"], ["pack"], ["pack", "load"], ["migrate", "extra"],
                     ["migrate", "--wait"], ["key", "set", "k", "v", "--pack", "a", "--action",
                                             "a.b"]):
            with self.subTest(argv=argv):
                proc = self.ctl(*argv)
                self.assertEqual(proc.returncode, 2, self.describe(proc))
                self.assertIn("attunectl:", proc.stderr)


if __name__ == "__main__":
    unittest.main()
