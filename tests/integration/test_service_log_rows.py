"""The log rows on this project's own schema (`attunectl migrate`, migration
0005_log_artifacts): an execution's stdout and stderr get Attune's artifact,
artifact_version and log_stream rows, sealed with the files' size and SHA-256;
artifacts deleted behind the worker's back are made again; a database without
those tables gets none, with one warning, and the action runs all the same. The same rows on Attune's own schema: tests/attune."""
import hashlib
import os
import unittest

from service_support import SLOW, ServiceTestCase, wait_until_value, write_action_file, write_pack

SAY_SH = """#!/bin/bash
echo "said $PARAM_WORD"
echo "complained $PARAM_WORD" >&2
"""


class LogRowsOwnSchemaTest(ServiceTestCase):

    @classmethod
    def setUpData(cls):
        write_pack(cls.packs_dir, "logs")
        write_action_file(cls.packs_dir, "logs", "say.sh", SAY_SH)
        cls.pack_id = cls.db.insert_pack("logs")
        cls.db.insert_action(cls.pack_id, "logs", "say", "say.sh",
                             params={"word": {"type": "string"}})

    def run_say(self, w, word):
        eid = self.db.insert_execution("logs.say", {"word": word})
        self.broker.dispatch(w.id, eid, "logs.say", {"word": word})
        row = self.wait_final(eid, worker=w)
        self.assertEqual(row["status"], "completed", "%r\n%s" % (row, w.describe()))
        return eid, row["result"]

    def versions(self, eid):
        return self.db.rows(
            "SELECT a.ref, a.classification::text AS classification, a.size_bytes AS art_size, "
            "v.file_path, v.meta, v.body_state::text AS body_state, v.size_bytes, v.sha256, "
            "s.backend::text AS backend, s.sealed, s.total_bytes FROM attune.artifact_version v "
            "JOIN attune.artifact a ON a.id = v.artifact "
            "JOIN attune.log_stream s ON s.artifact_version = v.id "
            "WHERE v.execution = %s ORDER BY v.meta ->> 'stream' DESC", (eid,))

    def test_rows_on_this_projects_schema(self):
        self.assertEqual(self.db.migrated_by, "attunectl")
        w = self.start_worker()
        eid, result = self.run_say(w, "hello")
        self.assertTrue(wait_until_value(
            lambda: [r["sealed"] for r in self.versions(eid)] == [True, True], 10 * SLOW),
            "%r\n%s" % (self.versions(eid), w.describe()))
        rows = self.versions(eid)
        self.assertEqual([r["ref"] for r in rows], ["logs.say.stdout.log", "logs.say.stderr.log"])
        for row, stream in zip(rows, ("stdout", "stderr")):
            self.assertEqual(row["file_path"], "%s/%d/%s.log" % (w.name, eid, stream))
            with open(os.path.join(self.artifacts_dir, row["file_path"]), "rb") as f:
                body = f.read()
            self.assertEqual((row["classification"], row["meta"], row["body_state"],
                              row["backend"], row["size_bytes"], row["total_bytes"],
                              row["art_size"], row["sha256"]),
                             ("runtime_log", {"stream": stream, "execution_id": eid}, "ready",
                              "shared_file", len(body), len(body), len(body),
                              hashlib.sha256(body).hexdigest()))
        self.assertEqual(result["stderr_log"],
                         os.path.join(self.artifacts_dir, rows[1]["file_path"]))

        # The worker takes the action's artifacts as known for a while; when
        # they are gone (Attune's retention deletes empty ones), it makes them
        # again rather than losing the rows.
        self.db.execute("DELETE FROM attune.artifact WHERE ref LIKE 'logs.say.%%'")
        eid, _ = self.run_say(w, "again")
        self.assertTrue(wait_until_value(
            lambda: [r["sealed"] for r in self.versions(eid)] == [True, True], 10 * SLOW),
            "%r\n%s" % (self.versions(eid), w.describe()))
        self.assertNotIn("could not be recorded", w.log(), w.describe())

    def test_without_the_tables_no_rows_and_the_action_runs(self):
        # Last in this class: the tables are gone for the tests after it.
        self.db.execute("DROP TABLE attune.log_stream, attune.artifact_version, attune.artifact")
        w = self.start_worker()
        self.assertTrue(w.wait_log(r"log rows are off", 10 * SLOW), w.describe())
        eid, result = self.run_say(w, "still")
        self.assertIn("complained still", result["stderr"])
        self.stop_worker(w)
        self.assertEqual(w.log().count("log rows are off"), 1, w.describe())
        self.assertNotIn("could not be recorded", w.log(), w.describe())


if __name__ == "__main__":
    unittest.main()
