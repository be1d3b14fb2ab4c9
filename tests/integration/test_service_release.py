"""Executions pinned to a pack release, as Attune's executor leaves them today:
the worker runs the code of the release's folder
({packs_base_dir}/.releases/sha256/{digest}/pack) and the action of the
execution's executable_snapshot, while a different copy of the pack sits at
{packs_base_dir}/{pack_ref} and the live action row says otherwise; a dispatch
message naming another release, or a release folder that is missing, fails the
execution and nothing runs; an execution canceling when it is dispatched is
reported cancelled and not run."""
import hashlib
import os
import unittest
import uuid

from service_support import ServiceTestCase, write_action_file, write_pack

# Both write the sentinel file named by their parameter, and say who they are.
RELEASE_SH = """#!/bin/bash
touch "$PARAM_SENTINEL"
printf '{"code": "release", "count": %s}\\n' "$PARAM_COUNT"
"""
VERSION_PY = """import os


def run(**params):
    return {"chosen": os.environ.get("VERSION_CHOSEN")}
"""
LIVE_SH = """#!/bin/bash
touch "$PARAM_SENTINEL"
echo '{"code": "live copy"}'
"""


class ServiceReleaseTest(ServiceTestCase):

    @classmethod
    def setUpData(cls):
        db = cls.db
        cls.digest = hashlib.sha256(b"release 1.1.0 of rel").hexdigest()
        cls.missing_digest = hashlib.sha256(b"a release never unpacked here").hexdigest()
        # The live copy: the same file name, other code, and one more file.
        write_pack(cls.packs_dir, "rel")
        write_action_file(cls.packs_dir, "rel", "show.sh", LIVE_SH)
        write_action_file(cls.packs_dir, "rel", "live.sh", LIVE_SH)
        release_dir = os.path.join(cls.packs_dir, ".releases", "sha256", cls.digest, "pack")
        write_pack(release_dir, "")
        write_action_file(release_dir, "", "show.sh", RELEASE_SH)
        write_action_file(release_dir, "", "version.py", VERSION_PY, 0o644)
        cls.pack_id = db.insert_pack("rel")
        # The live row points to live.sh, outputs text and has no defaults.
        cls.action_id = db.insert_action(cls.pack_id, "rel", "show", "live.sh",
                                         params={"sentinel": {"type": "string"}})
        cls.release_id = db.value(
            "INSERT INTO attune.pack_release (pack, pack_ref, version, digest, archive_path, "
            "content_path, archive_size, manifest) VALUES (%s, 'rel', '1.1.0', %s, "
            "'/archives/rel.tar.gz', '/content/rel', 10, '{}') RETURNING id",
            (cls.pack_id, cls.digest))

    def snapshot(self, digest):
        """What Attune's executor snapshots: the action and its runtime as they
        were when the release was made."""
        return {
            "release": {"id": self.release_id, "digest": digest, "content_path": "/content/rel"},
            "executable": {
                "action": {"id": self.action_id, "ref": "rel.show", "pack": self.pack_id,
                           "pack_ref": "rel", "label": "Show", "description": None,
                           "entrypoint": "show.sh", "runtime": None, "enabled": True,
                           "param_schema": {"sentinel": {"type": "string"},
                                            "count": {"type": "integer", "default": 7}},
                           "out_schema": None, "is_adhoc": False, "timeout_seconds": 30,
                           "parameter_delivery": "stdin", "parameter_format": "json",
                           "output_format": "json"},
                "runtime": None, "runtime_versions": [], "workflow_definition": None},
            "pack_executables": {},
        }

    def pinned(self, digest=None, status="scheduled"):
        """A pinned execution and the sentinel path its action would create."""
        digest = digest or self.digest
        sentinel = os.path.join(self.tmp, "ran-" + uuid.uuid4().hex[:8])
        eid = self.db.insert_execution(
            "rel.show", {"sentinel": sentinel}, status=status, pack_release=self.release_id,
            pack_release_digest=digest, executable_snapshot=self.snapshot(digest))
        return eid, sentinel

    def dispatch(self, w, eid, release_id, digest):
        self.broker.dispatch(w.id, eid, "rel.show", None, release_id=release_id,
                             release_digest=digest)

    def test_pinned_execution_runs_the_release(self):
        w = self.start_worker()
        eid, sentinel = self.pinned()
        self.dispatch(w, eid, self.release_id, self.digest)
        row = self.wait_final(eid, worker=w)
        self.assertEqual(row["status"], "completed", "%r\n%s" % (row, w.describe()))
        # The snapshot's entry point, output format and defaults; the release's code.
        self.assertEqual(row["result"].get("data"), {"code": "release", "count": 7}, row)
        self.assertTrue(os.path.exists(sentinel))

    def test_snapshot_runtime_version_is_chosen(self):
        """The snapshot's runtime_versions entry Attune's worker would pick (the
        constraint, among the versions this worker advertises) gives the
        runtime's definition."""
        w = self.start_worker()
        caps = self.db.worker(w.id)["capabilities"]
        here = caps["runtime_versions"]["python"][0]  # what this worker advertises

        def config(chosen):
            return {"interpreter": {"binary": "python3"}, "env_vars": {"VERSION_CHOSEN": chosen}}

        snap = self.snapshot(self.digest)
        action = snap["executable"]["action"]
        action.update(entrypoint="version.py", runtime_version_constraint=">=3")
        snap["executable"]["runtime"] = {"name": "Python", "execution_config": config("runtime")}
        snap["executable"]["runtime_versions"] = [
            {"version": "2.7.18", "execution_config": config("old"), "is_default": True,
             "available": True},
            {"version": here, "execution_config": config("this one"), "is_default": False,
             "available": True}]
        eid = self.db.insert_execution(
            "rel.show", {}, pack_release=self.release_id, pack_release_digest=self.digest,
            executable_snapshot=snap)
        self.dispatch(w, eid, self.release_id, self.digest)
        row = self.wait_final(eid, worker=w)
        self.assertEqual(row["status"], "completed", "%r\n%s" % (row, w.describe()))
        self.assertEqual(row["result"].get("data"), {"chosen": "this one"}, row)

    def test_release_mismatch_fails_and_nothing_runs(self):
        w = self.start_worker()
        cases = [(None, None), (self.release_id, self.missing_digest),
                 (self.release_id + 1, self.digest)]
        for release_id, digest in cases:
            eid, sentinel = self.pinned()
            self.dispatch(w, eid, release_id, digest)
            row = self.wait_final(eid, worker=w)
            self.assertEqual(row["status"], "failed", "%r\n%s" % (row, w.describe()))
            self.assertIn("the dispatch message names pack release", row["result"]["error"])
            self.assertIsNone(row["result"].get("exit_code"), row)
            self.assertFalse(os.path.exists(sentinel), "the action ran")

    def test_missing_release_folder_fails(self):
        w = self.start_worker()
        eid, sentinel = self.pinned(self.missing_digest)
        self.dispatch(w, eid, self.release_id, self.missing_digest)
        row = self.wait_final(eid, worker=w)
        self.assertEqual(row["status"], "failed", "%r\n%s" % (row, w.describe()))
        folder = os.path.join(self.packs_dir, ".releases", "sha256", self.missing_digest, "pack")
        self.assertIn(folder, row["result"]["error"])
        self.assertFalse(os.path.exists(sentinel), "the action ran")

    def test_canceling_at_dispatch_is_reported_cancelled(self):
        w = self.start_worker()
        events = self.event_listener()
        eid, sentinel = self.pinned(status="canceling")
        self.dispatch(w, eid, self.release_id, self.digest)
        self.assertTrue(events.wait_for(lambda _: len(events.completed(eid)) == 1, 20),
                        w.describe())
        status = [env["payload"] for _, _, env in events.events(eid, "ExecutionStatusChanged")]
        self.assertEqual([(p["previous_status"], p["new_status"]) for p in status],
                         [("canceling", "cancelled")])
        completed = events.completed(eid)[0][2]["payload"]
        self.assertEqual((completed["status"], completed["action_id"]),
                         ("Cancelled", self.action_id))
        # Attune's worker writes nothing in this case: the row is as it was.
        self.assertEqual(self.db.execution(eid)["status"], "canceling")
        self.assertFalse(os.path.exists(sentinel), "the action ran")


if __name__ == "__main__":
    unittest.main()
