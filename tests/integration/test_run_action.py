"""Black-box tests of `attune-worker run-action`: exit statuses, usage and
definition errors, output formats, logs and artifacts, timeouts that take the
whole process group down, large input and output."""
import json
import os
import time
import unittest

from support import (EXAMPLE_PACKS, EXEC_ID_RE, EXIT_COMPLETED, EXIT_FAILED, EXIT_TIMEOUT,
                     FIXTURE_PACKS,
                     STDERR_LINE, STDOUT_LINE, WORKER_NAME, WorkerTestCase, alive, b64decode,
                     chunked_params,
                     live_members_of_group, mode_of, pattern, read, wait_until)

# Always there; `stdout` too whenever the action printed something that did not
# become `data`.
RESULT_KEYS = {"status", "succeeded", "exit_code", "duration_ms", "stderr",
               "stdout_truncated", "stderr_truncated", "stdout_bytes_truncated",
               "stderr_bytes_truncated", "artifacts_dir"}


class ExitStatusTest(WorkerTestCase):

    def test_completed(self):
        text = "hello from emit\nsecond line\n"
        run = self.run_action("testpack.emit_text", params={"text": text})
        result = self.assertRun(run, EXIT_COMPLETED, "completed")
        self.assertEqual(RESULT_KEYS - set(result), set(), "missing result keys")
        self.assertIs(result["succeeded"], True)
        self.assertEqual(result["exit_code"], 0)
        self.assertEqual(result["stdout"], text)
        self.assertEqual(result["stderr"], "")
        self.assertIsNone(result.get("data"), "text output has no data")
        self.assertNotIn("error", result)
        self.assertNotIn("stderr_log", result, "nothing on stderr")
        for key in ("cancelled", "timed_out", "logs_incomplete", "queue_ack"):
            self.assertNotIn(key, result)
        self.assertIsInstance(result["duration_ms"], int)
        self.assertGreaterEqual(result["duration_ms"], 0)
        self.assertLess(result["duration_ms"], run.elapsed * 1000 + 50)

    def test_failed(self):
        for code in (1, 3, 42):
            with self.subTest(code=code):
                message = "cannot frobnicate %d: it's \"broken\"" % code
                run = self.run_action("testpack.fail",
                                      params={"code": code, "message": message, "out": "partial"})
                result = self.assertRun(run, EXIT_FAILED, "failed")
                self.assertEqual(RESULT_KEYS - set(result), set(), "missing result keys")
                self.assertIs(result["succeeded"], False)
                self.assertEqual(result["exit_code"], code)
                self.assertEqual(result["stdout"], "partial\n")
                self.assertEqual(result["stderr"], message + "\n")
                # Attune's text: stderr itself when it has at most 5 lines
                self.assertEqual(result["error"], message + "\n")
                self.assertEqual(result["stderr_log"],
                                 os.path.join(result["artifacts_dir"], "stderr.log"))

    def test_failed_without_stderr(self):
        run = self.run_action("testpack.fail", params={"code": 5, "message": ""})
        result = self.assertRun(run, EXIT_FAILED, "failed")
        self.assertEqual(result["exit_code"], 5)
        self.assertEqual(result["error"], "Command exited with code 5")
        self.assertNotIn("stderr_log", result)

    def run_group_timeout(self, ignore_term=False, timeout=None):
        pidfile = self.path("pids.json")
        run = self.run_action("testpack.group_timeout", timeout=timeout,
                              params={"pidfile": pidfile, "ignore_term": ignore_term})
        result = self.assertRun(run, EXIT_TIMEOUT, "timeout")
        self.assertTrue(os.path.exists(pidfile), "the action did not start\n" + run.describe())
        with open(pidfile) as f:
            pids = json.load(f)
        self.assertIs(result["succeeded"], False)
        self.assertIs(result["timed_out"], True)
        self.assertNotIn("cancelled", result)
        self.assertEqual(result["exit_code"], -1, "Attune's exit code after a timeout")
        self.assertIsInstance(result.get("signal"), int)
        self.assertEqual(result["stdout"], "started\n", "output before the kill is kept")
        # Nothing of the action's process group may survive it, not even the
        # background `sleep 1000 &` that still held the stdout pipe.
        pgid = pids["pgrp"]
        self.assertTrue(wait_until(lambda: not live_members_of_group(pgid), 1.0),
                        "processes of group %d still alive: %r"
                        % (pgid, live_members_of_group(pgid)))
        self.assertFalse(alive(pids["child"]))
        self.assertFalse(alive(pids["pid"]))
        return run, result

    def test_timeout_kills_process_group(self):
        run, result = self.run_group_timeout()
        self.assertEqual(result["error"], "Execution timed out after 1 seconds")
        self.assertIn(result["signal"], (15, 9))
        self.assertGreaterEqual(result["duration_ms"], 900)
        self.assertLess(run.elapsed, 15, "a background child holding stdout delayed the timeout")

    def test_timeout_option_overrides_action(self):
        run, result = self.run_group_timeout(timeout=2)
        self.assertEqual(result["error"], "Execution timed out after 2 seconds")
        self.assertGreaterEqual(result["duration_ms"], 1900)

    def test_timeout_sigkill_when_sigterm_ignored(self):
        run, result = self.run_group_timeout(ignore_term=True)
        self.assertEqual(result["signal"], 9, "only SIGKILL can stop this action")
        self.assertLess(run.elapsed, 45)


