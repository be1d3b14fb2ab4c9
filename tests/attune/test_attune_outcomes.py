"""Executions that do not complete (ATTUNE-TODAY 2.1, 2.6, 2.7, 5.6, 5.7): a
failing action, a timed-out one, and a dispatch whose release does not match
the execution row, which must be refused without running anything."""
import os
import re
import time
import unittest
import uuid

from attune_support import SLOW, AttuneTestCase, random_digest, wait_gone


class OutcomeTest(AttuneTestCase):

    @classmethod
    def setUpData(cls):
        cls.add_action("shell_fail", "fail.sh", "shell", output="text")
        cls.add_action("shell_sleep", "sleep.sh", "shell", output="text")
        cls.add_action("python_report", "report.py", "python")

    def test_failure_is_recorded_and_reported(self):
        run = self.run_action("shell_fail", {"word": "x"})
        self.assertEqual(run.status, "failed", run.describe())
        result = run.result
        self.assertIs(result.get("succeeded"), False, run.describe())
        self.assertEqual(result.get("exit_code"), 3, run.describe())
        self.assertIn("the widget exploded", result.get("error") or "", run.describe())
        # 5.7: only a timeout or a cancel adds its flag.
        self.assertNotIn("timed_out", result, run.describe())
        self.assertNotIn("cancelled", result, run.describe())
        self.assertReported(run, "failed", "Failed", "shell_fail")

    def test_timeout_stops_the_action_and_is_reported(self):
        started = time.monotonic()
        run = self.run_action("shell_sleep", {"word": "x"}, timeout_seconds=2)
        elapsed = time.monotonic() - started
        self.assertEqual(run.status, "timeout", run.describe())
        self.assertLess(elapsed, 28, "the action ran on past its 2 s timeout")
        result = run.result
        self.assertIs(result.get("succeeded"), False, run.describe())
        # 5.6 and 5.7: Attune's timeout result: its flag, exit code -1 and text.
        self.assertIs(result.get("timed_out"), True, run.describe())
        self.assertNotIn("cancelled", result, run.describe())
        self.assertEqual(result.get("exit_code"), -1, run.describe())
        self.assertEqual(result.get("error"), "Execution timed out after 2 seconds",
                         run.describe())
        self.assertNotIn("slept through", result.get("stdout") or "", run.describe())
        self.assertReported(run, "timeout", "Timeout", "shell_sleep")
        m = re.search(r"pgid (\d+)", run.result.get("stdout") or "")
        if m:  # nothing of the process group outlives the timeout
            self.assertTrue(wait_gone(int(m.group(1)), 15 * SLOW),
                            "processes of the timed-out action are still alive")

    def test_release_mismatch_is_refused(self):
        started = os.path.join(self.tmp, "%s-started" % uuid.uuid4().hex[:8])
        config = {"started_file": started}
        listener = self.event_listener()
        eid = self.create_execution("python_report", config)
        other = {"id": self.release["id"], "digest": random_digest()}
        self.dispatch(eid, config, release=other)
        run = self.wait_run(eid, listener)
        self.assertEqual(run.status, "failed", run.describe())
        self.assertNothingRan(run, started)
        error = run.result.get("error") or ""
        self.assertRegex(error, r"(?i)release|digest", "the error does not say why\n"
                         + run.describe())
        self.assertIs(run.result.get("succeeded"), False, run.describe())
        self.assertReported(run, "failed", "Failed", "python_report")


if __name__ == "__main__":
    unittest.main()
