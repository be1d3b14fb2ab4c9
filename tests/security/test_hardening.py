"""run-action seen from its own action: the action, running as the same user, can
open neither run-action's memory nor its environment (run-action is not
dumpable), and neither can write a core file."""
import json
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

from support import (FIXTURE_PACKS, WORKER_BIN, Run, WorkerTestCase, action_argv,  # noqa: E402
                     skip_unless_reachable_by_others, worker_env)

NOBODY = 65534


class RunActionHardeningTest(WorkerTestCase):

    def probe(self, prefix=()):
        argv = list(prefix) + action_argv("testpack.probe_parent", artifacts_dir=self.artifacts)
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=worker_env(), cwd=self.tmp, timeout=60)
        run = Run(argv, proc.returncode, proc.stdout, proc.stderr, 0)
        self.assertRun(run, 0, "completed")
        return run.data

    def test_no_core_file_for_run_action_or_its_action(self):
        data = self.probe()
        self.assertEqual(data["core_soft"], "0")
        self.assertEqual(data["core_hard"], "0")

    def test_action_of_the_same_user_cannot_read_run_action(self):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root to run as another user")
        skip_unless_reachable_by_others(WORKER_BIN, FIXTURE_PACKS)
        setpriv = shutil.which("setpriv")
        if not setpriv:
            raise unittest.SkipTest("setpriv not found")
        os.chmod(self.tmp, 0o755)
        os.chown(self.artifacts, NOBODY, NOBODY)
        data = self.probe([setpriv, "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY,
                           "--clear-groups"])
        self.assertEqual(data["environ"], "denied", json.dumps(data))
        self.assertEqual(data["mem"], "denied", json.dumps(data))
        self.assertEqual(data["maps"], "denied", json.dumps(data))


if __name__ == "__main__":
    unittest.main()
