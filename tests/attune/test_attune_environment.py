"""The environment an action gets (ATTUNE-TODAY 5.3): every ATTUNE_* variable
Attune's worker sets, from the execution row, its enforcement, config.context
and the worker's settings; the runtime row's env_vars and execution.env_vars,
whose ATTUNE_* keys cannot override the worker's; nothing of the worker's own
environment."""
import json
import os
import unittest

from attune_support import API_URL, LEAK_CANARY, PACK_REF, AttuneTestCase

RULE_REF = "%s.on_tick" % PACK_REF
TRIGGER_REF = "core.intervaltimer"


class EnvironmentTest(AttuneTestCase):

    @classmethod
    def setUpData(cls):
        cls.add_action("shell_report", "report.sh", "shell")
        cls.identity = cls.db.insert_identity("compat-user")

    def env_of(self, run):
        self.assertCompleted(run)
        env = run.data.get("env")
        self.assertIsInstance(env, dict, run.describe())
        return env

    def test_standard_variables(self):
        config = {"word": "hi"}
        run = self.run_action("shell_report", config, trace_tag="compat.trace.42",
                              executor=self.identity)
        env = self.env_of(run)
        expected = {
            "ATTUNE_EXEC_ID": str(run.id),
            "ATTUNE_ACTION": "%s.shell_report" % PACK_REF,
            "ATTUNE_PACK_REF": PACK_REF,
            "ATTUNE_API_URL": API_URL,
            "ATTUNE_PACK_RELEASE_DIGEST": self.release["digest"],
            "ATTUNE_TRACE_TAG": "compat.trace.42",
            "ATTUNE_PARAMETER_DELIVERY": "stdin",
            "ATTUNE_PARAMETER_FORMAT": "json",
        }
        self.assertEqual({k: env.get(k) for k in expected}, expected)
        self.assertEqual(os.path.realpath(env.get("ATTUNE_RUNTIME_ENVS_DIR", "")),
                         os.path.realpath(self.runtime_envs_dir), "ATTUNE_RUNTIME_ENVS_DIR")
        # Attune gives every action the shared artifacts root; this worker gives
        # each execution a folder of its own under it (docs/interfaces.md), so
        # one action cannot reach another's files.
        files = os.path.realpath(env.get("ATTUNE_ARTIFACTS_DIR", ""))
        root = os.path.realpath(self.artifacts_dir)
        self.assertTrue(files.startswith(root + os.sep), (files, root))
        self.assertIn(str(run.id), files.split(os.sep), "not the execution's own folder")
        self.assertNotIn("ATTUNE_PARAMETER_FILE", env, "stdin delivery names no file")
        # No permission sets on the execution: no execution token (7).
        self.assertNotIn("ATTUNE_API_TOKEN", env)
        self.assertEqual(run.data.get("params"), config)

    def test_rule_trigger_and_context(self):
        enforcement = self.db.insert_enforcement(RULE_REF, TRIGGER_REF)
        context = {"source": "timer", "attempt": 2, "flag": True, "nested": {"k": ["v", 1]}}
        config = {"word": "hi", "context": context}
        run = self.run_action("shell_report", config, enforcement=enforcement)
        env = self.env_of(run)
        self.assertEqual(env.get("ATTUNE_RULE"), RULE_REF)
        self.assertEqual(env.get("ATTUNE_TRIGGER"), TRIGGER_REF)
        self.assertEqual(env.get("ATTUNE_CONTEXT_SOURCE"), "timer")
        self.assertEqual(env.get("ATTUNE_CONTEXT_ATTEMPT"), "2")
        self.assertEqual(env.get("ATTUNE_CONTEXT_FLAG"), "true")
        self.assertIn("ATTUNE_CONTEXT_NESTED", env)
        self.assertEqual(json.loads(env["ATTUNE_CONTEXT_NESTED"]), context["nested"])
        # context is a parameter like any other (the config is flat).
        self.assertEqual(run.data.get("params"), config)

    def test_no_rule_or_trigger_without_an_enforcement(self):
        env = self.env_of(self.run_action("shell_report", {"word": "x"}))
        self.assertNotIn("ATTUNE_RULE", env)
        self.assertNotIn("ATTUNE_TRIGGER", env)
        self.assertNotIn("ATTUNE_TRACE_TAG", env)
        self.assertFalse([k for k in env if k.startswith("ATTUNE_CONTEXT_")], env)

    def test_runtime_and_execution_env_vars_cannot_set_attune_variables(self):
        env_vars = {"COMPAT_EXEC_MARK": "from-execution", "ATTUNE_EXEC_ID": "999",
                    "ATTUNE_PACK_REF": "spoofed", "ATTUNE_TRACE_TAG": "spoofed"}
        run = self.run_action("shell_report", {"word": "x"}, env_vars=env_vars)
        env = self.env_of(run)
        self.assertEqual(env.get("COMPAT_EXEC_MARK"), "from-execution")
        self.assertEqual(env.get("ATTUNE_EXEC_ID"), str(run.id))
        self.assertEqual(env.get("ATTUNE_PACK_REF"), PACK_REF)
        self.assertNotIn("ATTUNE_TRACE_TAG", env, "execution.env_vars set an ATTUNE_ variable")
        # The Shell runtime row's env_vars, templated with {pack_dir}: the
        # release folder; its ATTUNE_ACTION is ignored.
        release = os.path.realpath(self.release_dir)
        self.assertIn("AT_RT_PACK_DIR", env, "the runtime row's env_vars were not applied")
        self.assertEqual(os.path.realpath(env["AT_RT_PACK_DIR"]), release)
        self.assertIn("AT_RT_PATHLIKE", env)
        self.assertEqual(os.path.realpath(env["AT_RT_PATHLIKE"].split(":")[0]),
                         os.path.join(release, "lib"))
        self.assertEqual(env.get("ATTUNE_ACTION"), "%s.shell_report" % PACK_REF)

    def test_execution_env_vars_cannot_run_code_in_the_action(self):
        # Attune passes these on; this worker drops them and its log says so.
        marker = os.path.join(self.tmp, "bash-env-ran-%d" % os.getpid())
        denied = {"BASH_ENV": "$(touch %s)" % marker, "LD_PRELOAD": "/nonexistent/x.so",
                  "PYTHONPATH": "/tmp", "NODE_OPTIONS": "--require=/tmp/x.js",
                  "BASH_FUNC_cat%%": "() { echo pwned; }", "PARAM_WORD": "spoofed"}
        env_vars = dict(denied, COMPAT_EXEC_MARK="kept")
        run = self.run_action("shell_report", {"word": "x"}, env_vars=env_vars)
        env = self.env_of(run)
        self.assertEqual(env.get("COMPAT_EXEC_MARK"), "kept")
        self.assertEqual(env.get("PARAM_WORD"), "x")
        for name in denied:
            if name != "PARAM_WORD":
                self.assertNotIn(name, env, "execution.env_vars passed %s" % name)
        self.assertFalse(os.path.exists(marker), "BASH_ENV ran in the action")
        self.assertTrue(self.worker.wait_log(
            r"execution %d: dropped environment variables of execution.env_vars that no action "
            r"may be given: .*BASH_ENV" % run.id, 10), self.worker.describe())

    def test_worker_environment_does_not_leak(self):
        env = self.env_of(self.run_action("shell_report", {"word": "x"}))
        self.assertNotIn(LEAK_CANARY[0], env)
        self.assertNotIn(LEAK_CANARY[1], json.dumps(env))
        leaked = sorted(k for k in env if k.upper().startswith("ATTUNE__"))
        self.assertEqual(leaked, [], "the worker's settings reached the action")


if __name__ == "__main__":
    unittest.main()
