"""Spare processes (worker.spare_processes) against the real service: a shell or
Node.js execution that runs in a spare behaves as a cold start does ($0 or the
entry path, cwd, parameters on stdin and in PARAM_*, the environment a child
process sees, secrets through get_secret / getSecret, exit code, stdout and
stderr, timeout); an idle spare holds no execution's data; one that dies idle is
replaced; an execution a spare cannot take runs cold. Unsandboxed, and as root in
the sandbox's uid mode."""
import json
import os
import re
import signal
import unittest

from db_support import ENCRYPTION_KEY
from keys_support import insert_key
from service_support import (SLOW, ServiceTestCase, alive, spare_pids, wait_until_value,
                             write_action_file, write_pack)

SECRET = "spare-secret-5d2b91"
ENV_VARS = {"SPARE_TEST_VAR": "from env_vars with 'quotes' and\nnewline"}

PROBE_SH = r"""#!/usr/bin/env bash
echo "to stderr" >&2
stdin=$(cat)
secret=$(get_secret spr_token)
env > "$ATTUNE_ARTIFACTS_DIR/env.txt"
printf '%s\n' "zero=$0" "cwd=$(pwd)" "word=$PARAM_WORD" "stdin=$stdin" "secret=${secret:3}" \
  "pid=$$" "uid=$(id -u)"
exit "$PARAM_CODE"
"""

PROBE_JS = r"""
const { execFileSync } = require("child_process");
const fs = require("fs"), path = require("path");
module.exports.run = async ({ word, code }) => {
  console.error("to stderr");
  console.log("to stdout");
  fs.writeFileSync(path.join(process.env.ATTUNE_ARTIFACTS_DIR, "env.txt"),
                   execFileSync("env", { encoding: "utf8" }));
  if (code) process.exitCode = code;
  return {
    argv: process.argv.slice(1), file: __filename,
    cwd: process.cwd(), word, secret: getSecret("spr_token").slice(3), pid: process.pid,
    uid: process.getuid(),
  };
};
"""

SLEEP_SH = """#!/usr/bin/env bash
echo started
sleep 30
"""

NODE_FAIL_JS = """
module.exports.run = async () => { throw new Error("bad " + process.env.SPARE_TEST_VAR); };
"""


