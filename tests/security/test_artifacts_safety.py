"""The artifact store against someone who can write where the worker writes: a
root others can write to (or another user's) stops the service and run-action
with exit 78; an execution directory made in advance (a symlink to elsewhere, a
directory holding a FIFO as stdout.log) fails that execution with a clear error
while the worker goes on serving the next; an action that swaps its log for a
symlink does not get the link's target into its result."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

from service_support import ServiceTestCase, write_action_file, write_pack  # noqa: E402
from support import WorkerTestCase  # noqa: E402

CONFIG_EXIT = 78
NOBODY = 65534

HELLO_SH = r"""#!/usr/bin/env bash
echo '{"hello":"world"}'
"""

# Writes a line, then replaces its own stdout.log by a symlink to a file that
# holds a marker: a worker reading the log back by name would report it.
SWAP_SH = r"""#!/usr/bin/env bash
dir=$(dirname "$ATTUNE_ARTIFACTS_DIR")
echo 'MARKER-OF-THE-TARGET' >"$ATTUNE_ARTIFACTS_DIR/target"
echo 'first line'
rm -f "$dir/stdout.log"
ln -s "$ATTUNE_ARTIFACTS_DIR/target" "$dir/stdout.log"
"""


class ServiceArtifactsTest(ServiceTestCase):

    @classmethod
    def setUpData(cls):
        write_pack(cls.packs_dir, "safe")
        write_action_file(cls.packs_dir, "safe", "hello.sh", HELLO_SH)
        write_action_file(cls.packs_dir, "safe", "swap.sh", SWAP_SH)
        pack = cls.db.insert_pack("safe")
        cls.hello = (cls.db.insert_action(pack, "safe", "hello", "hello.sh", output="json"),
                     "safe.hello")
        cls.swap = (cls.db.insert_action(pack, "safe", "swap", "swap.sh"), "safe.swap")

    def refused(self, root, needle):
        w = self.start_worker(env={"ATTUNE__WORKER__ARTIFACTS_DIR": root}, wait=False)
        rc = w.wait(30)
        self.assertEqual(rc, CONFIG_EXIT, w.describe())
        self.assertIn(needle, w.log(), w.describe())

    def test_root_writable_by_others_refused(self):
        root = os.path.join(self.tmp, "open-root")
        os.mkdir(root)
        os.chmod(root, 0o777)
        self.refused(root, "not writable by group or others")

    def test_root_of_another_user_refused(self):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root to give the root to another user")
        root = os.path.join(self.tmp, "nobodys-root")
        os.mkdir(root, 0o700)
        os.chown(root, NOBODY, NOBODY)
        self.refused(root, "owned by uid %d" % NOBODY)

    def test_missing_root_created_private(self):
        root = os.path.join(self.tmp, "new", "parents", "artifacts")
        w = self.start_worker(env={"ATTUNE__WORKER__ARTIFACTS_DIR": root})
        self.assertEqual(os.stat(root).st_mode & 0o7777, 0o700)
        self.assertEqual(os.stat(os.path.dirname(root)).st_mode & 0o7777, 0o755)
        self.stop_worker(w)

    def run_one(self, w, action):
        eid = self.db.insert_execution(action[1], action_id=action[0])
        self.broker.dispatch(w.id, eid, action[1], None)
        return eid

    def test_planted_execution_dirs_fail_and_the_worker_goes_on(self):
        w = self.start_worker()
        worker_dir = os.path.join(self.artifacts_dir, w.name)
        os.makedirs(worker_dir, 0o700, exist_ok=True)
        elsewhere = os.path.join(self.tmp, "elsewhere-%s" % w.name)
        os.mkdir(elsewhere, 0o700)
        by_link = self.db.insert_execution(self.hello[1], action_id=self.hello[0])
        os.symlink(elsewhere, os.path.join(worker_dir, str(by_link)))
        by_fifo = self.db.insert_execution(self.hello[1], action_id=self.hello[0])
        os.mkdir(os.path.join(worker_dir, str(by_fifo)), 0o700)
        os.mkfifo(os.path.join(worker_dir, str(by_fifo), "stdout.log"), 0o600)
        for eid in (by_link, by_fifo):
            self.broker.dispatch(w.id, eid, self.hello[1], None)
            row = self.wait_final(eid, worker=w)
            self.assertEqual(row["status"], "failed", "%r\n%s" % (row, w.describe()))
            self.assertIn("already exists", row["result"]["error"], row)
        self.assertEqual(os.listdir(elsewhere), [], "the worker wrote through the symlink")
        # The worker is still serving.
        eid = self.run_one(w, self.hello)
        row = self.wait_final(eid, worker=w)
        self.assertEqual(row["status"], "completed", "%r\n%s" % (row, w.describe()))
        self.assertEqual(row["result"]["data"], {"hello": "world"})
        self.assertTrue(w.alive(), w.describe())

    def test_swapped_log_is_not_followed(self):
        w = self.start_worker()
        eid = self.run_one(w, self.swap)
        row = self.wait_final(eid, worker=w)
        self.assertEqual(row["status"], "completed", "%r\n%s" % (row, w.describe()))
        self.assertEqual(row["result"]["stdout"], "first line\n", row)
        self.assertNotIn("MARKER", str(row["result"]))


class RunActionArtifactsTest(WorkerTestCase):

    def test_root_writable_by_others_refused(self):
        root = self.path("open-root")
        os.mkdir(root)
        os.chmod(root, 0o777)
        run = self.run_action("testpack.write_artifact",
                              params={"filename": "a.txt", "content": "x"}, artifacts_dir=root)
        self.assertEqual(run.rc, CONFIG_EXIT, run.describe())
        self.assertIn(b"not writable by group or others", run.stderr, run.describe())
        self.assertEqual(os.listdir(root), [])

    def test_root_of_another_user_refused(self):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root to give the root to another user")
        root = self.path("nobodys-root")
        os.mkdir(root, 0o700)
        os.chown(root, NOBODY, NOBODY)
        run = self.run_action("testpack.write_artifact",
                              params={"filename": "a.txt", "content": "x"}, artifacts_dir=root)
        self.assertEqual(run.rc, CONFIG_EXIT, run.describe())
        self.assertIn(b"owned by uid %d" % NOBODY, run.stderr, run.describe())


if __name__ == "__main__":
    unittest.main()