class UsageErrorTest(WorkerTestCase):
    """Bad command lines: exit 2, one line on stderr naming the problem."""

    def test_unknown_option(self):
        self.assertOneLineError(self.run_action("testpack.emit_text", extra_args=["--bogus"]),
                                "--bogus")

    def test_missing_action_ref(self):
        self.assertOneLineError(self.run_action("--timeout=5"), "PACK.ACTION")

    def test_malformed_action_ref(self):
        self.assertOneLineError(self.run_action("testpack"), "testpack")

    def test_unknown_action_and_pack(self):
        self.assertOneLineError(self.run_action("testpack.no_such_action"), "no_such_action")
        self.assertOneLineError(self.run_action("no_such_pack.emit_text"), "no_such_pack")

    def test_bad_parameter_assignment(self):
        self.assertOneLineError(self.run_action("testpack.emit_text", p=["novalue"]), "novalue")

    def test_bad_params_json(self):
        for text in ("[1, 2]", "{\"text\": ", "\"just a string\""):
            with self.subTest(text=text):
                run = self.run_action("testpack.emit_text", extra_args=["--params-json", text])
                self.assertOneLineError(run, "--params-json")

    def test_bad_timeout(self):
        for value in ("abc", "0", "-5"):
            with self.subTest(value=value):
                run = self.run_action("testpack.emit_text", p=["text=x"],
                                      extra_args=["--timeout", value])
                self.assertOneLineError(run, "--timeout")

    def test_bad_secrets_file(self):
        missing = self.path("no-such-secrets.json")
        self.assertOneLineError(
            self.run_action("testpack.emit_text", p=["text=x"], secrets_file=missing), missing)
        not_mapping = self.path("list.json")
        with open(not_mapping, "w") as f:
            f.write('["a", "b"]\n')
        self.assertOneLineError(
            self.run_action("testpack.emit_text", p=["text=x"], secrets_file=not_mapping),
            not_mapping)
        # An unquoted number would be re-printed (0123 as 123): refused, naming the key.
        number = self.path("number.yaml")
        with open(number, "w") as f:
            f.write("pin: 0123\n")
        self.assertOneLineError(
            self.run_action("testpack.emit_text", p=["text=x"], secrets_file=number), "'pin'")


