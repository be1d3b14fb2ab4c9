"""The sandbox's userns mode against the real service, the worker run as nobody
(setpriv): the action's /proc holds only its own namespace (the worker's pid is
not there, PID 1 is attune-sandbox-init), an earlier execution's result and the
artifacts root are out of sight, files/ is writable and the pack read-only;
shell, Python and Node.js actions still get their parameters and secrets; a
`setsid` daemon is gone 5 s after its execution ended; a cancel ends an
action that does not trap SIGTERM at once; and when the worker is killed with
SIGKILL, everything its running execution started is gone 2 s later."""
import os
import shutil
import signal
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

import test_service_sandbox as uid_tests  # noqa: E402
from db_support import ENCRYPTION_KEY  # noqa: E402
from keys_support import insert_key  # noqa: E402
from service_support import ServiceTestCase, write_action_file, write_pack  # noqa: E402
from support import WORKER_BIN, skip_unless_reachable_by_others  # noqa: E402

NOBODY = 65534
SECRET = "nsbx-secret-4b9d2a"

PROBE_SH = r"""#!/usr/bin/env bash
try() { if cat "$1" > /dev/null 2>&1; then echo read; else echo denied; fi; }
printf '{"init":"%s","worker":"%s","earlier":"%s","root":"%s","nprocs":%d,' \
  "$(tr '\0' '\n' < /proc/1/cmdline | head -n 1)" "$(try /proc/$PARAM_WORKER/environ)" \
  "$(try "$PARAM_EARLIER")" "$(ls "$PARAM_ROOT" | tr '\n' ' ')" "$(ls /proc | grep -c '^[0-9]')"
printf '"files":"%s","pack":"%s"}\n' \
  "$(echo ok > "$ATTUNE_ARTIFACTS_DIR/f" && cat "$ATTUNE_ARTIFACTS_DIR/f")" \
  "$(touch "$PWD/written" 2> /dev/null && echo written || echo refused)"
"""

# Leaves a setsid daemon and, when told, a running child too, then waits if told.
LINGER_SH = r"""#!/usr/bin/env bash
setsid sleep "$PARAM_TAG" < /dev/null > /dev/null 2>&1 &
daemon=$!
sleep "$PARAM_TAG" < /dev/null > /dev/null 2>&1 &
sleep 0.2
kill -0 $daemon && echo "daemon running"
[ "$PARAM_WAIT" = yes ] && sleep 300
exit 0
"""


