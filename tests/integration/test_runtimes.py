"""Black-box tests of the runtimes (shell, python, node, local) through
`attune-worker run-action`: parameter delivery and formats, secrets, run()
functions, the environment and working directory an action gets."""
import json
import os
import unittest

from support import (EXIT_FAILED, RUNTIMES, TESTPACK_DIR, WorkerTestCase, awkward_secrets,
                     b64decode, describe_secret, dotenv_expected, param_env_name, parse_dotenv,
                     read)

# Parameters that stress every format: quotes of both kinds, shell syntax,
# newlines, tabs, non-ASCII text, nesting, arrays, a name that is not an identifier.
PARAMS = {
    "name": "it's a \"test\" $HOME `id` \\ ü 日本\nsecond line\twith tab  ",
    "count": 7,
    "nested": {"a": "x'y\"z", "b": {"c": 1, "d": True}},
    "tags": ["one", "two three", "it's"],
    "my-param": "dash value",
}
# What the action must receive: PARAMS with the schema's defaults filled in.
EXPECTED = dict(PARAMS, flag=False, secret_names="")

ALLOWED_ENV = {"PATH", "HOME", "LANG", "ATTUNE_ACTION", "ATTUNE_EXEC_ID", "ATTUNE_PACK",
               "ATTUNE_PACK_REF", "ATTUNE_API_URL", "ATTUNE_RUNTIME_ENVS_DIR",
               "ATTUNE_PARAMETER_DELIVERY", "ATTUNE_PARAMETER_FORMAT", "ATTUNE_PARAMETER_FILE",
               "ATTUNE_ARTIFACTS_DIR"}
# Variables bash exports by itself; they say nothing about what the worker passed.
BASH_OWN_ENV = {"PWD", "OLDPWD", "SHLVL", "_"}


def report_env(report):
    """The action's environment from an echo report, as {name: str}."""
    if report["runtime"] == "shell":
        env = {k: b64decode(v).decode("utf-8") for k, v in report["env"].items()}
        return {k: v for k, v in env.items() if k not in BASH_OWN_ENV}
    return report["environ"]


class ParameterDeliveryTest(WorkerTestCase):
    """Every runtime receives the same parameters in every delivery and format."""

    def yaml_reference(self, delivery):
        """The YAML document the worker writes for PARAMS, read back through a plain
        `cat` action: its bytes, and the value the worker's YAML output parser sees."""
        run = self.run_ok("testpack.cat_yaml_" + delivery, params=PARAMS)
        # stdout became data: the log holds the bytes
        return read(os.path.join(run.result["artifacts_dir"], "stdout.log")), run.data

    def check_delivery(self, runtime, short, delivery, fmt):
        run = self.run_ok("testpack.echo_%s_%s_%s" % (short, delivery, fmt), params=PARAMS)
        report = run.data
        self.assertIsInstance(report, dict, run.describe())
        self.assertEqual(report["runtime"], runtime)
        raw = b64decode(report["input"])
        env = report_env(report)
        self.assertEqual(env.get("ATTUNE_PARAMETER_DELIVERY"), delivery)
        self.assertEqual(env.get("ATTUNE_PARAMETER_FORMAT"), fmt)
        if delivery == "file":
            self.assertIn("ATTUNE_PARAMETER_FILE", env)
            self.assertTrue(os.path.isabs(env["ATTUNE_PARAMETER_FILE"]))
            self.assertEqual(report["file_mode"], "400", "parameter file mode")
        else:
            self.assertNotIn("ATTUNE_PARAMETER_FILE", env)

        if fmt == "json":
            self.assertTrue(raw.endswith(b"\n"), raw[-50:])
            self.assertEqual(raw.count(b"\n"), 1, "json parameters must be one line")
            self.assertEqual(json.loads(raw.decode("utf-8")), EXPECTED)
        elif fmt == "dotenv":
            parsed = parse_dotenv(raw.decode("utf-8"))
            expected = dotenv_expected(EXPECTED)
            self.assertEqual(set(parsed), set(expected))
            for key, want in expected.items():
                if isinstance(want, list):
                    self.assertEqual(json.loads(parsed[key]), want, key)
                else:
                    self.assertEqual(parsed[key], want, key)
        else:
            reference, value = self.yaml_reference(delivery)
            self.assertEqual(value, EXPECTED, "the YAML document does not read back as the parameters")
            self.assertEqual(raw, reference)
            self.assertNotEqual(raw.lstrip()[:1], b"{", "yaml parameters were written as JSON")

        if runtime == "shell":
            for key, value in EXPECTED.items():
                var = param_env_name(key)
                self.assertIn(var, env, "missing %s" % var)
                if isinstance(value, (dict, list)):
                    self.assertEqual(json.loads(env[var]), value, var)
                elif isinstance(value, bool):
                    self.assertEqual(env[var], "true" if value else "false", var)
                else:
                    self.assertEqual(env[var], str(value), var)

    def test_same_bytes_for_every_runtime(self):
        # The document depends on the parameters and the format, never on the runtime.
        for delivery in ("stdin", "file"):
            for fmt in ("json", "yaml", "dotenv"):
                inputs = {}
                for runtime, short in RUNTIMES:
                    run = self.run_ok("testpack.echo_%s_%s_%s" % (short, delivery, fmt),
                                      params=PARAMS)
                    inputs[runtime] = b64decode(run.data["input"])
                self.assertEqual(len(set(inputs.values())), 1, (delivery, fmt, inputs))


