"""SIGTERM with running and queued executions (CONTRACT.md section 9): with
max_concurrent_tasks 2, two executions run and five wait in the worker's queue.
On SIGTERM the two running ones complete before the worker exits 0; the five
stay in the queue, their rows still scheduled, and a new worker of the same name
runs each of them once."""
import signal
import time
import unittest

from faults_support import (SLOW, FaultTestCase, live_in_groups, read_runs, status_counts,
                            wait_until_value, worker_queue)

RUNNING, QUEUED, SECONDS = 2, 5, 3


class SigtermTest(FaultTestCase):

    def test_running_finish_queued_stay_for_the_next_worker(self):
        env = {"ATTUNE__WORKER__MAX_CONCURRENT_TASKS": str(RUNNING)}
        w = self.start_worker(env=env)
        execs = self.new_recordings(RUNNING + QUEUED, SECONDS)
        ids = [e for e, _ in execs]
        self.dispatch_all(w.id, execs)

        # Two run; give the worker time to (wrongly) take more before looking.
        self.assertTrue(wait_until_value(
            lambda: self.db.count_status(ids, ["running"]) >= RUNNING, 10 * SLOW),
            "%d executions never ran\n%s" % (RUNNING, w.describe()))
        time.sleep(0.5)
        statuses = self.db.statuses(ids)
        running = sorted(i for i, s in statuses.items() if s == "running")
        self.assertEqual(status_counts(statuses), {"running": RUNNING, "scheduled": QUEUED},
                         "with max_concurrent_tasks %d, more than %d executions were taken at "
                         "once (rows: %r, run log: %r)\n%s" % (
                             RUNNING, RUNNING, statuses, read_runs(self.runlog), w.describe()))
        # (A worker at capacity may or may not keep its consumer: only count.)
        self.assertEqual(self.broker.queue_state(worker_queue(w.id))[0], QUEUED,
                         "the queued requests are not waiting in the queue")

        sent = time.monotonic()
        w.signal(signal.SIGTERM)
        rc = w.wait(30 * SLOW)
        elapsed = time.monotonic() - sent
        if rc is None:
            w.kill()
            self.fail("worker still running 30 s after SIGTERM\n" + w.describe())
        self.assertEqual(rc, 0, "exit status after SIGTERM\n" + w.describe())

        statuses = self.db.statuses(ids)
        self.assertEqual({i: statuses[i] for i in running}, {i: "completed" for i in running},
                         "the running executions did not complete before exit\n" +
                         w.describe())
        queued = [i for i in ids if i not in running]
        self.assertEqual({i: statuses[i] for i in queued}, {i: "scheduled" for i in queued},
                         "queued executions were touched\n" + w.describe())
        self.assertEqual(self.broker.queue_state(worker_queue(w.id)), (QUEUED, 0),
                         "the queued requests are not all back in the queue\n" + w.describe())
        self.assertEqual(self.db.worker(w.id)["status"], "inactive")
        self.assertGreater(elapsed, 0.5, "exited before the running actions could finish")
        pgids = {pgid for _, _, pgid in read_runs(self.runlog)}
        self.assertEqual(live_in_groups(pgids), {}, "action processes left after exit")

        # A new worker under the same name takes the queue over.
        w2 = self.start_worker_again(w.name, env=env)
        self.assertEqual(w2.id, w.id)
        statuses = self.wait_all_final(ids, 60 * SLOW, w2)
        self.assertEqual(status_counts(statuses), {"completed": RUNNING + QUEUED}, w2.describe())
        self.assert_ran_once(ids)
        self.assertEqual({r["worker"] for r in self.db.rows(
            "SELECT worker FROM attune.execution WHERE id = ANY(%s)", (queued,))}, {w.id})
        self.assertEqual(self.broker.queue_state(worker_queue(w.id)), (0, 1))
        self.stop_worker(w2)


if __name__ == "__main__":
    unittest.main()