class DefinitionErrorTest(WorkerTestCase):
    """Bad parameters or a bad action file: exit 2, one line naming the problem,
    and the action never runs."""

    def check(self, ref, needles, **kwargs):
        run = self.run_action(ref, **kwargs)
        self.assertOneLineError(run, *needles)
        self.assertEqual(os.listdir(self.artifacts), [], "an execution was started")

    def test_missing_required(self):
        self.check("testpack.typed", ["count"], p=["mode=slow"])
        self.check("testpack.schema_json", ["colour"], params={"level": 3})

    def test_wrong_type(self):
        self.check("testpack.typed", ["count"], p=["count=many"])
        self.check("testpack.typed", ["count"], params={"count": "7"})
        self.check("testpack.typed", ["ratio"], params={"count": 1, "ratio": "half"})
        self.check("testpack.typed", ["flag"], params={"count": 1, "flag": "maybe"})

    def test_enum(self):
        self.check("testpack.typed", ["mode", "medium"], p=["count=1", "mode=medium"])
        self.check("testpack.schema_json", ["colour", "blue"], p=["colour=blue"])

    def test_missing_entry_point(self):
        self.check("testpack.bad_missing_entry", ["no_such_script_here.sh"])

    def test_unknown_runner_type(self):
        self.check("testpack.bad_runner", ["cobolrunner"])

    def test_malformed_yaml(self):
        self.check("testpack.bad_yaml", ["bad_yaml.yaml"])

    def test_unknown_parameter_format(self):
        self.check("testpack.bad_param_format", ["tomlish"])

    def test_valid_typed_parameters_are_converted(self):
        run = self.run_ok("testpack.typed", p=["count=5", "ratio=1.5", "flag=true"])
        params = json.loads(b64decode(run.data["input"]))
        self.assertEqual(params, {"count": 5, "ratio": 1.5, "flag": True, "mode": "fast"})
        run = self.run_ok("testpack.schema_json", p=["colour=green"])
        params = json.loads(b64decode(run.data["input"]))
        self.assertEqual(params, {"level": 2, "colour": "green"})
        self.assertEqual(b64decode(run.data["env"]["PARAM_LEVEL"]), b"2")


class OutputFormatTest(WorkerTestCase):

    def emit(self, fmt, text, code=0):
        return self.run_action("testpack.emit_" + fmt, params={"text": text, "code": code})

    def test_json_whole_output(self):
        value = {"a": [1, 2.5, None, True], "b": {"nested": "ü \"q\""}, "n": -3}
        run = self.emit("json", json.dumps(value, indent=2, ensure_ascii=False) + "\n")
        self.assertRun(run, EXIT_COMPLETED, "completed")
        self.assertEqual(run.data, value)

    def test_json_last_line(self):
        value = {"answer": 42, "list": ["x", "y"]}
        text = "progress: 10%\nprogress: 100%\n" + json.dumps(value) + "\n"
        run = self.emit("json", text)
        self.assertRun(run, EXIT_COMPLETED, "completed")
        self.assertEqual(run.data, value)
        # As in Attune, output parsed into data is not repeated as stdout; the
        # log keeps it as printed.
        self.assertNotIn("stdout", run.result)
        self.assertEqual(read(os.path.join(run.result["artifacts_dir"], "stdout.log")).decode(),
                         text)

    def test_json_scalar_and_array(self):
        for value in ([1, "two", {"three": 3}], "just a string", 12.5):
            with self.subTest(value=value):
                run = self.emit("json", json.dumps(value))
                self.assertRun(run, EXIT_COMPLETED, "completed")
                self.assertEqual(run.data, value)

    def test_yaml(self):
        text = ("name: report\ncount: 3\nratio: 0.25\nenabled: true\nnothing: null\n"
                "items:\n  - one\n  - 'two: 2'\nnested:\n  key: \"line1\\nline2\"\n")
        expected = {"name": "report", "count": 3, "ratio": 0.25, "enabled": True,
                    "nothing": None, "items": ["one", "two: 2"],
                    "nested": {"key": "line1\nline2"}}
        run = self.emit("yaml", text)
        self.assertRun(run, EXIT_COMPLETED, "completed")
        self.assertEqual(run.data, expected)

    def test_jsonl(self):
        values = [{"i": 1}, [2, 3], "four", None, 5]
        text = "\n".join(json.dumps(v) for v in values[:2]) + "\n\n" + \
            "\n".join(json.dumps(v) for v in values[2:]) + "\n\n"
        run = self.emit("jsonl", text)
        self.assertRun(run, EXIT_COMPLETED, "completed")
        self.assertEqual(run.data, values)

    def test_not_parsed_on_failure(self):
        run = self.emit("json", json.dumps({"partial": True}), code=4)
        result = self.assertRun(run, EXIT_FAILED, "failed")
        self.assertEqual(result["exit_code"], 4)
        self.assertIsNone(result.get("data"))

    def test_text_has_no_data(self):
        run = self.emit("text", json.dumps({"looks": "like json"}))
        self.assertRun(run, EXIT_COMPLETED, "completed")
        self.assertIsNone(run.result.get("data"))


