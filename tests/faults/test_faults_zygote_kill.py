"""SIGKILL of the python fork server (the zygote) in the middle of a burst of 30
python executions loses none of them: each ends completed (forked before the
kill, forked by the next zygote or started cold while none was ready) or, if
one was caught in the fork itself, failed with an error that says why; the
worker logs the death, starts another zygote, and that one serves later
executions."""
import os
import signal
import unittest

from faults_support import SLOW, FaultTestCase, wait_until_value, write_action_file
from support import zygotes_of

BURST = 30

PROBE_PY = '''import sys
import time

# Preloaded by the zygote (runtimes.python.preload), absent from a cold start.
FORKED = "colorsys" in sys.modules


def run(n, **keys):
    time.sleep(0.1)
    return {"n": n, "forked": FORKED}
'''


class ZygoteKillTest(FaultTestCase):

    @classmethod
    def setUpData(cls):
        super().setUpData()
        write_action_file(cls.packs_dir, "flt", "probe.py", PROBE_PY, 0o644)
        cls.probe = cls.db.insert_action(cls.pack_id, "flt", "probe", "probe.py",
                                         params={"n": {"type": "integer"}}, required=["n"])

    def dispatch(self, w, n):
        eid = self.db.insert_execution("flt.probe", {"n": n}, action_id=self.probe)
        self.broker.dispatch(w.id, eid, "flt.probe", {"n": n})
        return eid

    def completed_count(self, ids):
        return sum(1 for s in self.db.statuses(ids).values() if s == "completed")

    def test_kill_of_the_zygote_during_a_burst_loses_nothing(self):
        w = self.start_worker(env={"ATTUNE__RUNTIMES__PYTHON__PRELOAD": "colorsys",
                                   "ATTUNE__RUNTIMES__PYTHON__FORK_SERVER": "true"})
        self.assertTrue(w.wait_log(r"python fork server ready", 10 * SLOW), w.describe())
        first = zygotes_of(w.pid)
        self.assertEqual(len(first), 1, w.describe())
        ids = [self.dispatch(w, n) for n in range(BURST)]
        self.assertTrue(wait_until_value(lambda: self.completed_count(ids) >= 3, 30 * SLOW),
                        "the burst did not start\n" + w.describe())
        os.kill(first[0], signal.SIGKILL)
        killed_at = self.completed_count(ids)
        statuses = self.wait_all_final(ids, 60 * SLOW, worker=w)
        self.assertLess(killed_at, BURST, "the kill came after the burst: it tests nothing")

        forked = 0
        for eid in ids:
            row = self.db.execution(eid)
            result = row["result"] or {}
            if statuses[eid] == "completed":
                forked += bool((result.get("data") or {}).get("forked"))
                continue
            self.assertEqual(statuses[eid], "failed", "%d: %r\n%s" % (eid, row, w.describe()))
            self.assertTrue(result.get("error"), "%d failed without an error: %r" % (eid, row))
        self.assertGreater(forked, 0, "no execution was forked\n" + w.describe())
        # Seen by its exit, or first by a request on its closed socket.
        self.assertRegex(w.log(), r"python fork server \(pid %d\) (was killed by signal 9|"
                                  r"closed its socket)" % first[0])

        self.assertTrue(w.wait_log(r"python fork server ready", 10 * SLOW, count=2),
                        "no new zygote\n" + w.describe())
        second = zygotes_of(w.pid)
        self.assertEqual(len(second), 1, w.describe())
        self.assertNotEqual(second, first)
        eid = self.dispatch(w, BURST)
        row = self.wait_final(eid, worker=w)
        self.assertEqual(row["status"], "completed", "%r\n%s" % (row, w.describe()))
        self.assertTrue(row["result"]["data"]["forked"], "the new zygote did not serve it")


if __name__ == "__main__":
    unittest.main()