def _delivery_test(runtime, short, delivery, fmt):
    def test(self):
        self.check_delivery(runtime, short, delivery, fmt)
    test.__doc__ = "%s action, parameters by %s as %s" % (runtime, delivery, fmt)
    return test


for _runtime, _short in RUNTIMES:
    for _delivery in ("stdin", "file"):
        for _fmt in ("json", "yaml", "dotenv"):
            setattr(ParameterDeliveryTest, "test_%s_%s_%s" % (_runtime, _delivery, _fmt),
                    _delivery_test(_runtime, _short, _delivery, _fmt))


class SecretsTest(WorkerTestCase):
    """get_secret / getSecret return every value byte for byte."""

    MISSING = "no_such_secret"

    def check_secrets(self, ref, secrets=None, secrets_file=None):
        secrets = awkward_secrets() if secrets is None else secrets
        names = sorted(secrets) + [self.MISSING]
        run = self.run_ok(ref, params={"secret_names": " ".join(names)},
                          secrets=None if secrets_file else secrets, secrets_file=secrets_file)
        report = run.data
        self.assertIsInstance(report, dict, run.describe())
        got = report["secrets"]
        self.assertEqual(set(got), set(names))
        runtime = report["runtime"]
        for name, value in secrets.items():
            digest, length = describe_secret(value)
            entry = got[name]
            if runtime == "shell":
                self.assertEqual(entry["status"], 0, "get_secret %s failed" % name)
            else:
                self.assertEqual(entry["type"], "string" if runtime == "node" else "str", name)
            self.assertEqual((entry["len"], entry["sha256"]), (length, digest),
                             "secret %r differs" % name)
        missing = got[self.MISSING]
        if runtime == "shell":
            self.assertEqual(missing["status"], 1, "get_secret of a missing name must return 1")
            self.assertEqual(missing["len"], 0, "get_secret of a missing name must print nothing")
        elif runtime == "python":
            self.assertEqual(missing, {"type": "none"})
        else:
            self.assertEqual(missing, {"type": "undefined"})
        # The values are nowhere in what the action printed or was given.
        text = json.dumps(run.result, ensure_ascii=False)
        for name in ("multiline", "unicode", "backtick"):
            self.assertNotIn(secrets.get(name, "\0"), text)
        return report

    def test_shell(self):
        self.check_secrets("testpack.echo_sh_stdin_json")

    def test_python_script(self):
        self.check_secrets("testpack.echo_py_stdin_json")

    def test_python_run(self):
        self.check_secrets("testpack.echo_run_py_stdin")

    def test_node_script(self):
        self.check_secrets("testpack.echo_js_stdin_json")

    def test_node_run(self):
        self.check_secrets("testpack.echo_run_js_stdin")

    def test_file_delivery_does_not_disturb_secrets(self):
        self.check_secrets("testpack.echo_sh_file_json")
        self.check_secrets("testpack.echo_run_py_file")
        self.check_secrets("testpack.echo_run_js_file")

    def test_local_runner_picks_runtime_with_secrets(self):
        secrets = {"token": "tök'en\n$x"}
        for ref in ("testpack.local_sh", "testpack.local_py", "testpack.local_js"):
            with self.subTest(ref=ref):
                self.check_secrets(ref, secrets)

    def test_no_secrets_file(self):
        # Without --secrets-file every name is missing, and nothing breaks.
        for ref in ("testpack.echo_sh_stdin_json", "testpack.echo_run_py_stdin",
                    "testpack.echo_run_js_stdin"):
            with self.subTest(ref=ref):
                run = self.run_ok(ref, params={"secret_names": "a b"})
                for name in ("a", "b"):
                    entry = run.data["secrets"][name]
                    if run.data["runtime"] == "shell":
                        self.assertEqual((entry["status"], entry["len"]), (1, 0), name)
                    elif run.data["runtime"] == "python":
                        self.assertEqual(entry, {"type": "none"}, name)
                    else:
                        self.assertEqual(entry, {"type": "undefined"}, name)

    def test_json_secrets_file_as_json_writers_write_it(self):
        # Any valid JSON must do: Python's json.dump escapes non-BMP characters as
        # surrogate pairs by default, and JSON allows a raw DEL (U+007F) in a string.
        cases = (("surrogate pair escapes", True, {"emoji": "key 🔑 end", "plain": "x"}),
                 ("raw DEL character", False, {"del": "a\x7fb", "plain": "x"}))
        for label, ensure_ascii, secrets in cases:
            with self.subTest(label):
                path = self.secrets_file(secrets, ensure_ascii=ensure_ascii)
                self.check_secrets("testpack.echo_run_py_stdin", secrets, secrets_file=path)

    def test_yaml_secrets_file(self):
        path = self.secrets_file(
            "# secrets in YAML\n"
            "plain: just-a-token\n"
            "quoted: \"tab\\there \\\"q\\\" \\u00e9\"\n"
            "block: |\n"
            "  line one\n"
            "  line 'two'\n"
            "number_like: '0123'\n", fmt="yaml")
        expected = {"plain": "just-a-token", "quoted": "tab\there \"q\" é",
                    "block": "line one\nline 'two'\n", "number_like": "0123"}
        self.check_secrets("testpack.echo_sh_stdin_json", expected, secrets_file=path)
        self.check_secrets("testpack.echo_run_py_stdin", expected, secrets_file=path)