def sleepers(tag):
    """Host pids of `sleep TAG` processes."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    if f.read().split(b"\0")[:2] == [b"sleep", tag.encode()]:
                        found.append(int(pid))
            except OSError:
                pass
    return found


@unittest.skipUnless(os.geteuid() == 0, "runs the worker as nobody, which needs root to switch")
class SandboxUsernsServiceTest(ServiceTestCase):

    @classmethod
    def setUpData(cls):
        db = cls.db
        write_pack(cls.packs_dir, "nsbx")
        write_action_file(cls.packs_dir, "nsbx", "probe.sh", PROBE_SH)
        write_action_file(cls.packs_dir, "nsbx", "linger.sh", LINGER_SH)
        pack = db.insert_pack("nsbx")
        text = {"type": "string"}
        cls.probe = db.insert_action(pack, "nsbx", "probe", "probe.sh",
                                     {"worker": text, "earlier": text, "root": text},
                                     ["worker", "earlier", "root"], output="json")
        cls.linger = db.insert_action(pack, "nsbx", "linger", "linger.sh",
                                      {"tag": text, "wait": text}, ["tag", "wait"])
        cls.normal = {}
        for runtime, (entry, code) in uid_tests.NORMAL.items():
            code = code.replace("sbx_token", "nsbx_token")
            write_action_file(cls.packs_dir, "nsbx", entry, code, 0o644)
            name = "normal_" + runtime
            output = "json" if runtime == "shell" else "text"
            cls.normal[runtime] = db.insert_action(pack, "nsbx", name, entry, {"word": text},
                                                   ["word"], output=output)
        insert_key(db, "nsbx_token", SECRET, encrypted=True, key_string=ENCRYPTION_KEY)
        # Writable by the worker's user: read-only only through the sandbox.
        for root, dirs, _ in os.walk(os.path.join(cls.packs_dir, "nsbx")):
            os.chown(root, NOBODY, NOBODY)

    def setUp(self):
        super().setUp()
        skip_unless_reachable_by_others(WORKER_BIN)
        if shutil.which("setpriv") is None:
            raise unittest.SkipTest("setpriv (util-linux) is not installed")

    def start_nobody(self, extra=None):
        self.artifacts = os.path.join(self.tmp, "artifacts-" + uuid.uuid4().hex[:8])
        os.mkdir(self.artifacts, 0o700)
        os.chown(self.artifacts, NOBODY, NOBODY)
        env = {"ATTUNE__SANDBOX__MODE": "userns", "ATTUNE__WORKER__ARTIFACTS_DIR": self.artifacts}
        env.update(extra or {})
        prefix = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups"]
        try:
            return self.start_worker(env=env, prefix=prefix)
        except AssertionError:
            w = self.workers[-1]
            if "user namespaces, which this host refuses" in w.log():
                raise unittest.SkipTest("user namespaces are refused here: " + w.log_tail(3))
            raise

    def run_action(self, w, ref, action_id, params=None, wait=True):
        eid = self.db.insert_execution(ref, params=params, action_id=action_id)
        self.broker.dispatch(w.id, eid, ref, None)
        if not wait:
            return eid
        row = self.wait_final(eid, worker=w)
        self.assertEqual(row["status"], "completed", "%s: %r\n%s" % (ref, row, w.describe()))
        return row

    def test_worker_and_other_executions_out_of_sight(self):
        w = self.start_nobody()
        params = {"worker": str(w.pid), "earlier": "/nonexistent", "root": self.artifacts}
        earlier = self.run_action(w, "nsbx.probe", self.probe, params)["result"]
        earlier_result = os.path.join(earlier["artifacts_dir"], "result.json")
        self.assertTrue(os.path.exists(earlier_result))
        params["earlier"] = earlier_result
        data = self.run_action(w, "nsbx.probe", self.probe, params)["result"]["data"]
        self.assertEqual(data["init"].rsplit("/", 1)[-1], "attune-sandbox-init", data)
        self.assertEqual(data["worker"], "denied", data)
        self.assertEqual(data["earlier"], "denied", data)
        # Only this worker's own folder, which holds only this execution's.
        self.assertEqual(data["root"].split(), [w.name], data)
        self.assertLess(data["nprocs"], 12, data)
        self.assertEqual(data["files"], "ok", data)
        self.assertEqual(data["pack"], "refused", data)

    def test_normal_actions_of_every_runtime(self):
        w = self.start_nobody()
        for runtime, action_id in self.normal.items():
            with self.subTest(runtime=runtime):
                row = self.run_action(w, "nsbx.normal_" + runtime, action_id,
                                      {"word": "hi-" + runtime})
                result = row["result"]
                data = result["data"]
                self.assertEqual(data["word"], "hi-" + runtime)
                self.assertEqual(data["secret"], SECRET[::-1])
                self.assertEqual(data["uid"], NOBODY, data)
                with open(os.path.join(result["artifacts_dir"], "files", "out.txt")) as f:
                    self.assertEqual(f.read(), "hi-%s\n" % runtime)

    def start_linger(self, w, wait):
        tag = "%d.%s" % (5000 + os.getpid() % 1000, uuid.uuid4().int % 100000)
        eid = self.run_action(w, "nsbx.linger", self.linger, {"tag": tag, "wait": wait},
                              wait=False)
        if wait != "yes":
            return eid, tag
        # The action's /tmp is its own: the test sees it start by its processes.
        deadline = time.monotonic() + 30
        while len(sleepers(tag)) < 2:
            self.assertLess(time.monotonic(), deadline, "the action did not start\n" +
                            w.describe())
            time.sleep(0.05)
        return eid, tag

    def assertGoneWithin(self, tag, seconds, what):
        deadline = time.monotonic() + seconds
        while sleepers(tag) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = sleepers(tag)
        for pid in left:
            os.kill(pid, 9)
        self.assertEqual(left, [], what)

    def test_setsid_daemon_is_gone_after_the_execution(self):
        w = self.start_nobody()
        eid, tag = self.start_linger(w, "no")
        row = self.wait_final(eid, worker=w)
        self.assertEqual(row["status"], "completed", row)
        self.assertIn("daemon running", row["result"]["stdout"], row)
        self.assertGoneWithin(tag, 5, "the setsid daemon outlived its execution by 5 s")

    def test_worker_killed_takes_its_executions_along(self):
        w = self.start_nobody()
        _, tag = self.start_linger(w, "yes")
        w.kill()
        self.assertGoneWithin(tag, 2, "processes of an execution outlived the worker by 2 s")

    def test_cancel_ends_an_action_that_does_not_trap_sigterm_at_once(self):
        # The worker cancels what still runs 1 s after SIGTERM; SIGKILL would
        # follow 10 s after the cancel's SIGTERM.
        w = self.start_nobody({"ATTUNE__WORKER__SHUTDOWN_TIMEOUT": "1",
                               "ATTUNE__WORKER__CANCEL_GRACE_SECONDS": "10",
                               "ATTUNE__WORKER__KILL_GRACE_SECONDS": "10"})
        eid, tag = self.start_linger(w, "yes")
        sent = time.monotonic()
        w.signal(signal.SIGTERM)
        rc = w.wait(30)
        elapsed = time.monotonic() - sent
        if rc is None:
            w.kill()
            self.fail("worker still running 30 s after SIGTERM\n" + w.describe())
        self.assertEqual(rc, 0, w.describe())
        row = self.db.execution(eid)
        self.assertEqual(row["status"], "cancelled", "%r\n%s" % (row, w.describe()))
        self.assertEqual(row["result"].get("signal"), 15, row["result"])
        self.assertLess(elapsed, 6, "took %.1f s to stop: SIGTERM did not end the action" %
                        elapsed)
        self.assertGoneWithin(tag, 1, "processes of the cancelled execution are left")


if __name__ == "__main__":
    unittest.main()
