"""Parameter delivery beyond stdin and secret parameters (ATTUNE-TODAY 3.6,
3.7, 4, 5.2): file delivery through a file that never touches a disk, also
when the document holds secrets, and redacted parameters restored from
execution_secret_value, encrypted by an independent implementation of
encrypt_json."""
import json
import os
import time
import unittest
import uuid

from attune_support import (SECRET_MARKER, SLOW, AttuneTestCase, key_hash, scan_for,
                            services_dirs)

# A flat parameter schema (what upstream stores): secret paths are marked.
SECRET_SCHEMA = {
    "user": {"type": "string"},
    "password": {"type": "string", "secret": True},
    "api": {"type": "object", "properties": {"token": {"type": "object", "secret": True},
                                             "region": {"type": "string"}}},
    "started_file": {"type": "string"},
}


class ParameterTest(AttuneTestCase):

    @classmethod
    def setUpData(cls):
        cls.add_action("python_file", "report.py", "python", delivery="file", fmt="json")
        cls.add_action("python_secret", "report.py", "python", param_schema=SECRET_SCHEMA)
        file_secret = cls.add_action("python_file_secret", "report.py", "python",
                                     delivery="file", fmt="json", param_schema=SECRET_SCHEMA)
        cls.file_key_value = "key-file-" + uuid.uuid4().hex
        cls.db.insert_key("kc_file_secret", cls.file_key_value, owner_type="action",
                          owner_action=file_secret)

    def path(self, name):
        return os.path.join(self.tmp, "%s-%s" % (uuid.uuid4().hex[:8], name))

    def wait_started(self, eid, started):
        deadline = time.monotonic() + 20 * SLOW
        while not os.path.exists(started) and time.monotonic() < deadline:
            if self.db.execution(eid)["status"] in ("completed", "failed", "timeout"):
                break
            time.sleep(0.02)
        self.assertTrue(os.path.exists(started), "the action did not start\n%r\n%s" % (
            self.db.execution(eid), self.worker.describe()))

    def files_holding(self, needles, since):
        """Files under /tmp and the worker's folders, changed since `since`,
        that hold any of the needles (the servers' own data left out)."""
        roots = ["/tmp", "/var/tmp", "/dev/shm", self.artifacts_dir, self.runtime_envs_dir,
                 self.packs_dir]
        roots = [r for r in roots if os.path.isdir(r)]
        return sorted({path for needle in needles
                       for path in scan_for(needle, roots, since, exclude=services_dirs())})

    def test_file_delivery_leaves_nothing_on_disk(self):
        marker = "mk-file-delivery-" + uuid.uuid4().hex
        started, gate = self.path("started"), self.path("gate")
        config = {"marker": marker, "started_file": started, "gate_file": gate,
                  "nested": {"also": marker}}
        since = time.time()
        listener = self.event_listener()
        eid = self.create_execution("python_file", config)
        self.dispatch(eid, config)
        self.wait_started(eid, started)
        # The action holds its parameters and waits at the gate: nothing it was
        # given may be in a file under /tmp or the worker's folders now.
        found = self.files_holding((marker,), since)
        with open(gate, "w"):
            pass
        run = self.wait_run(eid, listener)
        self.assertEqual(found, [], "the parameters were written to disk")

        self.assertCompleted(run)
        self.assertEqual(run.data.get("params"), config, run.describe())
        env = run.data.get("env") or {}
        self.assertEqual(env.get("ATTUNE_PARAMETER_DELIVERY"), "file")
        self.assertEqual(env.get("ATTUNE_PARAMETER_FORMAT"), "json")
        self.assertTrue(env.get("ATTUNE_PARAMETER_FILE"), env)
        info = run.data.get("param_file") or {}
        self.assertEqual(info.get("mode"), 0o400, "the parameter file must be 0400: %r" % info)
        name = env["ATTUNE_PARAMETER_FILE"]
        if not name.startswith(("/proc/", "/dev/fd/")):
            self.assertFalse(os.path.exists(name), "the parameter file %s outlived the run"
                             % name)

    def test_secrets_in_the_parameter_file_never_reach_disk(self):
        # A restored secret parameter and a key-store secret, merged into the
        # document the action reads from ATTUNE_PARAMETER_FILE (5.2, 3.6, 3.7):
        # not a byte of either on disk while it runs, nor afterwards (logs,
        # result files, the worker's log).
        password = "pw-file-" + uuid.uuid4().hex
        started, gate = self.path("started"), self.path("gate")
        config = {"user": "ada", "password": SECRET_MARKER, "started_file": started,
                  "gate_file": gate}
        needles = (password, self.file_key_value)
        since = time.time()
        listener = self.event_listener()
        eid = self.create_execution("python_file_secret", config)
        self.db.insert_secret_value(eid, "/password", password)
        self.dispatch(eid, config)
        self.wait_started(eid, started)
        while_running = self.files_holding(needles, since)
        with open(gate, "w"):
            pass
        run = self.wait_run(eid, listener)
        after = self.files_holding(needles, since)
        self.assertEqual(while_running, [], "a secret was on disk while the action ran")
        self.assertEqual(after, [], "a secret was left on disk after the run")

        self.assertCompleted(run)
        env = run.data.get("env") or {}
        self.assertEqual(env.get("ATTUNE_PARAMETER_DELIVERY"), "file", run.describe())
        info = run.data.get("param_file") or {}
        self.assertEqual(info.get("path"), env.get("ATTUNE_PARAMETER_FILE"),
                         "the action did not read its parameters from the file\n"
                         + run.describe())
        # Secrets are masked in the output: read the reversed copy.
        self.assertEqual(json.loads(run.data.get("params_reversed", "null")[::-1]),
                         {"user": "ada", "password": password, "started_file": started,
                          "gate_file": gate, "kc_file_secret": self.file_key_value},
                         "the file did not hold the restored secret and the key\n"
                         + run.describe())
        self.assertNotIn(password, json.dumps(run.result), "a secret in the result")
        self.assertNotIn(self.file_key_value, json.dumps(run.result), "a secret in the result")

    def test_secret_parameters_are_restored(self):
        password = "pw-" + uuid.uuid4().hex
        token = {"id": 7, "key": "tok-" + uuid.uuid4().hex, "scopes": ["read", "write"]}
        config = {"user": "ada", "password": SECRET_MARKER,
                  "api": {"token": SECRET_MARKER, "region": "eu"}}
        listener = self.event_listener()
        eid = self.create_execution("python_secret", config)
        self.db.insert_secret_value(eid, "/password", password)
        self.db.insert_secret_value(eid, "/api/token", token)
        self.dispatch(eid, config)
        run = self.wait_run(eid, listener)
        self.assertCompleted(run)
        # Secret values are masked in the output: read the reversed copy.
        self.assertEqual(json.loads(run.data.get("params_reversed", "null")[::-1]),
                         {"user": "ada", "password": password,
                          "api": {"token": token, "region": "eu"}},
                         "the redacted parameters were not restored\n" + run.describe())

    def test_secret_sealed_with_another_key_fails_the_execution(self):
        started = self.path("started")
        config = {"user": "ada", "password": SECRET_MARKER, "started_file": started}
        listener = self.event_listener()
        eid = self.create_execution("python_secret", config)
        other_key = "another-encryption-key-of-at-least-32-chars"
        self.db.insert_secret_value(eid, "/password", "pw", key_string=other_key,
                                    stored_hash=key_hash(other_key))
        self.dispatch(eid, config)
        run = self.wait_run(eid, listener)
        self.assertEqual(run.status, "failed", run.describe())
        self.assertNothingRan(run, started)
        self.assertRegex(run.result.get("error") or "", r"(?i)secret|decrypt|hash|encrypt",
                         "the error does not say why\n" + run.describe())
        self.assertIs(run.result.get("succeeded"), False, run.describe())
        self.assertEqual(run.completed["payload"].get("status"), "Failed", run.describe())


if __name__ == "__main__":
    unittest.main()
