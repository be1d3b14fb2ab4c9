"""Parameters that must not be on a command line: run-action reads --params-json
from a file (@FILE) or standard input (-), a secret given that way reaches the
action but neither `ps` (the command lines of run-action and the action) nor
the action's environment, a parameter declared `secret: true` is never a
PARAM_ variable, and parameters whose names meet once mapped to PARAM_ names
or dotenv keys are refused before the action starts."""
import json
import os
import secrets as random_secrets
import subprocess
import unittest

from support import (EXIT_USAGE, Run, WorkerTestCase, action_argv, b64decode, wait_for_file,
                     worker_env)


def cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return f.read()


def environ(pid):
    with open("/proc/%d/environ" % pid, "rb") as f:
        return f.read()


class ParamsSourceTest(WorkerTestCase):

    def setUp(self):
        super().setUp()
        self.token = "tok-%s" % random_secrets.token_hex(16)

    def params_file(self, params):
        path = self.path("params.json")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            json.dump(params, f)
        return path

    def check_report(self, run):
        """echo_sh_secret_param's report: the token is in the parameter document
        and in no environment variable."""
        self.assertRun(run, 0, "completed")
        report = run.data
        # The action's report of its input is masked; its reversed copy is not.
        document = json.loads(b64decode(report["input_rev"])[::-1])
        self.assertEqual(document["auth_token"], self.token)
        self.assertEqual(document["mode"], "fast")
        env = {k: b64decode(v) for k, v in report["env"].items()}
        self.assertNotIn("PARAM_AUTH_TOKEN", env)
        self.assertEqual(env.get("PARAM_MODE"), b"fast")
        self.assertFalse([k for k, v in env.items() if self.token.encode() in v],
                         "the secret parameter is in the action's environment")

    def test_params_from_a_file(self):
        path = self.params_file({"auth_token": self.token, "mode": "fast"})
        run = self.run_action("testpack.echo_sh_secret_param",
                              extra_args=["--params-json", "@" + path])
        self.check_report(run)

    def test_params_from_standard_input(self):
        stdin = json.dumps({"auth_token": self.token, "mode": "fast"}).encode()
        run = self.run_action("testpack.echo_sh_secret_param", extra_args=["--params-json", "-"],
                              stdin=stdin)
        self.check_report(run)

    def test_p_overrides_the_file(self):
        path = self.params_file({"auth_token": self.token, "mode": "safe"})
        run = self.run_action("testpack.echo_sh_secret_param", p=["mode=fast"],
                              extra_args=["--params-json", "@" + path])
        self.check_report(run)

    def test_secret_is_in_no_command_line_or_environment(self):
        pidfile, gofile = self.path("pids.json"), self.path("go")
        path = self.params_file({"pidfile": pidfile, "gofile": gofile, "auth_token": self.token})
        argv = action_argv("testpack.waiter_secret_sh", artifacts_dir=self.artifacts,
                           extra_args=["--params-json", "@" + path])
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=worker_env(), cwd=self.tmp)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        if not wait_for_file(pidfile, 30, proc):
            proc.kill()
            self.fail("the action did not start: %r" % (proc.communicate(),))
        with open(pidfile) as f:
            pids = json.load(f)
        needle = self.token.encode()
        self.assertNotIn(needle, cmdline(proc.pid), "secret on run-action's command line")
        for what in ("pid", "child"):
            self.assertNotIn(needle, cmdline(pids[what]), "secret on the %s's command line" % what)
            self.assertNotIn(needle, environ(pids[what]), "secret in the %s's environment" % what)
        ps = subprocess.run(["ps", "-eo", "args"], stdout=subprocess.PIPE, timeout=30).stdout
        self.assertNotIn(needle, ps, "secret in ps")
        open(gofile, "w").close()
        out, err = proc.communicate(timeout=60)
        self.assertRun(Run(argv, proc.returncode, out, err, 0), 0, "completed")

    def test_bad_sources(self):
        missing = self.path("missing.json")
        not_json = self.path("bad.json")
        with open(not_json, "w") as f:
            f.write("{\"auth_token\": %s" % self.token)
        for arg, stdin, needles in (("@" + missing, b"", ("--params-json", "missing.json")),
                                    ("@" + not_json, b"", ("--params-json", "JSON object")),
                                    ("-", b"[1]", ("--params-json", "JSON object")),
                                    ("-", b"", ("--params-json",))):
            with self.subTest(arg=arg, stdin=stdin):
                run = self.run_action("testpack.echo_sh_secret_param",
                                      extra_args=["--params-json", arg], stdin=stdin)
                self.assertOneLineError(run, *needles)
                self.assertNotIn(self.token.encode(), run.stderr, "the error quotes the secret")

    def test_too_large(self):
        path = self.path("big.json")
        with open(path, "w") as f:
            f.write("{\"x\": \"%s\"}" % ("a" * (16 << 20)))
        run = self.run_action("testpack.echo_sh_secret_param",
                              extra_args=["--params-json", "@" + path])
        self.assertOneLineError(run, "larger than 16 MiB")


class NameCollisionTest(WorkerTestCase):

    def test_undeclared_parameter_cannot_replace_a_declared_one(self):
        for p in (["MODE=anything"], ["mode=safe", "MODE=anything"]):
            with self.subTest(p=p):
                run = self.run_action("testpack.echo_sh_secret_param", p=p)
                self.assertOneLineError(run, "parameters 'mode' and 'MODE' map to the same name "
                                             "PARAM_MODE")
                self.assertEqual(os.listdir(self.artifacts), [], "the action started")

    def test_dotenv_keys(self):
        run = self.run_action("testpack.echo_sh_stdin_dotenv",
                              params={"nested": {"a": 1}, "nested.a": 2})
        self.assertOneLineError(run, "map to the same dotenv key nested.a")
        self.assertEqual(run.rc, EXIT_USAGE)

    def test_distinct_names_still_run(self):
        run = self.run_ok("testpack.echo_sh_stdin_dotenv", params={"nested": {"a": 1}, "name": "x"})
        self.assertEqual(b64decode(run.data["env"]["PARAM_NAME"]), b"x")


if __name__ == "__main__":
    unittest.main()
