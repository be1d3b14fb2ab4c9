"""Graceful shutdown of the service (CONTRACT.md section 9): on SIGTERM the worker
stops taking work, lets running executions finish for up to
worker.shutdown_timeout, cancels the rest, marks itself inactive and exits 0; a
second signal stops it at once."""
import os
import signal
import time
import unittest
import uuid

from service_support import (SLOW, ServiceTestCase, pid_gone, wait_until_value, worker_queue,
                             write_action_file, write_pack)
from support import live_members_of_group

SLEEPER_SH = """#!/bin/bash
# Says where it runs, then sleeps for the requested time.
read -r _ _ _ _ pgid _ </proc/$$/stat
echo "$$ $pgid" >"$PARAM_PIDFILE"
sleep "$PARAM_SECONDS"
echo "slept $PARAM_SECONDS"
"""


class ServiceShutdownTest(ServiceTestCase):

    @classmethod
    def setUpData(cls):
        write_pack(cls.packs_dir, "down")
        write_action_file(cls.packs_dir, "down", "sleeper.sh", SLEEPER_SH)
        cls.pack_id = cls.db.insert_pack("down")
        cls.db.insert_action(cls.pack_id, "down", "sleeper", "sleeper.sh",
                             params={"seconds": {"type": "integer"},
                                     "pidfile": {"type": "string"}},
                             required=["seconds", "pidfile"])

    def start_sleeper(self, w, seconds):
        """Dispatches a sleeper to w; returns (execution id, action pid, its process
        group) once it runs."""
        pidfile = os.path.join(self.tmp, "pid-%s" % uuid.uuid4().hex[:8])
        self.kill_group_later(pidfile)
        params = {"seconds": seconds, "pidfile": pidfile}
        eid = self.db.insert_execution("down.sleeper", params)
        self.broker.dispatch(w.id, eid, "down.sleeper", params)
        self.wait_status(eid, "running", worker=w)
        self.assertTrue(wait_until_value(lambda: os.path.exists(pidfile) and
                                         os.path.getsize(pidfile) > 0, 10 * SLOW),
                        "the action did not start\n" + w.describe())
        with open(pidfile) as f:
            pid, pgid = (int(x) for x in f.read().split())
        self.assertNotEqual(pgid, os.getpgid(w.pid), "the action is not in its own group")
        return eid, pid, pgid

    def test_running_execution_finishes_before_exit(self):
        w = self.start_worker()
        eid, pid, pgid = self.start_sleeper(w, 3)
        sent = time.monotonic()
        w.signal(signal.SIGTERM)
        self.assertTrue(w.wait_log(r"stopping: waiting up to 30 s for 1 running", 5 * SLOW),
                        w.describe())
        # Work that arrives now is not started; it stays queued for the next run.
        late = self.db.insert_execution("down.sleeper", {"seconds": 0, "pidfile": "/dev/null"})
        self.broker.dispatch(w.id, late, "down.sleeper",
                             {"seconds": 0, "pidfile": "/dev/null"})
        rc = w.wait(20 * SLOW)
        elapsed = time.monotonic() - sent
        if rc is None:
            w.kill()
            self.fail("worker still running 20 s after SIGTERM\n" + w.describe())
        self.assertEqual(rc, 0, w.describe())
        self.assertGreaterEqual(elapsed, 1.5, "exited before the action could finish")
        row = self.db.execution(eid)
        self.assertEqual(row["status"], "completed", "%r\n%s" % (row, w.describe()))
        self.assertEqual(row["result"]["stdout"], "slept 3\n")
        self.assertEqual(self.db.worker(w.id)["status"], "inactive")
        self.assertEqual(self.db.execution(late)["status"], "scheduled")
        self.assertEqual(self.broker.queue_state(worker_queue(w.id)), (1, 0),
                         "the request sent while stopping is not back in the queue")
        self.assertTrue(pid_gone(pid))
        self.assertEqual(live_members_of_group(pgid), [])

    def test_shutdown_timeout_cancels_what_still_runs(self):
        w = self.start_worker(env={"ATTUNE__WORKER__SHUTDOWN_TIMEOUT": "1"})
        eid, pid, pgid = self.start_sleeper(w, 30)
        sent = time.monotonic()
        w.signal(signal.SIGTERM)
        rc = w.wait(15 * SLOW)
        elapsed = time.monotonic() - sent
        if rc is None:
            w.kill()
            self.fail("worker still running 15 s after SIGTERM with shutdown_timeout 1\n" +
                      w.describe())
        self.assertEqual(rc, 0, w.describe())
        self.assertLess(elapsed, 8 * SLOW, "took %.1f s to stop" % elapsed)
        row = self.db.execution(eid)
        self.assertEqual(row["status"], "cancelled", "%r\n%s" % (row, w.describe()))
        self.assertIs(row["result"]["succeeded"], False)
        self.assertIs(row["result"]["cancelled"], True)
        self.assertEqual(row["result"]["error"], "Execution cancelled by user")
        self.assertNotIn("slept", row["result"].get("stdout", ""))
        self.assertEqual(self.db.worker(w.id)["status"], "inactive")
        self.assertTrue(wait_until_value(lambda: pid_gone(pid) and
                                         not live_members_of_group(pgid), 5),
                        "the action's processes outlived the cancellation")

    def test_second_signal_stops_at_once(self):
        w = self.start_worker()
        eid, pid, pgid = self.start_sleeper(w, 30)
        w.signal(signal.SIGTERM)
        self.assertTrue(w.wait_log(r"stopping: waiting up to", 5 * SLOW), w.describe())
        time.sleep(0.5)
        self.assertTrue(w.alive(), "exited while an execution ran and 29 s of "
                        "shutdown_timeout were left\n" + w.describe())
        sent = time.monotonic()
        w.signal(signal.SIGINT)
        rc = w.wait(5 * SLOW)
        elapsed = time.monotonic() - sent
        if rc is None:
            w.kill()
            self.fail("worker still running 5 s after a second signal\n" + w.describe())
        self.assertEqual(rc, 0, w.describe())
        self.assertLess(elapsed, 2 * SLOW, "took %.1f s to stop" % elapsed)
        self.assertTrue(wait_until_value(lambda: pid_gone(pid) and
                                         not live_members_of_group(pgid), 5),
                        "the action's processes outlived the worker")
        # Whatever it left running is recorded as abandoned by the next start
        # (its UPDATE is sent at registration; "ready" does not wait for it).
        again = self.start_worker(w.name)
        self.assertEqual(again.id, w.id)
        self.assertTrue(wait_until_value(
            lambda: self.db.execution(eid)["status"] in ("abandoned", "cancelled"), 5 * SLOW),
            "%r\n%s" % (self.db.execution(eid), again.describe()))


if __name__ == "__main__":
    unittest.main()
