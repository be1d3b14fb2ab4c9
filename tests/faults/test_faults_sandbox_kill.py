"""SIGKILL of a worker in the sandbox's uid mode (as root) at a random moment of a
burst of 50 starting executions, 20 times: each action leaves a `setsid` sleeper
(its own session and group) beside a foreground sleep, and 2 s after each kill no
process of any uid of sandbox.uid_range is left. The guardian learns each uid
before its process is spawned and sweeps them all when the worker dies. Also: a
worker starting on a range where processes were left kills them and says so."""
import json
import os
import random
import signal
import subprocess
import time
import unittest

import pika

from faults_support import (EXCHANGE, FaultTestCase, dispatch_key, request_envelope,
                            write_action_file, worker_queue)
from service_support import spare_pids
from support import skip_unless_reachable_by_others

# A range no other test uses (the security tests take 231000+64 and 232000+16).
UID_FIRST, UID_COUNT = 236000, 64
BURST = 50
ROUNDS = 20
MAX_DELAY_S = 0.3
SETTLE_S = 2.0

ESCAPER_SH = """#!/bin/bash
setsid sleep 600 </dev/null >/dev/null 2>&1 &
sleep 600
"""


def range_processes():
    """[(pid, uid, state, ppid, cmdline)] of the processes whose real uid is in the
    range, zombies aside (they run nothing and wait for their parent to reap them)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/status" % entry) as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
        except (FileNotFoundError, ProcessLookupError):
            continue
        uid = int(fields["Uid"].split()[0])
        state = fields["State"].split()[0]
        if UID_FIRST <= uid < UID_FIRST + UID_COUNT and state not in ("Z", "X"):
            found.append((int(entry), uid, state, int(fields["PPid"]), cmd))
    return found


def kill_range():
    """Kills what is left on the range (after a failed round: the next round must
    count only its own)."""
    for pid, _, _, _, _ in range_processes():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@unittest.skipUnless(os.geteuid() == 0, "the uid sandbox needs the worker to run as root")
class SandboxKillTest(FaultTestCase):

    @classmethod
    def setUpData(cls):
        super().setUpData()
        write_action_file(cls.packs_dir, "flt", "esc.sh", ESCAPER_SH)
        cls.db.insert_action(cls.pack_id, "flt", "esc", "esc.sh")

    def setUp(self):
        super().setUp()
        skip_unless_reachable_by_others(os.path.join(self.packs_dir, "flt", "actions", "esc.sh"))
        if range_processes():
            self.skipTest("processes already run on uids %d+%d: %r" % (
                UID_FIRST, UID_COUNT, range_processes()[:5]))
        self.addCleanup(kill_range)
        self.env = {"ATTUNE__SANDBOX__MODE": "uid",
                    "ATTUNE__SANDBOX__UID_RANGE": "%d+%d" % (UID_FIRST, UID_COUNT),
                    "ATTUNE__WORKER__MAX_CONCURRENT_TASKS": str(BURST)}

    def burst_then_kill(self, w, ids, delay):
        """Publishes a request per id and SIGKILLs the worker `delay` seconds after
        the first publish, in the middle of the burst or after it."""
        ch = self.broker.conn.channel()
        first = None
        try:
            for eid in ids:
                now = time.monotonic()
                first = first or now
                if now - first >= delay:
                    break
                env = request_envelope(eid, w.id, "flt.esc", None)
                props = pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                             message_id=env["message_id"],
                                             correlation_id=env["correlation_id"])
                ch.basic_publish(EXCHANGE, dispatch_key(w.id), json.dumps(env).encode(), props)
            ch.queue_declare(worker_queue(w.id), passive=True)
        finally:
            ch.close()
        time.sleep(max(0.0, delay - (time.monotonic() - first)))
        os.kill(w.pid, signal.SIGKILL)
        return time.monotonic()

    def one_round(self, n, rng):
        w = self.start_worker(env=self.env)
        ids = [self.db.insert_execution("flt.esc") for _ in range(BURST)]
        delay = rng.uniform(0, MAX_DELAY_S)
        killed = self.burst_then_kill(w, ids, delay)
        self.assertEqual(w.wait(10), -signal.SIGKILL, w.describe())
        time.sleep(max(0.0, killed + SETTLE_S - time.monotonic()))
        left = range_processes()
        guardian = [l for l in w.log().splitlines() if "guardian:" in l]
        print("round %2d: killed %3.0f ms after the first publish; %d left%s; %s" % (
            n, delay * 1000, len(left), "".join("\n  pid %d uid %d %s ppid %d: %s" % p
                                                for p in left),
            " | ".join(guardian) or "guardian: nothing to kill"), flush=True)
        if left:
            kill_range()
        return left, w

    def test_sigkill_during_burst_leaves_nothing_on_the_range(self):
        seed = int(os.environ.get("ATTUNE_TEST_SEED") or time.time())
        rng = random.Random(seed)
        print("seed %d (ATTUNE_TEST_SEED)" % seed, flush=True)
        failures = []
        swept = 0
        for n in range(ROUNDS):
            left, w = self.one_round(n, rng)
            swept += bool(w.wait_log(r"guardian: the worker died; swept", 0))
            if left:
                failures.append((n, left, w.log_tail(15)))
        self.assertEqual(failures, [], "processes on sandbox.uid_range 2 s after SIGKILL of "
                         "the worker (round, [(pid, uid, state, ppid, cmdline)], log)")
        # The guardian swept uids in the rounds where any execution had taken one.
        self.assertGreater(swept, 0, "no round had the guardian sweep a uid")

    def test_start_kills_what_an_earlier_worker_left(self):
        uid = UID_FIRST + UID_COUNT - 1
        stray = subprocess.Popen(["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid,
                                  "--clear-groups", "sleep", "600"], start_new_session=True)
        self.addCleanup(lambda: stray.poll() is None and stray.kill())
        self.assertTrue(any(p[0] == stray.pid for p in range_processes()) or
                        self.wait_stray(stray.pid), "the stray process is not on uid %d" % uid)
        w = self.start_worker(env=self.env)
        self.assertEqual(stray.wait(5), -signal.SIGKILL)
        self.assertTrue(w.wait_log(r"killed 1 processes left on 1 uids of sandbox.uid_range "
                                   r"by an earlier worker \(0 still alive\)", 1), w.log_tail())
        # The worker's own idle spare processes are on the range, and no one else.
        spares = spare_pids(w.pid)
        self.assertEqual([p for p in range_processes() if p[0] not in spares], [])
        self.stop_worker(w)

    def wait_stray(self, pid):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if any(p[0] == pid for p in range_processes()):
                return True
            time.sleep(0.02)
        return False


if __name__ == "__main__":
    unittest.main()