class ArtifactsTest(WorkerTestCase):

    def assertResultFile(self, adir, printed):
        """result.json holds the same result object run-action printed."""
        with open(os.path.join(adir, "result.json")) as f:
            saved = json.load(f)
        self.assertEqual({k: v for k, v in saved.items() if k != "status"},
                         {k: v for k, v in printed.items() if k != "status"},
                         "result.json differs from the printed result")
        self.assertEqual(saved.get("status"), printed["status"],
                         "result.json lacks the printed result's status")

    def test_layout_modes_and_logs(self):
        content = "artifact content ü\nline 2\n"
        run = self.run_ok("testpack.write_artifact",
                          params={"filename": "report.txt", "content": content})
        result = run.result
        adir = result["artifacts_dir"]
        self.assertTrue(os.path.isabs(adir), adir)
        exec_id = os.path.basename(adir)
        self.assertRegex(exec_id, EXEC_ID_RE)
        self.assertEqual(adir, os.path.join(os.path.realpath(self.artifacts), WORKER_NAME, exec_id))
        # what the action was told
        self.assertEqual(run.data["exec_id"], exec_id)
        self.assertEqual(run.data["artifacts"], os.path.join(adir, "files"))
        self.assertEqual(run.data["action"], "testpack.write_artifact")
        self.assertEqual(run.data["pack"], "testpack")
        # layout and modes
        self.assertEqual(sorted(os.listdir(adir)),
                         ["files", "result.json", "stderr.log", "stdout.log"])
        for d in (os.path.dirname(adir), adir, os.path.join(adir, "files")):
            self.assertEqual(mode_of(d), 0o700, "mode of directory %s" % d)
        for name in ("result.json", "stderr.log", "stdout.log"):
            self.assertEqual(mode_of(os.path.join(adir, name)), 0o600, "mode of %s" % name)
        # contents
        self.assertEqual(read(os.path.join(adir, "files", "report.txt")).decode(), content)
        # stdout became data, so the result does not repeat it
        self.assertNotIn("stdout", result)
        self.assertEqual(json.loads(read(os.path.join(adir, "stdout.log"))), run.data)
        self.assertEqual(read(os.path.join(adir, "stderr.log")).decode(), result["stderr"])
        self.assertEqual(result["stderr"], "stderr line for the log\n")
        self.assertEqual(result["stderr_log"], os.path.join(adir, "stderr.log"))
        self.assertResultFile(adir, result)

    def test_failed_and_timed_out_runs_keep_artifacts(self):
        run = self.run_action("testpack.fail", params={"message": "kept in the log", "code": 2})
        result = self.assertRun(run, EXIT_FAILED, "failed")
        self.assertEqual(read(os.path.join(result["artifacts_dir"], "stderr.log")),
                         b"kept in the log\n")
        self.assertResultFile(result["artifacts_dir"], result)
        run = self.run_action("testpack.group_timeout",
                              params={"pidfile": self.path("pid.json")})
        result = self.assertRun(run, EXIT_TIMEOUT, "timeout")
        self.assertResultFile(result["artifacts_dir"], result)
        self.assertEqual(read(os.path.join(result["artifacts_dir"], "stdout.log")), b"started\n")

    def test_each_run_gets_its_own_directory(self):
        dirs = {self.run_ok("testpack.emit_text", params={"text": "x"}).result["artifacts_dir"]
                for _ in range(3)}
        self.assertEqual(len(dirs), 3)


