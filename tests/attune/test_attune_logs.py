"""An execution's stdout and stderr as Attune records them (ATTUNE-TODAY 3.11,
5.7, 5.8): per stream an artifact "{action_ref}.{stream}.log", a version of it
for the execution pointing at the log file by a path relative to the artifacts
directory, and a shared_file log stream, sealed at the end with the file's
size and SHA-256 as Attune's API seals it. A client reads both files through
their rows while the action runs, as Attune's API streams them; `stderr_log`
in the result is that file; `artifacts.log_rows: false` writes no row."""
import hashlib
import os
import time
import unittest

from attune_support import PACK_REF, SLOW, AttuneTestCase

LOG_COLUMNS = (
    "a.id AS artifact_id, a.ref, a.scope::text AS scope, a.owner, a.type::text AS type, "
    "a.visibility::text AS visibility, a.classification::text AS classification, "
    "a.retention_policy::text AS retention_policy, a.retention_limit, a.name, "
    "a.description, a.content_type AS artifact_content_type, a.size_bytes AS artifact_size, "
    "v.id AS version_id, v.version, v.execution, v.content_type, v.file_path, v.meta, "
    "v.created_by, v.body_state::text AS body_state, v.size_bytes, v.sha256, v.object_key, "
    "s.backend::text AS backend, s.sealed, s.total_bytes, s.truncated, s.sealed_at, "
    "s.max_unflushed_bytes, s.max_unflushed_milliseconds")