class RunFunctionTest(WorkerTestCase):
    """Python and Node.js actions that define run()."""

    def check_run(self, ref, runtime):
        say = "printed by run() ü"
        run = self.run_ok(ref, params=dict(PARAMS, say=say))
        self.assertEqual(run.data["runtime"], runtime, run.describe())
        self.assertEqual(run.data["params"], dict(EXPECTED, say=say))
        # stdout is the action's own: what it printed, and nothing of the protocol
        self.assertEqual(run.result["stdout"], say + "\n")
        self.assertEqual(run.result["stderr"], "")
        with open(os.path.join(run.result["artifacts_dir"], "stdout.log"), "rb") as f:
            self.assertEqual(f.read(), (say + "\n").encode("utf-8"))

    def test_python_run_stdin(self):
        self.check_run("testpack.echo_run_py_stdin", "python")

    def test_python_run_file(self):
        self.check_run("testpack.echo_run_py_file", "python")

    def test_node_run_stdin(self):
        self.check_run("testpack.echo_run_js_stdin", "node")

    def test_node_run_file(self):
        self.check_run("testpack.echo_run_js_file", "node")

    def test_python_exception_fails_the_execution(self):
        message = "bad value 42: it's \"wrong\""
        run = self.run_action("testpack.raise_error", params={"message": message})
        result = self.assertRun(run, EXIT_FAILED, "failed")
        self.assertFalse(result["succeeded"])
        self.assertEqual(result["error"], "ValueError: " + message)

    def test_python_script_runs_as_main(self):
        # echo_script.py only prints from its `if __name__ == "__main__":` block
        run = self.run_ok("testpack.echo_py_stdin_json", params={})
        self.assertIsInstance(run.data, dict, run.describe())
        self.assertEqual(run.data["runtime"], "python")

    def test_local_executable(self):
        run = self.run_ok("testpack.local_exec", params={"name": "local 'x'"})
        self.assertTrue(run.data["argv0"].endswith("tool"), run.data)
        self.assertEqual(json.loads(b64decode(run.data["input"])), {"name": "local 'x'"})
        self.assertEqual(run.data["format"], "json")

    def test_local_picks_runtime_by_extension(self):
        for ref, runtime in (("testpack.local_sh", "shell"), ("testpack.local_py", "python"),
                             ("testpack.local_js", "node")):
            with self.subTest(ref=ref):
                run = self.run_ok(ref, params={"name": "by extension"})
                self.assertEqual(run.data["runtime"], runtime, run.describe())
                if runtime == "shell":
                    self.assertEqual(b64decode(run.data["env"]["PARAM_NAME"]), b"by extension")
                else:
                    self.assertEqual(run.data["params"]["name"], "by extension")