class SparesTest(ServiceTestCase):
    """Unsandboxed (the harness's default)."""

    sandbox = {}

    @classmethod
    def setUpData(cls):
        db = cls.db
        write_pack(cls.packs_dir, "spr")
        for name, text in (("probe.sh", PROBE_SH), ("probe.js", PROBE_JS),
                           ("sleep.sh", SLEEP_SH), ("fail.js", NODE_FAIL_JS)):
            write_action_file(cls.packs_dir, "spr", name, text, 0o644)
        pack = db.insert_pack("spr")
        params = {"word": {"type": "string"}, "code": {"type": "integer"}}
        cls.actions = {
            "probe_sh": db.insert_action(pack, "spr", "probe_sh", "probe.sh", params),
            "probe_js": db.insert_action(pack, "spr", "probe_js", "probe.js", params,
                                         output="json"),
            "sleep_sh": db.insert_action(pack, "spr", "sleep_sh", "sleep.sh"),
            "fail_js": db.insert_action(pack, "spr", "fail_js", "fail.js"),
        }
        insert_key(db, "spr_token", SECRET, encrypted=True, key_string=ENCRYPTION_KEY)

    def start(self, spares):
        env = dict(self.sandbox)
        env["ATTUNE__WORKER__SPARE_PROCESSES"] = str(spares)
        w = self.start_worker(env=env)
        if spares:
            # Two runtimes with spares: shell and node.
            self.assertTrue(wait_until_value(lambda: len(spare_pids(w.pid)) == 2 * spares,
                                             10 * SLOW),
                            "spares never came: %r\n%s" % (spare_pids(w.pid), w.describe()))
        else:
            self.assertEqual(spare_pids(w.pid), [])
        return w

    def run_action(self, w, name, params=None, timeout=None, env_vars=None):
        ref = "spr." + name
        eid = self.db.insert_execution(ref, params=params, action_id=self.actions[name],
                                       timeout=timeout, env_vars=env_vars)
        self.broker.dispatch(w.id, eid, ref, params)
        return self.wait_final(eid, worker=w)

    def comparable(self, row):
        """What an execution showed, without what differs between any two
        executions (its id, folder, pid, duration)."""
        result = dict(row["result"])
        folder = result.pop("artifacts_dir")
        with open(os.path.join(folder, "files", "env.txt")) as f:
            env = sorted(line for line in f.read().split("\n")
                         if line and not line.startswith("ATTUNE_EXEC_ID="))
        text = json.dumps({"status": row["status"], "result": result, "env": env})
        text = text.replace(folder, "EXECUTION_DIR")
        out = json.loads(text)
        out["result"].pop("duration_ms", None)
        if "stdout" in out["result"]:
            out["result"]["stdout"] = re.sub(r"pid=\d+", "pid=PID", out["result"]["stdout"])
        if isinstance(out["result"].get("data"), dict):
            out["result"]["data"].pop("pid")
        return out

    def pid_of(self, row):
        data = row["result"].get("data")
        if isinstance(data, dict):
            return data["pid"]
        return int(row["result"]["stdout"].split("pid=")[1].split()[0])

    def run_both(self, name, params, **kw):
        """The execution in a worker with spares, which must take a spare, and in
        one without: what each showed."""
        seen = {}
        for spares in (2, 0):
            w = self.start(spares)
            before = spare_pids(w.pid)
            row = self.run_action(w, name, params, env_vars=ENV_VARS, **kw)
            if spares:
                self.assertIn(self.pid_of(row), before, "the execution did not take a spare")
            self.check_uid(row)
            seen[spares] = self.comparable(row)
            self.stop_worker(w)
        return seen

    def check_uid(self, row):
        pass

    def test_shell_in_a_spare_is_a_cold_start(self):
        seen = self.run_both("probe_sh", {"word": "it's a\nword", "code": 3})
        self.assertEqual(seen[2], seen[0])
        out = seen[2]["result"]["stdout"]
        self.assertEqual(seen[2]["status"], "failed")
        self.assertEqual(seen[2]["result"]["exit_code"], 3)
        self.assertIn("zero=%s/spr/actions/probe.sh\n" % self.packs_dir, out)
        self.assertIn("cwd=%s/spr\n" % self.packs_dir, out)
        self.assertIn("word=it's a\nword\n", out)
        self.assertIn('stdin={"code":3,"word":"it\'s a\\nword",', out)
        self.assertIn("secret=%s\n" % SECRET[3:], out)
        self.assertIn("to stderr", seen[2]["result"]["stderr"])
        env = seen[2]["env"]
        self.assertIn("PARAM_WORD=it's a", env)
        self.assertIn("SPARE_TEST_VAR=from env_vars with 'quotes' and", env)
        self.assertIn("PWD=%s/spr" % self.packs_dir, env)
        self.assertFalse([v for v in env if SECRET in v or v.startswith("OLDPWD=")], env)

    def test_node_in_a_spare_is_a_cold_start(self):
        seen = self.run_both("probe_js", {"word": "wörd", "code": 0})
        self.assertEqual(seen[2], seen[0])
        data = seen[2]["result"]["data"]
        entry = "%s/spr/actions/probe.js" % self.packs_dir
        self.assertEqual(seen[2]["status"], "completed")
        self.assertEqual(data["argv"], [entry])
        self.assertEqual(data["file"], entry)
        self.assertEqual(data["cwd"], "%s/spr" % self.packs_dir)
        self.assertEqual(data["word"], "wörd")
        self.assertEqual(data["secret"], SECRET[3:])
        self.assertIn("to stderr", seen[2]["result"]["stderr"])
        self.assertIn("SPARE_TEST_VAR=from env_vars with 'quotes' and", seen[2]["env"])

    def test_node_failure_in_a_spare_is_a_cold_one(self):
        seen = {}
        for spares in (2, 0):
            w = self.start(spares)
            row = self.run_action(w, "fail_js", env_vars={"SPARE_TEST_VAR": "news"})
            self.assertEqual(row["status"], "failed", row)
            seen[spares] = (row["result"]["exit_code"], row["result"]["error"])
            self.stop_worker(w)
        self.assertEqual(seen[2], seen[0])
        self.assertIn("Error: bad news", seen[2][1])

    def test_timeout_in_a_spare(self):
        for spares in (2, 0):
            with self.subTest(spares=spares):
                w = self.start(spares)
                row = self.run_action(w, "sleep_sh", timeout=1)
                self.assertEqual(row["status"], "timeout", row)
                self.assertLess(row["result"]["duration_ms"], 10000, row)
                self.assertEqual(row["result"]["stdout"], "started\n")
                self.stop_worker(w)

    def test_idle_spares_hold_no_execution_data(self):
        w = self.start(2)
        self.run_action(w, "probe_sh", {"word": "marker-word-81", "code": 0}, env_vars=ENV_VARS)
        self.run_action(w, "probe_js", {"word": "marker-word-81", "code": 0}, env_vars=ENV_VARS)
        self.assertTrue(wait_until_value(lambda: len(spare_pids(w.pid)) == 4, 10 * SLOW))
        for pid in spare_pids(w.pid):
            with open("/proc/%d/environ" % pid, "rb") as f:
                environ = f.read()
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                cmdline = f.read()
            names = {v.split(b"=", 1)[0] for v in environ.split(b"\0") if v}
            self.assertLessEqual(names, {b"PATH", b"HOME", b"LANG", b"SHELL"}, names)
            for needle in (SECRET.encode(), b"marker-word-81", b"ATTUNE_", b"PARAM_",
                           b"SPARE_TEST_VAR"):
                self.assertNotIn(needle, environ + cmdline)
            self.assertNotIn(b"ATTUNE__", environ, "a spare got the worker's own environment")
        spares = spare_pids(w.pid)
        self.stop_worker(w)
        self.assertFalse([pid for pid in spares if alive(pid)], "spares outlived the worker")

    def test_a_spare_that_dies_idle_is_replaced(self):
        w = self.start(1)
        victims = spare_pids(w.pid)
        os.kill(victims[0], signal.SIGKILL)
        self.assertTrue(wait_until_value(
            lambda: len(spare_pids(w.pid)) == 2 and victims[0] not in spare_pids(w.pid),
            10 * SLOW), w.describe())
        self.assertIn("ended while idle", w.log())
        row = self.run_action(w, "probe_sh", {"word": "after", "code": 0})
        self.assertEqual(row["status"], "completed", row)

    def test_spares_are_at_most_the_slots(self):
        env = dict(self.sandbox, ATTUNE__WORKER__SPARE_PROCESSES="2",
                   ATTUNE__WORKER__MAX_CONCURRENT_TASKS="1")
        w = self.start_worker(env=env)
        self.assertTrue(wait_until_value(lambda: spare_pids(w.pid), 10 * SLOW), w.describe())
        self.assertFalse(wait_until_value(lambda: len(spare_pids(w.pid)) > 1, 1))
        with open("/proc/%d/cmdline" % spare_pids(w.pid)[0], "rb") as f:
            self.assertTrue(f.read().endswith(b"\0attune-spare\0"))
        row = self.run_action(w, "probe_js", {"word": "w", "code": 0})
        self.assertEqual(row["status"], "completed", row)
        self.assertEqual(len(spare_pids(w.pid)), 1)

    def test_an_execution_a_spare_cannot_take_runs_cold(self):
        # What the interpreter reads only as it starts: node's NODE_*, bash's
        # SHLVL (which a cold bash counts up).
        w = self.start(1)
        for name, env_vars, seen in (("probe_js", {"NODE_NO_WARNINGS": "1"}, "NODE_NO_WARNINGS=1"),
                                     ("probe_sh", {"SHLVL": "7"}, "SHLVL=8")):
            with self.subTest(action=name):
                before = spare_pids(w.pid)
                row = self.run_action(w, name, {"word": "w", "code": 0}, env_vars=env_vars)
                self.assertEqual(row["status"], "completed", row)
                self.assertNotIn(self.pid_of(row), before)
                folder = row["result"]["artifacts_dir"]
                with open(os.path.join(folder, "files", "env.txt")) as f:
                    self.assertIn(seen + "\n", f.read())
                # The spare that could not take it is gone, and replaced.
                self.assertTrue(wait_until_value(
                    lambda: len(spare_pids(w.pid)) == 2 and not set(before) <= set(
                        spare_pids(w.pid)), 10 * SLOW), w.describe())


@unittest.skipUnless(os.geteuid() == 0, "the uid sandbox needs the worker to run as root")
class SparesUidTest(SparesTest):
    """The same in the sandbox's uid mode: each spare on a uid of its own."""

    UID_FIRST, UID_COUNT = 235000, 32
    sandbox = {"ATTUNE__SANDBOX__MODE": "uid",
               "ATTUNE__SANDBOX__UID_RANGE": "%d+%d" % (UID_FIRST, UID_COUNT),
               "ATTUNE__WORKER__MAX_CONCURRENT_TASKS": "4"}

    def check_uid(self, row):
        data = row["result"].get("data")
        uid = data["uid"] if isinstance(data, dict) else int(
            row["result"]["stdout"].split("uid=")[1].split()[0])
        self.assertTrue(self.UID_FIRST <= uid < self.UID_FIRST + self.UID_COUNT, row)

    def comparable(self, row):
        out = super().comparable(row)
        # Each execution has a uid of its own.
        if "stdout" in out["result"]:
            out["result"]["stdout"] = out["result"]["stdout"].rsplit("uid=", 1)[0]
        if isinstance(out["result"].get("data"), dict):
            out["result"]["data"].pop("uid")
        return out


if __name__ == "__main__":
    unittest.main()
