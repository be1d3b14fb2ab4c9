"""`attunectl migrate` on databases it did not create from nothing: one made by
migrations 0001 and 0002 (keys and executions in the layout before
0003_attune_today) upgrades in place, re-encrypting the encrypted keys as
Attune's encrypt_json (checked here with Python's `cryptography`); without the
encryption key, or with another one, it stops clearly and changes nothing; and a
database whose schema Attune's own migrations manage is left as it is."""
import os
import unittest

import psycopg2.extras

from ctl_support import (ENCRYPTION_KEY, EXIT_CONFIG, EXIT_FAILED, EXIT_OK, SOURCE_DIR,
                         CtlTestCase)
from keys_support import decrypt_json, decrypt_raw, encrypt_raw, json_text, key_hash_of

ENC_ENV = {"ATTUNE__SECURITY__ENCRYPTION_KEY": ENCRYPTION_KEY}
OTHER_KEY = "another-encryption-key-0123456789-abcdefghij"
OLD_MIGRATIONS = ("0001_initial_schema", "0002_action_enabled")

PLAIN_VALUE = "plain 'q' \"dq\" $x ü\nsecond line"
PACK_VALUE = "pack secret ünïcødé 🔑 \"quoted\"\n"
ACTION_VALUE = "action secret"


class UpgradeTest(CtlTestCase):
    """A database as attunectl left it before 0003: the two migration files and
    their rows in attune.schema_migrations."""

    def setUp(self):
        super().setUp()
        for name in OLD_MIGRATIONS:
            with open(os.path.join(SOURCE_DIR, "migrations", name + ".sql"), encoding="utf-8") as f:
                self.execute(f.read(), None)  # no parameters: % is literal
        self.execute("CREATE TABLE attune.schema_migrations (name TEXT PRIMARY KEY, "
                     "applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW())")
        for name in OLD_MIGRATIONS:
            self.execute("INSERT INTO attune.schema_migrations (name) VALUES (%s)", (name,))
        self.pack_id = self.value("INSERT INTO attune.pack (ref, label, version) "
                                  "VALUES ('p1', 'P', '1.0.0') RETURNING id")
        self.runtime_id = self.value(
            "INSERT INTO attune.runtime (ref, pack, pack_ref, name) VALUES ('p1.shell', %s, "
            "'p1', 'shell') RETURNING id", (self.pack_id,))
        self.action_id = self.value(
            "INSERT INTO attune.action (ref, pack, pack_ref, label, entrypoint, runtime) "
            "VALUES ('p1.a', %s, 'p1', 'A', 'a.sh', %s) RETURNING id",
            (self.pack_id, self.runtime_id))
        self.worker_id = self.value("INSERT INTO attune.worker (name, status) VALUES ('w1', "
                                    "'active') RETURNING id")
        # Keys as attunectl key set wrote them: owner is the owning row's id, the
        # value the raw text or the ciphertext of the raw text.
        old_key = ("INSERT INTO attune.key (ref, owner_type, owner, owner_pack, owner_pack_ref, "
                   "owner_action, owner_action_ref, name, encrypted, encryption_key_hash, value) "
                   "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")
        self.execute(old_key, ("system.plain_token", "system", "system", None, None, None, None,
                               "plain_token", False, None, PLAIN_VALUE))
        self.execute(old_key, ("p1.api_key", "pack", str(self.pack_id), self.pack_id, "p1",
                               None, None, "api_key", True, key_hash_of(ENCRYPTION_KEY),
                               encrypt_raw(PACK_VALUE, ENCRYPTION_KEY)))
        # A name the old rules allowed but a local ref does not, and no stored hash.
        self.execute(old_key, ("p1.a.Mixed_Case", "action", str(self.action_id), None, None,
                               self.action_id, "p1.a", "Mixed_Case", True, None,
                               encrypt_raw(ACTION_VALUE, ENCRYPTION_KEY)))
        self.exec_id = self.value(
            "INSERT INTO attune.execution (action, action_ref, config, status, result, worker, "
            "executor, enforcement) VALUES (%s, 'p1.a', %s, 'completed', %s, %s, 7, 8) "
            "RETURNING id",
            (self.action_id, psycopg2.extras.Json({"parameters": {"n": 1}}),
             psycopg2.extras.Json({"succeeded": True, "exit_code": 0}), self.worker_id))
        self.before = self.snapshot()

    def snapshot(self):
        return {
            "migrations": [r["name"] for r in self.rows(
                "SELECT name FROM attune.schema_migrations ORDER BY name")],
            "tables": sorted(r["table_name"] for r in self.rows(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'attune'")),
            "keys": self.rows("SELECT * FROM attune.key ORDER BY id"),
            "executions": self.rows("SELECT * FROM attune.execution ORDER BY id"),
            "workers": self.rows("SELECT * FROM attune.worker ORDER BY id"),
        }

    def keys(self):
        return {r["name"]: r for r in self.rows("SELECT * FROM attune.key")}

    def test_upgrade_in_place(self):
        proc = self.assertExit(self.ctl("migrate", env=ENC_ENV), EXIT_OK)
        self.assertEqual(proc.stdout, "applied 0003_attune_today\n"
                         "re-encrypted 2 keys in Attune's JSON format (encrypt_json)\n"
                         "applied 0004_execution_workflow_task\n"
                         "applied 0005_log_artifacts\n")
        self.assertEqual(proc.stderr, "")
        for value in (PLAIN_VALUE, PACK_VALUE, ACTION_VALUE):
            self.assertNotIn(value.strip(), proc.stdout + proc.stderr)
        keys = self.keys()

        plain = keys["plain_token"]
        self.assertEqual((plain["ref"], plain["local_ref"], plain["owner"], plain["encrypted"],
                          plain["value"]),
                         ("system.plain_token", "plain_token", "system", False, PLAIN_VALUE))

        pack = keys["api_key"]
        self.assertEqual((pack["ref"], pack["local_ref"], pack["owner"], pack["owner_pack"],
                          pack["owner_pack_ref"], pack["encrypted"]),
                         ("pack.p1.api_key", "api_key", "p1", self.pack_id, "p1", True))
        action = keys["Mixed_Case"]
        self.assertRegex(action["local_ref"], r"^mixed_case_[0-9a-f]{12}$")
        self.assertEqual((action["ref"], action["owner"], action["owner_action"],
                          action["owner_action_ref"], action["encrypted"]),
                         ("action.p1.a." + action["local_ref"], "p1.a", self.action_id, "p1.a",
                          True))
        # encrypt_json, decrypted independently: the compact JSON text of the
        # string, with its quotes.
        for row, value in ((pack, PACK_VALUE), (action, ACTION_VALUE)):
            self.assertIsInstance(row["value"], str)
            self.assertEqual(decrypt_raw(row["value"], ENCRYPTION_KEY),
                             json_text(value).encode("utf-8"))
            self.assertEqual(decrypt_json(row["value"], ENCRYPTION_KEY), value)
            self.assertEqual(row["encryption_key_hash"], key_hash_of(ENCRYPTION_KEY))
        self.assertEqual(self.value("SELECT count(*) FROM attune.key_legacy_ciphertext"), 0)

        # The execution and the worker are still there, as they were.
        execution = self.row("SELECT * FROM attune.execution")
        old = self.before["executions"][0]
        for column, value in old.items():
            if column != "updated":
                self.assertEqual(execution[column], value, column)
        self.assertEqual(execution["permission_set_refs"], [])
        worker = self.row("SELECT * FROM attune.worker")
        self.assertEqual((worker["id"], worker["worker_role"], worker["cordoned"]),
                         (self.worker_id, "action", False))
        self.assertEqual(self.value("SELECT aliases FROM attune.runtime"), ["shell"])

        # A second run finds nothing to do and changes nothing.
        again = self.assertExit(self.ctl("migrate", env=ENC_ENV), EXIT_OK)
        self.assertEqual(again.stdout, "database is up to date\n")
        self.assertEqual(self.keys(), keys)

    def test_without_the_key_nothing_changes(self):
        proc = self.ctl("migrate")
        self.assertOneLineError(proc, EXIT_CONFIG, "security.encryption_key",
                                "ATTUNE__SECURITY__ENCRYPTION_KEY", "2 encrypted keys")
        self.assertEqual(proc.stdout, "")
        self.assertEqual(self.snapshot(), self.before)
        self.assertEqual(self.value(
            "SELECT data_type FROM information_schema.columns WHERE table_schema = 'attune' "
            "AND table_name = 'key' AND column_name = 'value'"), "text")

    def test_with_another_key_nothing_changes(self):
        proc = self.ctl("migrate", env={"ATTUNE__SECURITY__ENCRYPTION_KEY": OTHER_KEY})
        self.assertOneLineError(proc, EXIT_FAILED, "api_key", "hash mismatch",
                                "security.encryption_key")
        self.assertEqual(self.snapshot(), self.before)
        # No stored hash to compare: the ciphertext itself refuses the key.
        self.execute("UPDATE attune.key SET encryption_key_hash = NULL")
        proc = self.ctl("migrate", env={"ATTUNE__SECURITY__ENCRYPTION_KEY": OTHER_KEY})
        self.assertOneLineError(proc, EXIT_FAILED, "cannot be decrypted", "api_key")
        self.assertNotIn(PACK_VALUE.strip(), proc.stderr)
        self.assertEqual(self.value("SELECT count(*) FROM attune.schema_migrations"), 2)


class UpstreamManagedTest(CtlTestCase):
    """A schema made by Attune's own migrations (sqlx's history table, the
    Docker runner's, or the runner claim) is never touched."""

    HISTORY = {
        "_sqlx_migrations": "(version BIGINT PRIMARY KEY, description TEXT NOT NULL, "
                            "installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN "
                            "NOT NULL, checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL)",
        "_migrations": "(filename TEXT PRIMARY KEY)",
        "_attune_migration_runner": "(id SMALLINT PRIMARY KEY, runner TEXT NOT NULL)",
    }

    def test_nothing_is_changed(self):
        self.execute("CREATE SCHEMA attune")
        for schema, table in (("attune", "_sqlx_migrations"), ("public", "_sqlx_migrations"),
                              ("attune", "_migrations"), ("public", "_attune_migration_runner")):
            with self.subTest(table="%s.%s" % (schema, table)):
                self.execute("CREATE TABLE %s.%s %s" % (schema, table, self.HISTORY[table]))
                proc = self.assertExit(self.ctl("migrate", env=ENC_ENV), EXIT_OK)
                self.assertEqual(proc.stderr, "")
                self.assertEqual(proc.stdout.count("\n"), 1, proc.stdout)
                self.assertIn("%s.%s" % (schema, table), proc.stdout)
                self.assertIn("Attune's own migrations", proc.stdout)
                tables = {r["table_name"] for r in self.rows(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = 'attune'")}
                self.assertEqual(tables, {table} if schema == "attune" else set())
                self.assertEqual(self.value("SELECT count(*) FROM pg_type t JOIN pg_namespace n "
                                            "ON n.oid = t.typnamespace WHERE n.nspname = "
                                            "'attune' AND t.typtype = 'e'"), 0)
                self.execute("DROP TABLE %s.%s" % (schema, table))


if __name__ == "__main__":
    unittest.main()
