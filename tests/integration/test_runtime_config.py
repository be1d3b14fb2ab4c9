"""Black-box tests of runtimes that follow a runtime definition from the database
(a runtime row's execution_config), given to `attune-worker run-action` as the
action file's `runtime_config` key: interpreter, arguments, env_vars, the pack's
environment; and of native executables and ad-hoc shell code (`inline_code`)."""
import json
import os
import shutil
import unittest

from support import EXIT_COMPLETED, EXIT_FAILED, EXIT_USAGE, WorkerTestCase

PYTHON3 = shutil.which("python3", path="/usr/bin:/bin")
NODE = shutil.which("node", path="/usr/local/bin:/usr/bin:/bin")
BASH = shutil.which("bash", path="/usr/bin:/bin")

# Reports how it was started: interpreter, command line, environment, secrets
# (each reversed: the worker masks a secret's own value in the result).
PY_REPORT = """\
import os, sys

def run(**params):
    with open("/proc/self/cmdline", "rb") as f:
        cmdline = [a.decode() for a in f.read().split(b"\\0")[:-1]]
    return {"executable": sys.executable, "cmdline": cmdline, "params": params,
            "secret": get_secret("token")[::-1], "env": dict(os.environ)}
"""


class RuntimeConfigCase(WorkerTestCase):
    """Writes a pack `demo` of its own and runs its actions."""

    def setUp(self):
        super().setUp()
        self.packs = self.path("packs")
        self.pack = os.path.join(self.packs, "demo")
        os.makedirs(os.path.join(self.pack, "actions"))

    def action(self, name, definition, files=None):
        """actions/NAME.yaml (JSON is YAML) and the files it runs."""
        for fname, (text, mode) in (files or {}).items():
            path = os.path.join(self.pack, "actions", fname)
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, mode)
        with open(os.path.join(self.pack, "actions", name + ".yaml"), "w") as f:
            json.dump(definition, f)
        return "demo." + name

    def run_demo(self, ref, **kwargs):
        kwargs.setdefault("secrets", {"token": "t0k'en"})
        return self.run_action(ref, packs_dir=self.packs, **kwargs)

    def link(self, target, name):
        """A symbolic link to an interpreter in a directory of the test's own."""
        bindir = self.path("bin")
        os.makedirs(bindir, exist_ok=True)
        path = os.path.join(bindir, name)
        os.symlink(target, path)
        return path


