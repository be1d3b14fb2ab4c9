"""One action per runtime (shell, Python, Node.js, native), each pinned to a
release: the worker runs the code of {packs_base_dir}/.releases/sha256/{digest}/pack
(never the stale copy at {packs_base_dir}/{pack_ref}), with the runtime row's
interpreter, the flat parameter map on stdin, and reports the run on
execution.status.changed and execution.completed (ATTUNE-TODAY 2.6, 2.7, 3.5,
5.2, 5.4, 5.5)."""
import unittest

from attune_support import PACK_REF, AttuneTestCase

PARAMS = {"greeting": "hello", "count": 3, "ratio": 0.5, "enabled": True, "nothing": None,
          "nested": {"list": [1, "two", None], "deep": {"k": "v"}},
          "unicode": "päss – 秘密", "quotes": "it's \"quoted\" \\ back"}


class RuntimeTest(AttuneTestCase):

    @classmethod
    def setUpData(cls):
        cls.add_action("shell_report", "report.sh", "shell")
        cls.add_action("python_report", "report.py", "python")
        cls.add_action("node_report", "report.js", "node")
        cls.add_action("native_report", "report_native", "native")

    def check_run(self, action, runtime, path_key="script"):
        run = self.run_action(action, PARAMS)
        self.assertCompleted(run)
        self.assertEqual(run.data.get("runtime"), runtime, run.describe())
        self.assertEqual(run.data.get("params"), PARAMS,
                         "the action did not get the flat parameter map on stdin\n"
                         + run.describe())
        self.assertRanFromRelease(run, path_key)
        self.assertReported(run, "completed", "Completed", action)
        started = self.db.value("SELECT started_at FROM attune.execution WHERE id = %s",
                                (run.id,))
        self.assertIsNotNone(started, "started_at was not set")
        return run

    def test_shell_action(self):
        run = self.check_run("shell_report", "shell")
        self.assertTrue(run.data.get("bash"), "not run by bash\n" + run.describe())
        env = run.data.get("env") or {}
        self.assertEqual(env.get("ATTUNE_ACTION"), "%s.shell_report" % PACK_REF)
        self.assertEqual(env.get("ATTUNE_PARAMETER_DELIVERY"), "stdin")
        self.assertEqual(env.get("ATTUNE_PARAMETER_FORMAT"), "json")

    def test_python_action(self):
        run = self.check_run("python_report", "python")
        self.assertTrue(run.data.get("python", "").startswith("3."), run.describe())

    def test_node_action(self):
        run = self.check_run("node_report", "node")
        self.assertTrue(run.data.get("node", "").startswith("v"), run.describe())

    def test_native_action(self):
        run = self.check_run("native_report", "native", path_key="argv0")
        # Executed itself (its #! names /bin/sh, dash), not handed to bash.
        self.assertEqual(run.data.get("bash"), "", run.describe())
        env = run.data.get("env") or {}
        self.assertEqual(env.get("ATTUNE_EXEC_ID"), str(run.id))
        self.assertEqual(env.get("ATTUNE_ACTION"), "%s.native_report" % PACK_REF)

    def test_config_is_the_parameter_map_itself(self):
        # A key named "parameters" is one parameter among others: the worker
        # must not unwrap it (the seed's {"parameters": {...}} layout is gone).
        config = {"parameters": {"inner": 1}, "outer": "x"}
        run = self.run_action("python_report", config)
        self.assertCompleted(run)
        self.assertEqual(run.data.get("params"), config, run.describe())


if __name__ == "__main__":
    unittest.main()