class LogRowsTest(AttuneTestCase):

    @classmethod
    def setUpData(cls):
        cls.add_action("shell_fail", "fail.sh", "shell", output="text")
        cls.add_action("shell_drip", "drip.sh", "shell", output="text")
        cls.add_action("shell_kept", "fail.sh", "shell", output="text")
        cls.db.execute("UPDATE attune.action SET log_retention_policy = 'hours', "
                       "log_retention_limit = 3 WHERE id = %s", (cls.actions["shell_kept"]["id"],))

    def log_rows(self, execution_id):
        """{stream: row} of the execution's log versions."""
        rows = self.db.rows(
            "SELECT " + LOG_COLUMNS + " FROM attune.artifact_version v "
            "JOIN attune.artifact a ON a.id = v.artifact "
            "LEFT JOIN attune.log_stream s ON s.artifact_version = v.id "
            "WHERE v.execution = %s ORDER BY v.id", (execution_id,))
        return {r["meta"]["stream"]: r for r in rows}

    def wait_log_rows(self, execution_id, sealed, timeout=10 * SLOW):
        deadline = time.monotonic() + timeout
        rows = {}
        while time.monotonic() < deadline:
            rows = self.log_rows(execution_id)
            if len(rows) == 2 and all(r["sealed"] == sealed for r in rows.values()):
                return rows
            time.sleep(0.02)
        self.fail("the log rows of execution %d are not there (sealed %s): %r"
                  % (execution_id, sealed, rows))

    def file_of(self, row):
        """The file a version names, resolved as Attune's API resolves it."""
        path = row["file_path"]
        self.assertFalse(os.path.isabs(path), path)
        self.assertNotIn("..", path.split("/"))
        return os.path.join(self.artifacts_dir, path)

    def assertStreamRows(self, rows, run, action, worker):
        ref = self.actions[action]["ref"]
        for stream in ("stdout", "stderr"):
            row = rows[stream]
            self.assertEqual(
                {k: row[k] for k in ("ref", "scope", "owner", "type", "visibility",
                                     "classification", "name", "artifact_content_type",
                                     "execution", "content_type", "meta", "created_by",
                                     "backend", "max_unflushed_bytes",
                                     "max_unflushed_milliseconds")},
                {"ref": "%s.%s.log" % (ref, stream), "scope": "action", "owner": ref,
                 "type": "file_text", "visibility": "private", "classification": "runtime_log",
                 "name": "%s %s" % (ref, stream), "artifact_content_type": "text/plain",
                 "execution": run.id, "content_type": "text/plain",
                 "meta": {"stream": stream, "execution_id": run.id}, "created_by": "worker",
                 "backend": "shared_file", "max_unflushed_bytes": 1048576,
                 "max_unflushed_milliseconds": 500}, stream)
            self.assertEqual(row["file_path"], "%s/%d/%s.log" % (worker.name, run.id, stream))
            self.assertIsNone(row["object_key"])
            # Sealed as Attune's API seals a shared file: what the file holds.
            with open(self.file_of(row), "rb") as f:
                body = f.read()
            self.assertEqual((row["body_state"], row["size_bytes"], row["total_bytes"],
                              row["artifact_size"], row["sha256"]),
                             ("ready", len(body), len(body), len(body),
                              hashlib.sha256(body).hexdigest()), stream)
            self.assertIs(row["truncated"], False)
            self.assertIsNotNone(row["sealed_at"])

    def test_rows_of_a_run(self):
        run = self.run_action("shell_fail", {"word": "x"})
        self.assertEqual(run.status, "failed", run.describe())
        rows = self.wait_log_rows(run.id, sealed=True)
        self.assertStreamRows(rows, run, "shell_fail", self.worker)
        for row in rows.values():
            self.assertEqual((row["retention_policy"], row["retention_limit"]), ("days", 7))
            self.assertEqual(row["description"], "Captured %s for action '%s' (retention: Days 7)"
                             % (row["meta"]["stream"], self.actions["shell_fail"]["ref"]))
        with open(self.file_of(rows["stdout"]), encoding="utf-8") as f:
            self.assertIn("partial output before the failure", f.read())
        with open(self.file_of(rows["stderr"]), encoding="utf-8") as f:
            self.assertIn("the widget exploded", f.read())
        # 5.7: stderr_log is {artifacts_dir}/{file_path} of the stderr version.
        self.assertEqual(run.result.get("stderr_log"), self.file_of(rows["stderr"]),
                         run.describe())

        # The next run of the action is the next version of the same artifacts.
        again = self.run_action("shell_fail", {"word": "y"})
        later = self.wait_log_rows(again.id, sealed=True)
        for stream in ("stdout", "stderr"):
            self.assertEqual(later[stream]["artifact_id"], rows[stream]["artifact_id"])
            self.assertEqual(later[stream]["version"], rows[stream]["version"] + 1)
        self.assertEqual(self.db.value(
            "SELECT count(*) FROM attune.artifact WHERE ref LIKE %s",
            ("%s.shell_fail.%%" % PACK_REF,)), 2)

    def test_the_action_sets_the_retention(self):
        run = self.run_action("shell_kept", {"word": "x"})
        rows = self.wait_log_rows(run.id, sealed=True)
        for row in rows.values():
            self.assertEqual((row["retention_policy"], row["retention_limit"]), ("hours", 3))
            self.assertEqual(row["description"], "Captured %s for action '%s' (retention: Hours 3)"
                             % (row["meta"]["stream"], self.actions["shell_kept"]["ref"]))

    def test_a_client_reads_the_log_while_it_grows(self):
        listener = self.event_listener()
        eid = self.create_execution("shell_drip", {"word": "x"})
        self.dispatch(eid, {"word": "x"})
        rows = self.wait_log_rows(eid, sealed=False)
        self.assertEqual(rows["stdout"]["body_state"], "pending")
        self.assertIsNone(rows["stdout"]["sha256"])
        # While the stream is not sealed, Attune's API serves the file as it
        # is on disk: its size now, its bytes up to that size.
        paths = {stream: self.file_of(rows[stream]) for stream in ("stdout", "stderr")}
        seen = {stream: [] for stream in paths}
        deadline = time.monotonic() + 20 * SLOW
        while time.monotonic() < deadline and not self.log_rows(eid)["stdout"]["sealed"]:
            for stream, path in paths.items():
                with open(path, "rb") as f:
                    body = f.read()
                if not seen[stream] or len(body) > len(seen[stream][-1]):
                    seen[stream].append(body)
            time.sleep(0.1)
        run = self.wait_run(eid, listener)
        self.assertEqual(run.status, "completed", run.describe())
        # Each file seen at least twice with part of the output, before its last line.
        for stream, first, last in (("stdout", b"drip line 1\n", b"drip done"),
                                    ("stderr", b"drip warning 2\n", b"drip warning 12")):
            growing = [b for b in seen[stream] if b.startswith(first) and last not in b]
            self.assertGreaterEqual(len(growing), 2, "%s was not seen growing: %r"
                                    % (stream, seen[stream]))
            for earlier, later in zip(seen[stream], seen[stream][1:]):
                self.assertTrue(later.startswith(earlier), "%s was rewritten, not appended"
                                % stream)
        rows = self.wait_log_rows(eid, sealed=True)
        self.assertStreamRows(rows, run, "shell_drip", self.worker)
        with open(paths["stdout"], "rb") as f:
            self.assertTrue(f.read().endswith(b"drip done\n"))
        with open(paths["stderr"], "rb") as f:
            self.assertTrue(f.read().endswith(b"drip warning 12\n"))

    def test_no_rows_when_switched_off(self):
        worker = self.start_worker(extra={"ATTUNE__ARTIFACTS__LOG_ROWS": "false"})
        run = self.run_action("shell_fail", {"word": "off"}, worker=worker)
        self.assertEqual(run.status, "failed", run.describe())
        time.sleep(0.3)
        self.assertEqual(self.log_rows(run.id), {})
        # The files and the result's stderr_log are the same without the rows.
        stderr_log = os.path.join(self.artifacts_dir, worker.name, str(run.id), "stderr.log")
        self.assertEqual(run.result.get("stderr_log"), stderr_log, run.describe())
        with open(stderr_log, encoding="utf-8") as f:
            self.assertIn("the widget exploded", f.read())


if __name__ == "__main__":
    unittest.main()
