"""Spare processes (worker.spare_processes) against the real service: a shell,
Python or Node.js execution that runs in a spare behaves as a cold start does
($0 or the entry path, cwd, parameters on stdin and in PARAM_*, the environment a
child process sees, secrets through get_secret / getSecret, exit code, stdout and
stderr, timeout, the time zone); an idle spare holds no execution's data; one
that dies idle is replaced; an execution a spare cannot take runs cold, as does
a python one whose pack asks for cold starts. Unsandboxed, and as root in the
sandbox's uid mode."""
import json
import os
import re
import signal
import unittest

from db_support import ENCRYPTION_KEY
from keys_support import insert_key
from service_support import (SLOW, ServiceTestCase, alive, spare_pids, wait_until_value,
                             write_action_file, write_pack)
from observe_support import free_port, scrape
from support import cold_starts_default

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

PROBE_PY = r"""
import os, subprocess, sys, time


def run(word, code, **keys):
    print("to stdout")
    print("to stderr", file=sys.stderr)
    with open(os.path.join(os.environ["ATTUNE_ARTIFACTS_DIR"], "env.txt"), "w") as f:
        f.write(subprocess.run(["env"], capture_output=True, text=True).stdout)
    if code:
        raise ValueError("bad " + word)
    return {"argv": sys.argv, "file": __file__, "name": __name__, "cwd": os.getcwd(),
            "word": word, "secret": get_secret("spr_token")[3:], "pid": os.getpid(),
            "uid": os.getuid(), "path0": sys.path[0], "tz": list(time.tzname),
            "tmp": __import__("tempfile").gettempdir()}
"""

NODE_FAIL_JS = """
module.exports.run = async () => { throw new Error("bad " + process.env.SPARE_TEST_VAR); };
"""