class ConfigurationTest(WorkerTestCase):

    def write_config(self, text):
        path = self.path("config-%d.yaml" % time.monotonic_ns())
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_worker_name_from_file_and_environment(self):
        config = self.write_config("worker:\n  name: from-file\n")
        run = self.run_ok("testpack.emit_text", params={"text": "x"}, config=config,
                          env={"ATTUNE__WORKER__NAME": None})
        self.assertEqual(os.path.basename(os.path.dirname(run.result["artifacts_dir"])),
                         "from-file")
        run = self.run_ok("testpack.emit_text", params={"text": "x"}, config=config,
                          env={"ATTUNE__WORKER__NAME": "from-env"})
        self.assertEqual(os.path.basename(os.path.dirname(run.result["artifacts_dir"])),
                         "from-env")

    def test_config_from_attune_config_variable(self):
        config = self.write_config("worker:\n  name: via-variable\n")
        run = self.run_ok("testpack.emit_text", params={"text": "x"},
                          env={"ATTUNE__WORKER__NAME": None, "ATTUNE_CONFIG": config})
        self.assertEqual(os.path.basename(os.path.dirname(run.result["artifacts_dir"])),
                         "via-variable")

    def test_packs_and_artifacts_dirs_from_environment(self):
        artifacts = self.path("env-artifacts")
        run = self.run_ok("testpack.emit_text", params={"text": "x"}, packs_dir=None,
                          artifacts_dir=False,
                          env={"ATTUNE__PACKS_BASE_DIR": FIXTURE_PACKS,
                               "ATTUNE__WORKER__ARTIFACTS_DIR": artifacts})
        self.assertTrue(run.result["artifacts_dir"].startswith(os.path.realpath(artifacts) + "/")
                        or run.result["artifacts_dir"].startswith(artifacts + "/"),
                        run.result["artifacts_dir"])
        self.assertTrue(os.path.isdir(run.result["artifacts_dir"]))

    def test_bad_configuration_exits_78(self):
        run = self.run_action("testpack.emit_text", params={"text": "x"},
                              env={"ATTUNE__WORKER__MAX_STDOUT_BYTES": "lots"})
        self.assertEqual(run.rc, 78, run.describe())
        self.assertIn("max_stdout_bytes", run.stderr.decode())


class StreamsTest(WorkerTestCase):

    def check_never_reads_stdin(self, ref):
        # 4 MiB of parameters on the action's stdin, which it never reads
        payload = chunked_params("payload", 4 << 20)
        start = time.monotonic()
        run = self.run_action(ref, p=["%s=%s" % kv for kv in payload.items()], wall_timeout=30)
        self.assertLess(time.monotonic() - start, 30)
        result = self.assertRun(run, EXIT_COMPLETED, "completed")
        self.assertEqual(read(os.path.join(result["artifacts_dir"], "stdout.log")),
                         b"x" * (1 << 20))

    def test_python_never_reads_large_stdin(self):
        self.check_never_reads_stdin("testpack.no_stdin_py")

    def test_node_never_reads_large_stdin(self):
        self.check_never_reads_stdin("testpack.no_stdin_js")

    def test_large_parameters_arrive_whole(self):
        big = chunked_params("big", 2 << 20, char="0123456789abcdef\n'\"$`ü")
        assignments = ["%s=%s" % kv for kv in big.items()]
        for ref in ("testpack.echo_py_stdin_json", "testpack.echo_js_file_json"):
            with self.subTest(ref=ref):
                run = self.run_ok(ref, p=assignments)
                received = json.loads(b64decode(run.data["input"]))
                self.assertEqual({k: v for k, v in received.items() if k.startswith("big")}, big)

    def test_output_below_cap_is_kept_exactly(self):
        run = self.run_ok("testpack.big_output", params={"bytes": 300000, "stderr_bytes": 70000})
        result = run.result
        self.assertEqual(read(os.path.join(result["artifacts_dir"], "stdout.log")),
                         pattern(STDOUT_LINE, 300000))
        self.assertEqual(read(os.path.join(result["artifacts_dir"], "stderr.log")),
                         pattern(STDERR_LINE, 70000))
        self.assertEqual(result["stdout"].encode(), pattern(STDOUT_LINE, 300000))
        self.assertEqual((result["stdout_truncated"], result["stderr_truncated"]), (False, False))
        self.assertEqual((result["stdout_bytes_truncated"], result["stderr_bytes_truncated"]),
                         (0, 0))

    def test_caps_truncate_logs(self):
        env = {"ATTUNE__WORKER__MAX_STDOUT_BYTES": "65536",
               "ATTUNE__WORKER__MAX_STDERR_BYTES": "32768"}
        total_out, total_err = 500000, 200000
        run = self.run_action("testpack.big_output", env=env,
                              params={"bytes": total_out, "stderr_bytes": total_err})
        result = self.assertRun(run, EXIT_COMPLETED, "completed")
        adir = result["artifacts_dir"]
        self.assertCappedLog(read(os.path.join(adir, "stdout.log")), STDOUT_LINE, total_out,
                              65536, result["stdout_truncated"], result["stdout_bytes_truncated"])
        self.assertCappedLog(read(os.path.join(adir, "stderr.log")), STDERR_LINE, total_err,
                              32768, result["stderr_truncated"], result["stderr_bytes_truncated"])
        self.assertLessEqual(len(result["stdout"].encode()), 65536 + 200)
        self.assertTrue(pattern(STDOUT_LINE, total_out).startswith(
            result["stdout"].encode()[:60000]))


