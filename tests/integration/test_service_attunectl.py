"""End to end with the admin tool: `attunectl migrate`, `pack load`, `key set` and
`run --wait` against a live worker in service mode, on a copy of the examples
pack: the worker runs the release `pack load` made, pinned by `run`."""
import json
import os
import shutil
import subprocess
import unittest

from service_support import (CTL_BIN, SLOW, SOURCE_PACKS, ServiceTestCase, clean_env)


class ServiceAttunectlTest(ServiceTestCase):

    @classmethod
    def setUpClass(cls):
        if not os.access(CTL_BIN, os.X_OK):
            raise unittest.SkipTest("attunectl not built: %s" % CTL_BIN)
        super().setUpClass()

    @classmethod
    def setUpData(cls):
        shutil.copytree(os.path.join(SOURCE_PACKS, "examples"),
                        os.path.join(cls.packs_dir, "examples"))
        proc = cls.ctl_class("pack", "load", os.path.join(cls.packs_dir, "examples"))
        if proc.returncode != 0:
            raise RuntimeError("attunectl pack load failed: %s%s" % (proc.stdout, proc.stderr))

    @classmethod
    def ctl_class(cls, *args, stdin=None, timeout=60):
        env = clean_env({
            "ATTUNE__DATABASE__URL": cls.db.url,
            "ATTUNE__MESSAGE_QUEUE__URL": cls.mq_url,
            "ATTUNE__PACKS_BASE_DIR": cls.packs_dir,
            "ATTUNE__SECURITY__ENCRYPTION_KEY": cls.encryption_key,
        })
        return subprocess.run([CTL_BIN] + list(args), input=stdin, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env, cwd=cls.tmp,
                              timeout=timeout)

    def ctl(self, *args, **kwargs):
        return self.ctl_class(*args, **kwargs)

    def describe(self, proc, worker=None):
        return "argv: %r\nexit: %r\nstdout: %s\nstderr: %s%s" % (
            proc.args, proc.returncode, proc.stdout[:3000], proc.stderr[-3000:],
            "\n" + worker.describe() if worker else "")

    def run_wait(self, w, *args, stdin=None):
        proc = self.ctl("run", *args, "--wait", stdin=stdin, timeout=60 * SLOW)
        try:
            result = json.loads(proc.stdout)
        except ValueError:
            self.fail("stdout is not the result JSON\n" + self.describe(proc, w))
        return proc, result

    def test_run_wait_prints_the_result(self):
        w = self.start_worker()
        proc, result = self.run_wait(w, "examples.greet", "-p", "name=Ada")
        self.assertEqual(proc.returncode, 0, self.describe(proc, w))
        self.assertEqual(result.get("data"), {"message": "Hello, Ada!", "length": 11},
                         self.describe(proc, w))
        self.assertIs(result.get("succeeded"), True)
        row = self.db.row("SELECT e.id, e.status::text AS status, e.worker, e.result, e.config, "
                          "e.pack_release, e.pack_release_digest, p.active_release, r.digest "
                          "FROM attune.execution e JOIN attune.action a ON a.id = e.action "
                          "JOIN attune.pack p ON p.id = a.pack JOIN attune.pack_release r ON "
                          "r.id = p.active_release WHERE e.action_ref = 'examples.greet'")
        self.assertEqual((row["status"], row["worker"]), ("completed", w.id))
        self.assertEqual(row["result"]["data"], result["data"])
        self.assertEqual(row["config"], {"name": "Ada", "greeting": "Hello"})
        self.assertEqual((row["pack_release"], row["pack_release_digest"]),
                         (row["active_release"], row["digest"]))

    def test_run_wait_failed_action(self):
        w = self.start_worker()
        proc, result = self.run_wait(w, "examples.fail")
        self.assertEqual(proc.returncode, 1, self.describe(proc, w))
        self.assertIs(result.get("succeeded"), False)
        self.assertEqual(result.get("exit_code"), 3)
        self.assertIn("the widget is broken", result.get("error", ""), result)

    def test_key_set_by_attunectl_reaches_the_action(self):
        token = "tok-\"quoted\" ünïcødé $HOME\nsecond line"
        proc = self.ctl("key", "set", "api_token", "-", "--encrypt", stdin=token + "\n")
        # A system key joins every action's parameters: gone after this test.
        self.addCleanup(self.db.execute, "DELETE FROM attune.key WHERE name = 'api_token'")
        self.assertEqual(proc.returncode, 0, self.describe(proc))
        w = self.start_worker()
        proc, result = self.run_wait(w, "examples.secret_demo")
        self.assertEqual(proc.returncode, 0, self.describe(proc, w))
        self.assertEqual(result.get("data"), {"found": True, "length": len(token),
                                              "masked": "********"}, self.describe(proc, w))
        self.assertNotIn("second line", w.log())


if __name__ == "__main__":
    unittest.main()
