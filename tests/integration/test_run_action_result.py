"""Black-box tests of the result keys and texts that follow Attune today, through
`attune-worker run-action`: the error of a failed run, stdout left out when empty
or parsed, queue_ack, cancelled, logs_incomplete."""
import json
import os
import signal
import subprocess
import unittest

from support import (EXIT_COMPLETED, EXIT_FAILED, Run, WorkerTestCase, action_argv, alive,
                     read, wait_for_file, worker_env)


class ResultTest(WorkerTestCase):

    def test_error_is_last_line_of_long_stderr(self):
        message = "line 1\nline 2\nline 3\nline 4\nline 5\nthe real reason"
        run = self.run_action("testpack.fail", params={"code": 2, "message": message})
        result = self.assertRun(run, EXIT_FAILED, "failed")
        self.assertEqual(result["stderr"], message + "\n")
        self.assertEqual(result["error"], "the real reason")

    def test_nothing_printed_means_no_stdout(self):
        result = self.run_ok("testpack.emit_text", params={"text": ""}).result
        self.assertNotIn("stdout", result)
        self.assertEqual(read(os.path.join(result["artifacts_dir"], "stdout.log")), b"")

    def test_stdout_that_does_not_parse_is_kept(self):
        run = self.run_ok("testpack.emit_json", params={"text": "not json\n"})
        self.assertNotIn("data", run.result)
        self.assertEqual(run.result["stdout"], "not json\n")

    def test_queue_ack_is_lifted_from_data(self):
        value = {"queue_ack": {"id": "q-1", "ok": True}, "n": 2}
        run = self.run_ok("testpack.emit_json", params={"text": json.dumps(value)})
        self.assertEqual(run.data, value)
        self.assertEqual(run.result["queue_ack"], {"id": "q-1", "ok": True})
        run = self.run_ok("testpack.emit_json", params={"text": json.dumps({"n": 2})})
        self.assertNotIn("queue_ack", run.result)

    def test_jsonl_skips_lines_that_do_not_parse(self):
        text = '{"a": 1}\nprogress 50%\n[2]\n'
        run = self.run_ok("testpack.emit_jsonl", params={"text": text})
        self.assertEqual(run.data, [{"a": 1}, [2]])
        self.assertNotIn("stdout", run.result)

    def test_cancelled(self):
        pidfile, gofile = self.path("pids.json"), self.path("go")
        argv = action_argv("testpack.waiter_sh", artifacts_dir=self.artifacts,
                           params={"pidfile": pidfile, "gofile": gofile})
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=worker_env(), cwd=self.tmp)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        self.assertTrue(wait_for_file(pidfile, 30, proc), "the action did not start")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        run = Run(argv, proc.returncode, out, err, 0)
        result = self.assertRun(run, EXIT_FAILED, "cancelled")
        self.assertIs(result["succeeded"], False)
        self.assertIs(result["cancelled"], True)
        self.assertNotIn("timed_out", result)
        self.assertEqual(result["error"], "Execution cancelled by user")
        self.assertEqual(result["exit_code"], -1, "killed by SIGTERM: Attune's -1")
        self.assertEqual(result["signal"], signal.SIGTERM)
        self.assertNotIn("stdout", result, "the action printed nothing")

    def test_output_held_past_the_grace_is_incomplete(self):
        # A process in a session of its own keeps stdout open: the worker stops
        # reading one second after the kill grace, and says the logs are incomplete.
        config = self.path("config.yaml")
        with open(config, "w") as f:
            f.write("worker:\n  kill_grace_seconds: 1\n")
        pidfile = self.path("holder.pid")
        run = self.run_action("testpack.leave_holder", params={"pidfile": pidfile},
                              config=config)
        with open(pidfile) as f:
            holder = int(f.read())
        self.addCleanup(lambda: alive(holder) and os.kill(holder, signal.SIGKILL))
        result = self.assertRun(run, EXIT_COMPLETED, "completed")
        self.assertIs(result["logs_incomplete"], True)
        self.assertEqual(result["stdout"], "main done\n")
        self.assertGreaterEqual(run.elapsed, 1.5)
        # A run whose output all arrived has no such key.
        self.assertNotIn("logs_incomplete", self.run_ok("testpack.emit_text",
                                                        params={"text": "x"}).result)


if __name__ == "__main__":
    unittest.main()