class ExamplesPackTest(WorkerTestCase):
    """The examples pack shipped for users does what its descriptions say."""

    def run_example(self, ref, **kwargs):
        return self.run_action(ref, packs_dir=EXAMPLE_PACKS, **kwargs)

    def test_hello_and_greet(self):
        run = self.run_example("examples.hello", p=["name=Ada"])
        self.assertEqual(self.assertRun(run, EXIT_COMPLETED, "completed")["stdout"], "Hello, Ada!\n")
        run = self.run_example("examples.hello")
        self.assertEqual(self.assertRun(run, EXIT_COMPLETED, "completed")["stdout"], "Hello, world!\n")
        run = self.run_example("examples.greet", p=["name=Ada", "greeting=Hi"])
        self.assertRun(run, EXIT_COMPLETED, "completed")
        self.assertEqual(run.data["message"], "Hi, Ada!")
        self.assertOneLineError(self.run_example("examples.greet"), "name")

    def test_secret_demo_never_shows_the_secret(self):
        path = os.path.join(EXAMPLE_PACKS, "examples", "secrets.example.yaml")
        run = self.run_example("examples.secret_demo", secrets_file=path)
        self.assertRun(run, EXIT_COMPLETED, "completed")
        with open(path) as f:
            token = [line.split('"')[1] for line in f if line.startswith("api_token:")][0]
        self.assertEqual(run.data["found"], True)
        self.assertEqual(run.data["length"], len(token))
        self.assertNotIn(token, run.stdout.decode())
        run = self.run_example("examples.secret_demo")
        self.assertRun(run, EXIT_COMPLETED, "completed")
        self.assertEqual(run.data, {"found": False})

    def test_list_files_and_json_report(self):
        run = self.run_example("examples.list_files", p=["path=actions"])
        self.assertRun(run, EXIT_COMPLETED, "completed")
        names = {e["name"]: e["type"] for e in run.data["entries"]}
        self.assertEqual(set(names), set(os.listdir(os.path.join(EXAMPLE_PACKS, "examples",
                                                                  "actions"))))
        self.assertEqual(names["hello.sh"], "file")
        run = self.run_example("examples.json_report")
        self.assertRun(run, EXIT_COMPLETED, "completed")
        self.assertEqual(run.data["action"], "examples.json_report")
        self.assertEqual(run.data["cpus"], len(os.sched_getaffinity(0)))  # nproc

    def test_fail_and_slow(self):
        run = self.run_example("examples.fail")
        result = self.assertRun(run, EXIT_FAILED, "failed")
        self.assertEqual(result["exit_code"], 3)
        self.assertIn("the widget is broken", result["error"])
        run = self.run_example("examples.slow")
        result = self.assertRun(run, EXIT_TIMEOUT, "timeout")
        self.assertEqual(result["error"], "Execution timed out after 2 seconds")


if __name__ == "__main__":
    unittest.main()
