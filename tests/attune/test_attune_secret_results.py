"""Secret output fields (ATTUNE-TODAY 3.6, 5.7; redact_action_result in
common/secret_values.rs and its use in worker/executor.rs at f3e5d1c): the
fields an action's out_schema marks "secret": true are replaced in
execution.result.data by the marker, in the row and in execution.completed;
each value is stored in execution_secret_value (entity_type execution_result,
json_path /data/...) as encrypt_json, decrypted here by an independent
AES-GCM; once anything is secret the captured outputs are masked too; and a
worker without an encryption key fails the execution rather than keep the
value in the clear."""
import base64
import hashlib
import json
import os
import unittest
import uuid

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from attune_support import ENCRYPTION_KEY, SECRET_MARKER, AttuneTestCase, key_hash

FLAT_SCHEMA = {
    "user": {"type": "string"},
    "password": {"type": "string", "secret": True},
}
JSON_SCHEMA = {
    "type": "object",
    "properties": {
        "db": {"type": "object", "properties": {"host": {"type": "string"},
                                                "password": {"type": "string", "secret": True}}},
        "note": {"type": "string"},
    },
}


def decrypt_json(stored, key_string=ENCRYPTION_KEY):
    """decrypt_json (common/crypto.rs): a JSON string holding base64 of nonce
    || ciphertext || tag, the plaintext the value's compact JSON text."""
    raw = base64.b64decode(stored)
    key = hashlib.sha256(key_string.encode("utf-8")).digest()
    return json.loads(AESGCM(key).decrypt(raw[:12], raw[12:], None).decode("utf-8"))


class SecretResultTest(AttuneTestCase):

    @classmethod
    def setUpData(cls):
        cls.add_action("echo_flat", "echo.py", "python", out_schema=FLAT_SCHEMA)
        cls.add_action("echo_json_schema", "echo.py", "python", out_schema=JSON_SCHEMA)
        cls.add_action("echo_plain", "echo.py", "python")

    def secret_rows(self, execution_id):
        return {r["json_path"]: r for r in self.db.rows(
            "SELECT entity_type, entity_id, json_path, source_kind, source_ref, encrypted_value, "
            "encryption_key_hash FROM attune.execution_secret_value "
            "WHERE entity_id = %s AND entity_type = 'execution_result'", (execution_id,))}

    def assertNowhere(self, secret, run, worker=None):
        """The value is in neither the row, the message, result.json nor the log."""
        worker = worker or self.worker
        self.assertNotIn(secret, json.dumps(run.row["result"]), run.describe())
        self.assertNotIn(secret, json.dumps(run.completed), run.describe())
        path = os.path.join(self.artifacts_dir, worker.name, str(run.id), "result.json")
        with open(path, encoding="utf-8") as f:
            self.assertNotIn(secret, f.read(), "result.json holds the secret value")
        self.assertNotIn(secret, worker.log(), "the worker logged the secret value")

    def assertSealed(self, row, run, json_path, value, schema_path):
        self.assertEqual(row["entity_type"], "execution_result")
        self.assertEqual(row["entity_id"], run.id)
        self.assertEqual(row["json_path"], json_path)
        self.assertEqual(row["encryption_key_hash"], key_hash())
        self.assertIsInstance(row["encrypted_value"], str, "encrypted_value is a JSON string")
        self.assertEqual(decrypt_json(row["encrypted_value"]), value)
        # Attune's worker writes its provenance: the schema path of the value.
        self.assertEqual(row["source_kind"], "provenance")
        self.assertEqual(json.loads(row["source_ref"]), {
            "origins": [{"kind": "local", "source_kind": "parameter_schema",
                         "source_ref": schema_path}],
            "templates": []})

    def test_flat_schema(self):
        password = "pw-" + uuid.uuid4().hex
        run = self.run_action("echo_flat", {"output": {"user": "ada", "password": password}})
        self.assertCompleted(run)
        self.assertEqual(run.data, {"user": "ada", "password": SECRET_MARKER}, run.describe())
        sent = run.completed["payload"]["result"]
        self.assertEqual(sent, run.row["result"], "execution.completed carries the row's result")
        self.assertEqual(sent["data"]["password"], SECRET_MARKER)
        self.assertReported(run, "completed", "Completed", "echo_flat")
        rows = self.secret_rows(run.id)
        self.assertEqual(sorted(rows), ["/data/password"], rows)
        self.assertSealed(rows["/data/password"], run, "/data/password", password, "/password")
        self.assertNowhere(password, run)

    def test_json_schema_nested(self):
        password = "pw-" + uuid.uuid4().hex
        output = {"db": {"host": "db.example", "password": password}, "note": "kept"}
        run = self.run_action("echo_json_schema", {"output": output})
        self.assertCompleted(run)
        self.assertEqual(run.data, {"db": {"host": "db.example", "password": SECRET_MARKER},
                                    "note": "kept"}, run.describe())
        rows = self.secret_rows(run.id)
        self.assertEqual(sorted(rows), ["/data/db/password"], rows)
        self.assertSealed(rows["/data/db/password"], run, "/data/db/password", password,
                          "/db/password")
        self.assertNowhere(password, run)

    def test_failure_masks_the_outputs(self):
        """A failed run keeps stdout (not parsed) and has stderr and error: all
        masked once the schema marks a field secret, each value stored."""
        password = "pw-" + uuid.uuid4().hex
        config = {"output": {"password": password}, "stderr": "leaked " + password,
                  "exit_code": 3}
        run = self.run_action("echo_flat", config)
        self.assertEqual(run.status, "failed", run.describe())
        self.assertIs(run.result.get("succeeded"), False, run.describe())
        self.assertEqual(run.result.get("exit_code"), 3, run.describe())
        for key in ("stdout", "error"):
            self.assertEqual(run.result.get(key), SECRET_MARKER, run.describe())
        rows = self.secret_rows(run.id)
        self.assertTrue({"/stdout", "/error"} <= set(rows), rows)
        self.assertIn(password, decrypt_json(rows["/stdout"]["encrypted_value"]))
        self.assertIn(password, decrypt_json(rows["/error"]["encrypted_value"]))
        self.assertReported(run, "failed", "Failed", "echo_flat")
        self.assertNowhere(password, run)

    def test_nothing_secret_is_left_alone(self):
        run = self.run_action("echo_plain", {"output": {"password": "not-marked"}})
        self.assertCompleted(run)
        self.assertEqual(run.data, {"password": "not-marked"}, run.describe())
        self.assertEqual(self.secret_rows(run.id), {})

    def test_without_encryption_key_the_execution_fails(self):
        worker = self.start_worker(extra={"ATTUNE__SECURITY__ENCRYPTION_KEY": None})
        password = "pw-" + uuid.uuid4().hex
        run = self.run_action("echo_flat", {"output": {"user": "ada", "password": password}},
                              worker=worker)
        self.assertEqual(run.status, "failed", run.describe())
        self.assertIs(run.result.get("succeeded"), False, run.describe())
        error = run.result.get("error") or ""
        self.assertIn("/data/password", error, run.describe())
        self.assertIn("encryption_key", error, run.describe())
        self.assertEqual(run.data.get("password"), SECRET_MARKER, run.describe())
        self.assertEqual(run.completed["payload"].get("status"), "Failed", run.describe())
        self.assertEqual(self.secret_rows(run.id), {})
        self.assertNowhere(password, run, worker=worker)


if __name__ == "__main__":
    unittest.main()
