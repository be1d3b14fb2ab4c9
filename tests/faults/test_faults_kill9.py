"""kill -9 of the worker while 50 executions run: the guardian kills every
action's process group at once (nothing left within 3 s), and after a restart
under the same name every one of the 50 is final (abandoned, with its
execution.completed message), none ran twice, and the worker takes work again."""
import os
import signal
import time
import unittest

from faults_support import (SLOW, FaultTestCase, live_in_groups, read_runs, run_counts,
                            status_counts, wait_until_value, worker_queue)

COUNT = 50


class Kill9Test(FaultTestCase):

    def test_kill9_with_50_running(self):
        # No spare processes: the guardian would kill their groups too, and how
        # many are idle at the kill depends on how far the refill got.
        env = {"ATTUNE__WORKER__MAX_CONCURRENT_TASKS": str(COUNT),
               "ATTUNE__WORKER__SPARE_PROCESSES": "0"}
        w = self.start_worker(env=env)
        completions = self.collector()
        execs = self.new_recordings(COUNT, 30)
        ids = [e for e, _ in execs]
        self.dispatch_all(w.id, execs)

        def all_running():
            return (self.db.count_status(ids, ["running"]) == COUNT and
                    len(run_counts(self.runlog)) == COUNT)
        self.assertTrue(wait_until_value(all_running, 30 * SLOW),
                        "not all %d running: rows %r, %d in the run log\n%s" % (
                            COUNT, status_counts(self.db.statuses(ids)),
                            len(run_counts(self.runlog)), w.describe()))
        runs = read_runs(self.runlog)
        pgids = {pgid for _, _, pgid in runs}
        self.assertEqual(len(pgids), COUNT, "each action has its own process group")
        self.assertEqual(set(live_in_groups(pgids)), pgids, "the actions are not all alive")
        # attune-worker execs the service: this pid is the service itself.
        self.assertEqual(os.path.basename(os.readlink("/proc/%d/exe" % w.pid)),
                         "attune-worker-service")

        os.kill(w.pid, signal.SIGKILL)
        killed = time.monotonic()
        self.assertEqual(w.wait(10), -signal.SIGKILL)
        left = {}
        while time.monotonic() - killed < 3:
            left = live_in_groups(pgids)
            if not left:
                break
            time.sleep(0.05)
        self.assertEqual(left, {}, "action processes alive 3 s after kill -9 of the worker "
                         "(pgid: pids)\n" + w.log_tail())
        self.assertTrue(w.wait_log(r"guardian: the worker died; killed %d action process "
                                   r"groups" % COUNT, 2), w.log_tail())
        self.assertEqual(status_counts(self.db.statuses(ids)), {"running": COUNT})

        w2 = self.start_worker_again(w.name, env=env)
        self.assertEqual(w2.id, w.id)
        statuses = self.wait_all_final(ids, 20 * SLOW, w2)
        self.assertEqual(status_counts(statuses), {"abandoned": COUNT}, w2.describe())
        self.assertTrue(w2.wait_log(r"%d executions left running by an earlier run" % COUNT, 5),
                        w2.describe())
        for row in self.db.rows("SELECT result FROM attune.execution WHERE id = ANY(%s)",
                                (ids,)):
            self.assertIs(row["result"]["succeeded"], False, row)
            self.assertIn("worker", row["result"]["error"])
        missing = completions.wait_ids(ids, 20 * SLOW)
        self.assertEqual(sorted(missing), [], "no execution.completed for these")
        self.assertEqual({s for i in ids for s in completions.by_id[i]}, {"Abandoned"})

        # Nothing ran twice, nothing is left over in the queue, nothing runs now.
        time.sleep(1)
        self.assert_ran_once(ids)
        self.assertEqual(self.broker.queue_state(worker_queue(w.id)), (0, 1))
        self.assertEqual(live_in_groups(pgids), {})

        # And the restarted worker runs new work.
        more = self.new_recordings(1, 0)
        self.dispatch_all(w2.id, more)
        row = self.wait_final(more[0][0], 20 * SLOW, w2)
        self.assertEqual(row["status"], "completed", w2.describe())
        self.assert_ran_once(ids + [more[0][0]])
        self.stop_worker(w2)


if __name__ == "__main__":
    unittest.main()