@unittest.skipUnless(PYTHON3, "python3 not installed")
class PythonDefinitionTest(RuntimeConfigCase):

    def python_action(self, config, name="report"):
        return self.action(name, {"runner_type": "python", "entry_point": "report.py",
                                  "output_format": "json", "runtime_config": config},
                           {"report.py": (PY_REPORT, 0o644)})

    def test_interpreter_and_args_from_the_definition(self):
        py = self.link(PYTHON3, "py3-for-attune")
        ref = self.python_action({"interpreter": {"binary": py, "args": ["-u"],
                                                  "file_extension": ".py"}})
        run = self.run_demo(ref, params={"n": 3})
        self.assertRun(run, EXIT_COMPLETED, "completed")
        data = run.data
        # Started as the definition says, then -s (no user site), the wrapper and the file.
        self.assertEqual(data["executable"], py)
        self.assertEqual(data["cmdline"][:4], [py, "-u", "-s", "-c"], data["cmdline"])
        self.assertEqual(data["cmdline"][-1], os.path.join(self.pack, "actions", "report.py"))
        # The wrapper still delivers parameters to run() and secrets to get_secret.
        self.assertEqual(data["params"], {"n": 3})
        self.assertEqual(data["secret"], "ne'k0t")

    def test_interpreter_found_on_the_actions_path(self):
        bindir = os.path.dirname(self.link(PYTHON3, "py3-on-path"))
        ref = self.python_action({"interpreter": {"binary": "py3-on-path"}})
        run = self.run_demo(ref, env={"ATTUNE__WORKER__ENV__PATH": bindir + ":/usr/bin:/bin"})
        self.assertRun(run, EXIT_COMPLETED, "completed")
        self.assertEqual(run.data["executable"], os.path.join(bindir, "py3-on-path"))

    def test_missing_interpreter(self):
        ref = self.python_action({"interpreter": {"binary": "python3.99-nonexistent"}})
        run = self.run_demo(ref)
        self.assertEqual(run.rc, EXIT_FAILED, run.describe())
        self.assertIn(b"runtime python: interpreter python3.99-nonexistent not found", run.stderr)

    def test_env_vars(self):
        ref = self.python_action({
            "interpreter": {"binary": PYTHON3},
            "env_vars": {
                "PLAIN": "{pack_dir}/lib",
                "SET": {"value": "set-{pack_dir}", "operation": "set"},
                "PATH": {"value": "{pack_dir}/bin", "operation": "prepend"},
                "LIST": {"value": "last", "operation": "append", "separator": ";"},
                "FRESH": {"value": "only", "operation": "prepend"},
                "ATTUNE_X": "must not appear",
                "ATTUNE_ACTION": "must not replace",
            }})
        run = self.run_demo(ref, env={"ATTUNE__WORKER__ENV__LIST": "first"})
        self.assertRun(run, EXIT_COMPLETED, "completed")
        env = run.data["env"]
        self.assertEqual(env["PLAIN"], self.pack + "/lib")
        self.assertEqual(env["SET"], "set-" + self.pack)
        self.assertEqual(env["PATH"], self.pack + "/bin:/usr/local/sbin:/usr/local/bin:"
                         "/usr/sbin:/usr/bin:/sbin:/bin")
        self.assertEqual(env["LIST"], "first;last")
        self.assertEqual(env["FRESH"], "only")
        self.assertNotIn("ATTUNE_X", env)
        self.assertEqual(env["ATTUNE_ACTION"], "demo.report")
        self.assertIn(b"ATTUNE_X", run.stderr)  # the operator is told it was ignored

    def test_environment_interpreter_when_the_environment_exists(self):
        envs = self.path("runtime_envs")
        config = {"interpreter": {"binary": PYTHON3},
                  "environment": {"env_type": "virtualenv", "dir_name": ".venv",
                                  "interpreter_path": "{env_dir}/bin/python3"},
                  "env_vars": {"VENV": "{env_dir}"}}
        ref = self.python_action(config)
        env = {"ATTUNE__RUNTIME_ENVS_DIR": envs}
        env_dir = os.path.join(envs, "demo", "python")
        # No environment yet: the binary, with {env_dir} where it would be.
        run = self.run_demo(ref, env=env)
        self.assertRun(run, EXIT_COMPLETED, "completed")
        self.assertEqual(run.data["executable"], PYTHON3)
        self.assertEqual(run.data["env"]["VENV"], env_dir)
        # Once it exists, its interpreter.
        os.makedirs(os.path.join(env_dir, "bin"))
        os.symlink(PYTHON3, os.path.join(env_dir, "bin", "python3"))
        run = self.run_demo(ref, env=env)
        self.assertRun(run, EXIT_COMPLETED, "completed")
        self.assertEqual(run.data["executable"], os.path.join(env_dir, "bin", "python3"))


@unittest.skipUnless(NODE, "node not installed")
class NodeDefinitionTest(RuntimeConfigCase):

    def test_interpreter_and_args_from_the_definition(self):
        nd = self.link(NODE, "node-for-attune")
        code = ("exports.run = (p) => ({argv0: process.argv0, execArgv: process.execArgv,"
                " secret: getSecret('token').split('').reverse().join(''), p});\n")
        ref = self.action("report", {"runner_type": "node", "entry_point": "report.js",
                                     "runtime_config": {"interpreter": {
                                         "binary": nd, "args": ["--no-warnings"]}}},
                          {"report.js": (code, 0o644)})
        run = self.run_demo(ref, params={"x": 1})
        self.assertRun(run, EXIT_COMPLETED, "completed")
        self.assertEqual(run.data["argv0"], nd)
        self.assertEqual(run.data["execArgv"][:2], ["--no-warnings", "-e"])
        self.assertEqual(run.data["secret"], "ne'k0t")
        self.assertEqual(run.data["p"], {"x": 1})


@unittest.skipUnless(BASH, "bash not installed")
class ShellDefinitionTest(RuntimeConfigCase):

    def test_args_from_the_definition(self):
        script = "echo \"$(get_secret token | rev)\"\nfalse\necho after\n"
        ref = self.action("strict", {"runner_type": "shell", "entry_point": "strict.sh",
                                     "runtime_config": {"interpreter": {
                                         "binary": BASH, "args": ["-e"]}}},
                          {"strict.sh": (script, 0o644)})
        run = self.run_demo(ref)
        self.assertRun(run, EXIT_FAILED, "failed")
        self.assertEqual(run.result["stdout"], "ne'k0t\n")  # -e stopped it at `false`

    def test_a_shell_that_is_not_bash(self):
        if os.path.basename(os.path.realpath("/bin/sh")).startswith("bash"):
            self.skipTest("/bin/sh is bash here")
        ref = self.action("dash", {"runner_type": "shell", "entry_point": "x.sh",
                                   "runtime_config": {"interpreter": {"binary": "/bin/sh"}}},
                          {"x.sh": ("echo hi\n", 0o644)})
        run = self.run_demo(ref)
        self.assertEqual(run.rc, EXIT_USAGE, run.describe())
        self.assertIn(b"is not bash", run.stderr)


