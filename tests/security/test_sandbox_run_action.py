"""The sandbox's uid mode in run-action (as root): the action runs on a uid of the
range with its own HOME, the example actions of every runtime still work, a
`setsid` daemon does not outlive the execution, and userns is refused."""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

from support import (EXAMPLE_PACKS, SOURCE_DIR, WORKER_BIN, WorkerTestCase,  # noqa: E402
                     skip_unless_reachable_by_others)

EXAMPLES = os.path.join(SOURCE_DIR, "packs")
UID_FIRST, UID_COUNT = 232000, 16
SANDBOX_ENV = {"ATTUNE__SANDBOX__MODE": "uid",
               "ATTUNE__SANDBOX__UID_RANGE": "%d+%d" % (UID_FIRST, UID_COUNT)}

PACK_YAML = "ref: sbxra\nlabel: sbxra\ndescription: test pack\nversion: 1.0.0\n"
PROBE = ("probe", "shell", "json", r"""#!/usr/bin/env bash
setsid sleep 1000 < /dev/null > /dev/null 2>&1 &
printf '{"uid":%d,"home":"%s","daemon":%d}\n' "$(id -u)" "$HOME" $!
""")


def alive(pid):
    return os.path.exists("/proc/%d/stat" % pid)


@unittest.skipUnless(os.geteuid() == 0, "the uid sandbox needs the worker to run as root")
class RunActionSandboxTest(WorkerTestCase):

    def setUp(self):
        super().setUp()
        os.chmod(self.tmp, 0o755)
        self.packs = self.path("packs")
        actions = os.path.join(self.packs, "sbxra", "actions")
        os.makedirs(actions)
        with open(os.path.join(self.packs, "sbxra", "pack.yaml"), "w") as f:
            f.write(PACK_YAML)
        name, runner, output, code = PROBE
        with open(os.path.join(actions, name + ".sh"), "w") as f:
            f.write(code)
        os.chmod(os.path.join(actions, name + ".sh"), 0o755)
        with open(os.path.join(actions, name + ".yaml"), "w") as f:
            f.write("name: %s\nrunner_type: %s\nentry_point: %s.sh\noutput_format: %s\n"
                    % (name, runner, name, output))

    def test_own_uid_home_and_no_daemon_left(self):
        run = self.run_action("sbxra.probe", packs_dir=self.packs, env=SANDBOX_ENV)
        data = self.assertRun(run, 0, "completed")["data"]
        self.assertTrue(UID_FIRST <= data["uid"] < UID_FIRST + UID_COUNT, data)
        self.assertTrue(data["home"].startswith(self.artifacts + "/"), data)
        deadline = time.monotonic() + 5
        while alive(data["daemon"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive(data["daemon"]):
            os.kill(data["daemon"], 9)
            self.fail("the setsid daemon outlived its execution by 5 s")

    def test_examples_of_every_runtime(self):
        skip_unless_reachable_by_others(WORKER_BIN, EXAMPLE_PACKS)
        secrets = self.secrets_file({"api_token": "tok-0123456789"})
        cases = [("examples.hello", {"name": "Ada"}, None),
                 ("examples.greet", {"name": "Ada"}, None),
                 ("examples.list_files", None, None),
                 ("examples.secret_demo", None, secrets)]
        for ref, params, secrets_file in cases:
            with self.subTest(ref=ref):
                run = self.run_action(ref, params=params, secrets_file=secrets_file,
                                      packs_dir=EXAMPLES, env=SANDBOX_ENV)
                result = self.assertRun(run, 0, "completed")
                self.assertEqual(result["stderr"], "", json.dumps(result))

    def test_userns_refused_as_root(self):
        run = self.run_action("sbxra.probe", packs_dir=self.packs,
                              env={"ATTUNE__SANDBOX__MODE": "userns"})
        self.assertNotEqual(run.rc, 0, run.describe())
        self.assertIn(b"userns is for a worker that is not root", run.stderr)


if __name__ == "__main__":
    unittest.main()
