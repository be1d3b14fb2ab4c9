"""Per-execution limits and planted files against the real service, in the
sandbox's uid mode (the worker runs as root): a shell fork bomb is bounded by
sandbox.tasks_max and ends by its timeout with nothing of it left 5 s later, a
Python action allocating 2 GiB against a 256 MiB sandbox.memory_max fails with an
error naming the limit, and a FIFO or symlink an action plants in its execution's
folder neither blocks nor misleads the worker; after each the worker still runs
other executions; /metrics follows the uids in use, the sweeps that killed
what an action left behind and the executions over a limit."""
import json
import os
import platform
import re
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

from observe_support import free_port, scrape, text_string_to_metric_families  # noqa: E402
from service_support import (SPARES_OFF, ServiceTestCase, spare_pids,  # noqa: E402
                             write_action_file, write_pack)
from support import SOURCE_DIR  # noqa: E402

UID_FIRST, UID_COUNT = 234000, 32
TASKS_MAX = 20
LIMITS_ENV = {"ATTUNE__SANDBOX__MODE": "uid",
              "ATTUNE__SANDBOX__UID_RANGE": "%d+%d" % (UID_FIRST, UID_COUNT),
              "ATTUNE__SANDBOX__MEMORY_MAX": "256M",
              "ATTUNE__SANDBOX__TASKS_MAX": str(TASKS_MAX),
              "ATTUNE__WORKER__KILL_GRACE_SECONDS": "1"}

BOMB_SH = r"""#!/usr/bin/env bash
b() { b | b & }
b 2>/dev/null
exec sleep 60
"""

HOG_PY = r"""
def run():
    block = bytearray(2 << 30)
    for i in range(0, len(block), 4096):
        block[i] = 1
    return {"size": len(block)}
"""

# More processes than tasks_max: the fork that goes over fails (EAGAIN).
SPAWN_PY = r"""
import subprocess
def run():
    children = [subprocess.Popen(["sleep", "30"]) for _ in range(40)]
    return {"started": len(children)}
"""

# Tries to swap the worker's own files for a FIFO and a symlink (its folder is
# not the action's), then plants both where it may: files/ and its home.
PLANT_SH = r"""#!/usr/bin/env bash
dir=$(dirname "$ATTUNE_ARTIFACTS_DIR")
try() { if "$@" 2>/dev/null; then echo allowed; else echo denied; fi; }
fifo=$(try mkfifo "$dir/stdout.log.x")
swap=$(try mv -f "$dir/stdout.log.x" "$dir/stdout.log")
link=$(try ln -sf /etc/shadow "$dir/result.json")
mkfifo "$ATTUNE_ARTIFACTS_DIR/fifo" "$ATTUNE_ARTIFACTS_DIR/result.json" "$HOME/stdout.log"
ln -s /etc/shadow "$ATTUNE_ARTIFACTS_DIR/shadow"
ln -s ../stdout.log "$ATTUNE_ARTIFACTS_DIR/stdout.log"
ln -s /proc/1/fd/0 "$ATTUNE_ARTIFACTS_DIR/stdin"
printf '{"fifo":"%s","swap":"%s","link":"%s","marker":"plant-7d1c"}\n' "$fifo" "$swap" "$link"
"""

# Interpreters start under the limits: V8 reserves far more address space than
# 256 MiB, which RLIMIT_DATA (unlike RLIMIT_AS) does not count.
SMALL = {
    "python": ("small.py", r"""
import os
def run():
    return {"uid": os.getuid(), "list": len(list(range(100000)))}
"""),
    "node": ("small.js", r"""
module.exports.run = async () => ({ uid: process.getuid(), list: new Array(100000).fill(1).length });
"""),
}

# Leaves a process behind on its uid (its own session, not waited for), and
# runs long enough to be seen holding its uid.
LEAVE_SH = r"""#!/usr/bin/env bash
setsid sleep 300 </dev/null >/dev/null 2>&1 &
sleep 1.5
echo left
"""

OK_SH = r"""#!/usr/bin/env bash
printf '{"ok":true,"uid":%d}\n' "$(id -u)"
"""