def cmdline_of(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read()
    except OSError:
        return b""


class SparesTest(ServiceTestCase):
    """Unsandboxed (the harness's default)."""

    sandbox = {}

    @classmethod
    def setUpData(cls):
        db = cls.db
        write_pack(cls.packs_dir, "spr")
        for name, text in (("probe.sh", PROBE_SH), ("probe.js", PROBE_JS),
                           ("probe.py", PROBE_PY), ("sleep.sh", SLEEP_SH),
                           ("fail.js", NODE_FAIL_JS)):
            write_action_file(cls.packs_dir, "spr", name, text, 0o644)
        write_pack(cls.packs_dir, "sprcold")
        with open(os.path.join(cls.packs_dir, "sprcold", "pack.yaml"), "a") as f:
            f.write("python:\n  fork_server: false\n")
        write_action_file(cls.packs_dir, "sprcold", "probe.py", PROBE_PY, 0o644)
        pack = db.insert_pack("spr")
        params = {"word": {"type": "string"}, "code": {"type": "integer"}}
        cls.actions = {
            "probe_sh": db.insert_action(pack, "spr", "probe_sh", "probe.sh", params),
            "probe_js": db.insert_action(pack, "spr", "probe_js", "probe.js", params,
                                         output="json"),
            "sleep_sh": db.insert_action(pack, "spr", "sleep_sh", "sleep.sh"),
            "fail_js": db.insert_action(pack, "spr", "fail_js", "fail.js"),
            "probe_py": db.insert_action(pack, "spr", "probe_py", "probe.py", params,
                                         output="json"),
            "cold_py": db.insert_action(db.insert_pack("sprcold"), "sprcold", "cold_py",
                                        "probe.py", params, output="json"),
        }
        insert_key(db, "spr_token", SECRET, encrypted=True, key_string=ENCRYPTION_KEY)

    def start(self, spares):
        return self.start_with({}, spares)

    def start_with(self, settings, spares):
        env = dict(self.sandbox, **settings)
        env["ATTUNE__WORKER__SPARE_PROCESSES"] = str(spares)
        w = self.start_worker(env=env)
        # The zygote is named only once its interpreter runs: until then it
        # looks like a python spare forked from it.
        if cold_starts_default(env).get("ATTUNE__RUNTIMES__PYTHON__FORK_SERVER") != "false":
            self.assertTrue(w.wait_log(r"python fork server ready", 10 * SLOW), w.describe())
        if spares:
            # Three runtimes with spares: shell, python and node.
            self.assertTrue(wait_until_value(lambda: len(spare_pids(w.pid)) == 3 * spares,
                                             10 * SLOW),
                            "spares never came: %r\n%s" % (spare_pids(w.pid), w.describe()))
        else:
            self.assertEqual(spare_pids(w.pid), [])
        return w

    def run_action(self, w, name, params=None, timeout=None, env_vars=None):
        ref = ("sprcold." if name == "cold_py" else "spr.") + name
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

    def test_python_in_a_spare_is_a_cold_start(self):
        env = dict(ENV_VARS, TZ="Asia/Tokyo")
        seen = {}
        for spares in (2, 0):
            w = self.start(spares)
            before = spare_pids(w.pid, "python")
            row = self.run_action(w, "probe_py", {"word": "wörd", "code": 0}, env_vars=env)
            if spares:
                self.assertIn(self.pid_of(row), before, "the execution did not take a spare")
            self.check_uid(row)
            seen[spares] = self.comparable(row)
            self.stop_worker(w)
        self.assertEqual(seen[2], seen[0])
        data = seen[2]["result"]["data"]
        entry = "%s/spr/actions/probe.py" % self.packs_dir
        self.assertEqual(seen[2]["status"], "completed")
        self.assertEqual((data["argv"], data["file"], data["name"]),
                         ([entry], entry, "__attune_action__"))
        self.assertEqual((data["cwd"], data["path0"]),
                         ("%s/spr" % self.packs_dir, "%s/spr/actions" % self.packs_dir))
        self.assertEqual((data["word"], data["secret"]), ("wörd", SECRET[3:]))
        self.assertEqual(data["tz"], ["JST", "JST"])
        self.assertEqual(seen[2]["result"]["stdout"], "to stdout\n")
        self.assertIn("to stderr", seen[2]["result"]["stderr"])
        self.assertIn("SPARE_TEST_VAR=from env_vars with 'quotes' and", seen[2]["env"])

    def test_python_spares_forked_by_the_fork_server(self):
        """Once the zygote is ready, the python spares that replace those used
        are its children, and an execution in one shows what a cold one does."""
        env = {"ATTUNE__RUNTIMES__PYTHON__FORK_SERVER": "true"}
        on_demand = self.run_action(self.start_with(env, 0), "probe_py", {"word": "w", "code": 0},
                               env_vars=ENV_VARS)
        w = self.start_with(env, 1)
        forked = []
        for _ in range(3):  # until the spare taken is one the zygote forked
            spares = spare_pids(w.pid, "python")
            forked = [pid for pid in spares if b"--attune-zygote" in cmdline_of(pid)]
            row = self.run_action(w, "probe_py", {"word": "w", "code": 0}, env_vars=ENV_VARS)
            self.assertIn(self.pid_of(row), spares, "the execution did not take a spare")
            if forked:
                break
            self.assertTrue(wait_until_value(lambda: spare_pids(w.pid, "python"), 10 * SLOW))
        self.assertEqual([self.pid_of(row)], forked, "no spare forked by the zygote was used")
        self.check_uid(row)
        self.assertEqual(self.comparable(row), self.comparable(on_demand))

    def test_python_failure_in_a_spare_is_a_cold_one(self):
        seen = {}
        for spares in (2, 0):
            w = self.start(spares)
            row = self.run_action(w, "probe_py", {"word": "news", "code": 1})
            self.assertEqual(row["status"], "failed", row)
            seen[spares] = (row["result"]["exit_code"], row["result"]["error"])
            self.stop_worker(w)
        self.assertEqual(seen[2], seen[0])
        self.assertIn("ValueError: bad news", seen[2][1])

    def test_a_pack_asking_for_cold_python_starts_takes_no_spare(self):
        w = self.start(1)
        before = spare_pids(w.pid, "python")
        row = self.run_action(w, "cold_py", {"word": "w", "code": 0})
        self.assertEqual(row["status"], "completed", row)
        self.assertNotIn(self.pid_of(row), before)
        self.assertEqual(spare_pids(w.pid, "python"), before, "a python spare was used up")
        row = self.run_action(w, "probe_py", {"word": "w", "code": 0})
        self.assertIn(self.pid_of(row), before)

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
        self.run_action(w, "probe_py", {"word": "marker-word-81", "code": 0}, env_vars=ENV_VARS)
        self.assertTrue(wait_until_value(lambda: len(spare_pids(w.pid)) == 6, 10 * SLOW))
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

    def test_metrics_count_starts_in_a_spare_and_without(self):
        port = free_port()
        w = self.start_with({"ATTUNE__OBSERVABILITY__LISTEN": "127.0.0.1:%d" % port}, 1)

        def sample(name, **labels):
            return scrape(port)[0].get((name, frozenset(labels.items())))
        self.assertTrue(wait_until_value(
            lambda: sample("attune_worker_spares_idle", runtime="shell") == 1, 10 * SLOW))
        self.run_action(w, "probe_sh", {"word": "w", "code": 0})
        # SHLVL keeps it from the spare: it starts cold.
        self.run_action(w, "probe_sh", {"word": "w", "code": 0}, env_vars={"SHLVL": "3"})
        self.run_action(w, "probe_py", {"word": "w", "code": 0})
        starts = "attune_worker_spare_starts_total"
        self.assertEqual(sample(starts, runtime="shell", in_spare="true"), 1)
        self.assertEqual(sample(starts, runtime="shell", in_spare="false"), 1)
        self.assertEqual(sample(starts, runtime="python", in_spare="true"), 1)
        self.assertEqual(sample(starts, runtime="node", in_spare="true"), 0)
        self.assertTrue(wait_until_value(
            lambda: [sample("attune_worker_spares_idle", runtime=r) for r in
                     ("shell", "python", "node")] == [1, 1, 1], 10 * SLOW), w.describe())

    def test_a_spare_that_dies_idle_is_replaced(self):
        w = self.start(1)
        victims = spare_pids(w.pid)
        os.kill(victims[0], signal.SIGKILL)
        self.assertTrue(wait_until_value(
            lambda: len(spare_pids(w.pid)) == 3 and victims[0] not in spare_pids(w.pid),
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
        # SHLVL (which a cold bash counts up), python's PYTHON*.
        w = self.start(1)
        for name, env_vars, seen in (("probe_js", {"NODE_NO_WARNINGS": "1"}, "NODE_NO_WARNINGS=1"),
                                     ("probe_sh", {"SHLVL": "7"}, "SHLVL=8"),
                                     ("probe_py", {"PYTHONUTF8": "1"}, "PYTHONUTF8=1")):
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
                    lambda: len(spare_pids(w.pid)) == 3 and not set(before) <= set(
                        spare_pids(w.pid)), 10 * SLOW), w.describe())


@unittest.skipUnless(os.geteuid() == 0, "the uid sandbox needs the worker to run as root")
class SparesUidTest(SparesTest):
    """The same in the sandbox's uid mode: each spare on a uid of its own."""

    UID_FIRST, UID_COUNT = 235000, 32
    sandbox = {"ATTUNE__SANDBOX__MODE": "uid",
               "ATTUNE__SANDBOX__UID_RANGE": "%d+%d" % (UID_FIRST, UID_COUNT),
               "ATTUNE__WORKER__MAX_CONCURRENT_TASKS": "6"}

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