class NativeTest(RuntimeConfigCase):

    def test_executable_runs_directly_whatever_its_name(self):
        # A .py name: a local action would go to python; native runs the file itself.
        tool = "#!/bin/sh\nprintf '%s|' \"$0\" \"$(cat)\" \"$(cat <&3 | rev)\"\n"
        ref = self.action("tool", {"runner_type": "native", "entry_point": "tool.py",
                                   "runtime_config": {}},
                          {"tool.py": (tool, 0o755)})
        run = self.run_demo(ref, params={"a": 1})
        self.assertRun(run, EXIT_COMPLETED, "completed")
        argv0, params, secrets, _ = run.result["stdout"].split("|")
        self.assertEqual(os.path.basename(argv0), "tool.py")
        self.assertEqual(json.loads(params), {"a": 1})
        self.assertEqual(json.loads(secrets[::-1]), {"token": "t0k'en"})

    def test_not_executable(self):
        ref = self.action("plain", {"runner_type": "native", "entry_point": "plain"},
                          {"plain": ("#!/bin/sh\necho hi\n", 0o644)})
        run = self.run_demo(ref)
        self.assertEqual(run.rc, EXIT_USAGE, run.describe())
        self.assertIn(b"is not executable", run.stderr)


@unittest.skipUnless(BASH, "bash not installed")
class InlineShellTest(RuntimeConfigCase):

    # The last line lists the shell's descriptors by a glob, whose own directory
    # descriptor is the 3 it shows: fd 3 of the wrapper is closed by then.
    CODE = ("echo \"name=$PARAM_NAME secret=$(get_secret token | rev) zero=$0\"\n"
            "read -r line; echo \"stdin=$line\"\n"
            "tr '\\0\\n' '  ' < /proc/$$/cmdline; echo\n"
            "for f in /proc/$$/fd/*; do printf '%s ' \"${f##*/}\"; done\n")

    def test_code_runs_with_parameters_and_secrets(self):
        ref = self.action("adhoc", {"runner_type": "shell", "inline_code": True,
                                    "entry_point": self.CODE})
        before = sorted(os.listdir(os.path.join(self.pack, "actions")))
        run = self.run_demo(ref, params={"name": "Ada"})
        self.assertRun(run, EXIT_COMPLETED, "completed")
        lines = run.result["stdout"].split("\n")
        self.assertEqual(lines[0], "name=Ada secret=ne'k0t zero=demo.adhoc")
        self.assertEqual(json.loads(lines[1][len("stdin="):]), {"name": "Ada"})
        # The code is not on the command line, and no file of it was written.
        self.assertIn("demo.adhoc", lines[2])
        self.assertNotIn("PARAM_NAME", lines[2])
        self.assertEqual(lines[3].split(), ["0", "1", "2", "3"])
        self.assertEqual(sorted(os.listdir(os.path.join(self.pack, "actions"))), before)

    def test_code_failure_and_exit_status(self):
        ref = self.action("fails", {"runner_type": "shell", "inline_code": True,
                                    "entry_point": "echo oops >&2\nexit 7\necho never\n"})
        run = self.run_demo(ref)
        self.assertRun(run, EXIT_FAILED, "failed")
        self.assertEqual(run.result["exit_code"], 7)
        self.assertNotIn("stdout", run.result)  # left out when empty, as Attune does
        self.assertEqual(run.result["error"], "oops\n")  # stderr as written, as Attune does

    def test_only_the_shell_runs_code(self):
        ref = self.action("pycode", {"runner_type": "python", "inline_code": True,
                                     "entry_point": "print(1)"})
        run = self.run_demo(ref)
        self.assertEqual(run.rc, EXIT_USAGE, run.describe())
        self.assertIn(b"ad-hoc code runs only under the shell runtime", run.stderr)


if __name__ == "__main__":
    unittest.main()