def sandbox_pids():
    """{uid: [pid...]} of the processes on the test's uids, zombies included."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            uid = os.stat("/proc/" + name).st_uid
        except OSError:
            continue
        if UID_FIRST <= uid < UID_FIRST + UID_COUNT:
            found.setdefault(uid, []).append(int(name))
    return found


def kernel_at_least(major, minor):
    try:
        got = tuple(int(x) for x in platform.release().split("-")[0].split(".")[:2])
    except ValueError:
        return False
    return got >= (major, minor)


@unittest.skipUnless(os.geteuid() == 0, "the uid sandbox needs the worker to run as root")
class SandboxLimitsTest(ServiceTestCase):

    @classmethod
    def setUpData(cls):
        db = cls.db
        write_pack(cls.packs_dir, "lim")
        write_action_file(cls.packs_dir, "lim", "bomb.sh", BOMB_SH)
        write_action_file(cls.packs_dir, "lim", "hog.py", HOG_PY, 0o644)
        write_action_file(cls.packs_dir, "lim", "plant.sh", PLANT_SH)
        write_action_file(cls.packs_dir, "lim", "ok.sh", OK_SH)
        write_action_file(cls.packs_dir, "lim", "spawn.py", SPAWN_PY, 0o644)
        write_action_file(cls.packs_dir, "lim", "leave.sh", LEAVE_SH)
        pack = db.insert_pack("lim")
        cls.bomb = db.insert_action(pack, "lim", "bomb", "bomb.sh", timeout=5)
        cls.hog = db.insert_action(pack, "lim", "hog", "hog.py", timeout=60)
        cls.plant = db.insert_action(pack, "lim", "plant", "plant.sh", output="json")
        cls.ok = db.insert_action(pack, "lim", "ok", "ok.sh", output="json")
        cls.spawn = db.insert_action(pack, "lim", "spawn", "spawn.py", timeout=60)
        cls.leave = db.insert_action(pack, "lim", "leave", "leave.sh", timeout=30)
        cls.small = {}
        for runtime, (entry, code) in SMALL.items():
            write_action_file(cls.packs_dir, "lim", entry, code, 0o644)
            cls.small[runtime] = db.insert_action(pack, "lim", "small_" + runtime, entry)

    def dispatch(self, w, ref, action_id):
        eid = self.db.insert_execution(ref, action_id=action_id)
        self.broker.dispatch(w.id, eid, ref, None)
        return eid

    def start_limited(self, env=None):
        w = self.start_worker(env=dict(LIMITS_ENV, **(env or {})))
        log = w.log()
        if "sandbox limits: rlimits" not in log and "sandbox limits: cgroup v2" not in log:
            self.skipTest("the worker enforces no limit on this host:\n" + w.log_tail())
        return w

    def assert_serving(self, w):
        """Another execution still runs to completion, on a uid of the range."""
        row = self.wait_final(self.dispatch(w, "lim.ok", self.ok), worker=w)
        self.assertEqual(row["status"], "completed", "%r\n%s" % (row, w.describe()))
        uid = row["result"]["data"]["uid"]
        self.assertTrue(UID_FIRST <= uid < UID_FIRST + UID_COUNT, row["result"])

    def execution_pids(self, w):
        """sandbox_pids() without the worker's idle spare processes, which are
        on uids of the range too but belong to no execution."""
        found = sandbox_pids()
        spares = set(spare_pids(w.pid))
        return {uid: pids for uid, pids in found.items() if set(pids) - spares}

    def assert_nothing_left(self, w, seconds=5):
        deadline = time.monotonic() + seconds
        while self.execution_pids(w) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = self.execution_pids(w)
        self.assertEqual(left, {}, "processes of executions left %ds after they ended\n%s"
                         % (seconds, w.describe()))

    def test_fork_bomb_bounded_by_tasks_max(self):
        w = self.start_limited()
        eid = self.dispatch(w, "lim.bomb", self.bomb)
        # While the bomb runs: no uid ever holds more than tasks_max processes,
        # and the worker still starts and finishes another execution.
        peak, stop = [0], threading.Event()

        def watch():
            while not stop.is_set():
                counts = [len(p) for p in sandbox_pids().values()]
                peak[0] = max([peak[0]] + counts)
                time.sleep(0.05)
        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            time.sleep(1.5)
            self.assert_serving(w)
            row = self.wait_final(eid, timeout=40, worker=w)
        finally:
            stop.set()
            watcher.join()
        self.assertEqual(row["status"], "timeout", "%r\n%s" % (row, w.describe()))
        self.assertGreater(peak[0], 2, "the bomb never forked: the test saw nothing")
        self.assertLessEqual(peak[0], TASKS_MAX, "one execution held more than tasks_max")
        self.assert_nothing_left(w)
        self.assert_serving(w)

    def test_too_many_processes_fail_with_clear_error(self):
        w = self.start_limited()
        row = self.wait_final(self.dispatch(w, "lim.spawn", self.spawn), timeout=90, worker=w)
        result = row["result"]
        self.assertEqual(row["status"], "failed", "%r\n%s" % (row, w.describe()))
        self.assertIn("the action reached sandbox.tasks_max (%d)" % TASKS_MAX, result["error"],
                      json.dumps(result))
        self.assert_nothing_left(w)
        self.assert_serving(w)

    def test_memory_hog_fails_with_clear_error(self):
        if not kernel_at_least(4, 7):
            self.skipTest("RLIMIT_DATA counts anonymous memory from Linux 4.7 only")
        w = self.start_limited()
        row = self.wait_final(self.dispatch(w, "lim.hog", self.hog), timeout=90, worker=w)
        result = row["result"]
        self.assertEqual(row["status"], "failed", "%r\n%s" % (row, w.describe()))
        self.assertIn("the action exceeded sandbox.memory_max (256 MiB", result["error"],
                      json.dumps(result))
        self.assertNotIn("size", result.get("data") or {})
        self.assert_nothing_left(w)
        self.assert_serving(w)

    def test_python_and_node_start_under_limits(self):
        w = self.start_limited()
        for runtime, action_id in self.small.items():
            with self.subTest(runtime=runtime):
                row = self.wait_final(self.dispatch(w, "lim.small_" + runtime, action_id),
                                      worker=w)
                self.assertEqual(row["status"], "completed", "%r\n%s" % (row, w.describe()))
                data = row["result"]["data"]
                self.assertEqual(data["list"], 100000)
                self.assertTrue(UID_FIRST <= data["uid"] < UID_FIRST + UID_COUNT, data)

    def test_planted_fifo_and_symlinks(self):
        w = self.start_limited()
        row = self.wait_final(self.dispatch(w, "lim.plant", self.plant), worker=w)
        self.assertEqual(row["status"], "completed", "%r\n%s" % (row, w.describe()))
        result = row["result"]
        self.assertEqual(result["data"], {"fifo": "denied", "swap": "denied", "link": "denied",
                                          "marker": "plant-7d1c"})
        # What the worker stored is its own: regular files, the action's output.
        folder = result["artifacts_dir"]
        for name in ("stdout.log", "result.json"):
            st = os.lstat(os.path.join(folder, name))
            self.assertTrue(os.path.isfile(os.path.join(folder, name)) and st.st_nlink == 1,
                            name)
            self.assertFalse(os.path.islink(os.path.join(folder, name)), name)
        with open(os.path.join(folder, "stdout.log")) as f:
            self.assertIn("plant-7d1c", f.read())
        with open(os.path.join(folder, "result.json")) as f:
            self.assertEqual(json.load(f)["data"]["marker"], "plant-7d1c")
        self.assertNotIn("root:", json.dumps(result))
        self.assert_serving(w)
        self.assert_serving(w)
        self.assert_nothing_left(w)

    def test_sandbox_metrics(self):
        if text_string_to_metric_families is None:
            self.skipTest("python3-prometheus-client is not installed (scripts/install-deps)")
        if not kernel_at_least(4, 7):
            self.skipTest("RLIMIT_DATA counts anonymous memory from Linux 4.7 only")
        port = free_port()
        # Idle spare processes hold uids too: these counts are the executions' own.
        w = self.start_limited(dict(SPARES_OFF,
                                    ATTUNE__OBSERVABILITY__LISTEN="127.0.0.1:%d" % port))

        def sample(name, **labels):
            return scrape(port)[0].get((name, frozenset(labels.items())))
        self.assertEqual([sample("attune_worker_sandbox_mode", mode=m)
                          for m in ("uid", "none", "userns")], [1, 0, 0])
        self.assertEqual(sample("attune_worker_sandbox_uids_free"), UID_COUNT)
        self.assertEqual(sample("attune_worker_sandbox_sweeps_total"), 0)
        eid = self.dispatch(w, "lim.leave", self.leave)
        held, deadline = 0, time.monotonic() + 20
        while not held and time.monotonic() < deadline:
            held = sample("attune_worker_sandbox_uids_in_use")
            time.sleep(0.05)
        self.assertEqual(held, 1, "no scrape saw the running execution's uid\n" + w.describe())
        self.assertEqual(sample("attune_worker_sandbox_uids_free"), UID_COUNT - 1)
        self.assertEqual(self.wait_final(eid, worker=w)["status"], "completed", w.describe())
        self.assert_nothing_left(w)
        hog = self.wait_final(self.dispatch(w, "lim.hog", self.hog), timeout=90, worker=w)
        self.assertEqual(hog["status"], "failed", w.describe())
        self.assert_serving(w)  # a third execution, which leaves nothing
        samples, _ = scrape(port)
        got = {n[len("attune_worker_sandbox_"):]: v for (n, ls), v in samples.items()
               if n.startswith("attune_worker_sandbox_") and not ls}
        self.assertEqual(got, {"uids_in_use": 0, "uids_free": UID_COUNT, "sweeps_total": 3,
                               "sweeps_killed_total": 1, "sweep_survivors_total": 0})
        limits = {dict(ls)["limit"]: v for (n, ls), v in samples.items()
                  if n == "attune_worker_sandbox_limit_exceeded_total"}
        self.assertEqual(limits, {"memory_max": 1, "tasks_max": 0})
        # Every sandbox metric the dashboard queries is served in this mode.
        with open(os.path.join(SOURCE_DIR, "packaging", "grafana-attune-worker.json")) as f:
            exprs = [t["expr"] for p in json.load(f)["panels"] for t in p["targets"]]
        queried = {m for e in exprs for m in re.findall(r"attune_worker_sandbox_[a-z_]+", e)}
        self.assertGreaterEqual(len(queried), 6, queried)
        self.assertEqual(queried - {n for n, _ in samples}, set())


if __name__ == "__main__":
    unittest.main()