class ActionEnvironmentTest(WorkerTestCase):
    """The environment, working directory and process group an action gets."""

    def check_environment(self, short):
        ref = "testpack.echo_%s_stdin_json" % short
        config = self.path("config.yaml")
        with open(config, "w") as f:
            f.write("worker:\n  env:\n    EXTRA_SETTING: \"value with spaces\"\n")
        # ATTUNE_* variables of the worker's own environment do not reach the
        # action either, not even names the worker sets for other executions.
        run = self.run_ok(ref, params={}, config=config,
                          env={"LEAKY_MARKER": "should-not-pass", "LANG": "C.UTF-8",
                               "PYTHONPATH": "/leaky", "NODE_OPTIONS": "--leaky",
                               "ATTUNE_TRACE_TAG": "leaky", "ATTUNE_CONTEXT_USER": "leaky",
                               "ATTUNE_RULE": "leaky", "ATTUNE_PACK_RELEASE_DIGEST": "leaky",
                               "ATTUNE_API_TOKEN": "leaky"})
        report = run.data
        env = report_env(report)
        unexpected = set(env) - ALLOWED_ENV - {"EXTRA_SETTING"}
        if report["runtime"] == "shell":
            unexpected = {n for n in unexpected if not n.startswith("PARAM_")}
        self.assertEqual(unexpected, set(), "unexpected variables in the action's environment")
        for name in ALLOWED_ENV - {"ATTUNE_PARAMETER_FILE"} | {"EXTRA_SETTING"}:
            self.assertIn(name, env)
        self.assertEqual(env["EXTRA_SETTING"], "value with spaces")
        self.assertEqual(env["ATTUNE_ACTION"], ref)
        self.assertEqual(env["ATTUNE_PACK"], "testpack")
        self.assertEqual(env["ATTUNE_PACK_REF"], "testpack")
        self.assertEqual(env["ATTUNE_API_URL"], "http://127.0.0.1:8080")
        self.assertEqual(env["ATTUNE_RUNTIME_ENVS_DIR"], "/opt/attune/runtime_envs")
        adir = run.result["artifacts_dir"]
        self.assertEqual(env["ATTUNE_EXEC_ID"], os.path.basename(adir))
        self.assertEqual(env["ATTUNE_ARTIFACTS_DIR"], os.path.join(adir, "files"))
        self.assertEqual(b64decode(report["cwd"]).decode(), os.path.realpath(TESTPACK_DIR))
        # its own session and process group, not ours
        self.assertEqual(report["pgrp"], report["sid"], "process group is not its session's")
        self.assertNotEqual(report["sid"], os.getsid(0))
        self.assertNotEqual(report["pgrp"], os.getpgrp())

    def test_shell(self):
        self.check_environment("sh")

    def test_python(self):
        self.check_environment("py")

    def test_node(self):
        self.check_environment("js")

    def api_env(self, env=None, config_text=None):
        config = None
        if config_text:
            config = self.path("config.yaml")
            with open(config, "w") as f:
                f.write(config_text)
        run = self.run_ok("testpack.echo_py_stdin_json", params={}, config=config, env=env)
        return report_env(run.data)

    def test_api_url_and_runtime_envs_dir(self):
        # From the configuration...
        env = self.api_env(config_text="runtime_envs_dir: /srv/envs\n"
                                       "worker:\n  api_url: https://attune.example/api\n")
        self.assertEqual(env["ATTUNE_API_URL"], "https://attune.example/api")
        self.assertEqual(env["ATTUNE_RUNTIME_ENVS_DIR"], "/srv/envs")
        env = self.api_env(env={"ATTUNE__WORKER__API_URL": "http://api.internal:8080",
                                "ATTUNE__RUNTIME_ENVS_DIR": "/env/envs"})
        self.assertEqual(env["ATTUNE_API_URL"], "http://api.internal:8080")
        self.assertEqual(env["ATTUNE_RUNTIME_ENVS_DIR"], "/env/envs")
        # ...ATTUNE_API_URL, Attune's own name, over it; a listening address is
        # made one the action can reach.
        env = self.api_env(env={"ATTUNE_API_URL": "http://0.0.0.0:9000",
                                "ATTUNE__WORKER__API_URL": "http://api.internal:8080"})
        self.assertEqual(env["ATTUNE_API_URL"], "http://127.0.0.1:9000")
        env = self.api_env(env={"ATTUNE_API_URL": "http://[::]:9000/"})
        self.assertEqual(env["ATTUNE_API_URL"], "http://127.0.0.1:9000/")
        run = self.run_action("testpack.echo_py_stdin_json", params={},
                              env={"ATTUNE_API_URL": "localhost:9000"})
        self.assertEqual(run.rc, 78, run.describe())
        self.assertIn("ATTUNE_API_URL", run.stderr.decode())


if __name__ == "__main__":
    unittest.main()
