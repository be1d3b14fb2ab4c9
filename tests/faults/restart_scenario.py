"""The run shared by the broker and database restart tests: 1,000 short
executions with max_concurrent_tasks 10; once about 200 have completed, one of
the servers is stopped and started again. Afterwards every execution is
completed, each ran exactly once, and each one's execution.completed message
reached a durable consumer queue declared before anything was published."""
import time

from faults_support import (SLOW, FaultTestCase, enforce_consumer_timeout, live_in_groups,
                            log_lines, read_runs, services, status_counts, worker_queue)

COUNT = 1000
RESTART_AFTER = 200
ACTION_SECONDS = 0.05


class RestartScenario(FaultTestCase):
    """Subclasses set `restart` (the scripts/services command) and `fresh_broker_after`."""

    restart = None
    fresh_broker_after = False
    worker_settings = {}  # more of the worker's environment

    def run_scenario(self):
        w = self.start_worker(env=dict(self.worker_settings,
                                       ATTUNE__WORKER__MAX_CONCURRENT_TASKS="10"))
        self.worker = w
        completions = self.collector()
        t0 = time.monotonic()
        execs = self.new_recordings(COUNT, ACTION_SECONDS)
        ids = [e for e, _ in execs]
        t1 = time.monotonic()
        self.dispatch_all(w.id, execs)
        published = time.monotonic()
        print("\ninsert %.1f s, dispatch %.1f s" % (t1 - t0, published - t1))

        # Wait for ~200 completions, then restart the server while the rest run.
        deadline = time.monotonic() + 120 * SLOW
        while self.db.count_status(ids, ["completed"]) < RESTART_AFTER:
            self.assertLess(time.monotonic(), deadline, "no progress\n" + w.describe())
            completions.pump(0.05)
        at_restart = self.db.statuses(ids)
        final_at_restart = sum(1 for s in at_restart.values() if s != "scheduled" and
                               s != "running")
        began = time.monotonic()
        to_restart = began - published
        services(self.restart)
        restart_seconds = time.monotonic() - began
        if self.fresh_broker_after:
            self.fresh_broker()
            enforce_consumer_timeout()
        self.assertLess(final_at_restart, COUNT - 100,
                        "the run was nearly over before the restart: the test proves nothing")

        statuses = self.wait_all_final_pumping(ids, 300, completions, w)
        finished = time.monotonic() - began
        self.assertEqual(status_counts(statuses), {"completed": COUNT},
                         "not all completed after the %s\n%s" % (self.restart, w.describe()))
        self.assert_ran_once(ids)
        missing = completions.wait_ids(ids, 60 * SLOW)
        self.assertEqual(len(missing), 0,
                         "%d execution.completed messages never arrived (e.g. %r)\n%s" % (
                             len(missing), sorted(missing)[:5], w.describe()))
        wrong = {i: s for i, s in completions.by_id.items() if i in statuses and
                 set(s) != {"Completed"}}
        self.assertEqual(wrong, {}, "execution.completed with another status")

        self.assertTrue(w.alive(), w.describe())
        # The reasons logged for the lost connection are text, not freed memory.
        lost = [l for l in w.log().splitlines() if "connection lost" in l]
        self.assertTrue(lost, "the worker did not notice the restart\n" + w.describe())
        garbled = [l for l in lost if not l.isprintable() or "\ufffd" in l]
        self.assertEqual(garbled, [], "garbled log lines")
        pgids = {pgid for _, _, pgid in read_runs(self.runlog)}
        self.assertEqual(live_in_groups(pgids), {}, "action processes left")
        # Still consuming: one more runs.
        more = self.new_recordings(1, 0)
        self.dispatch_all(w.id, more)
        row = self.wait_final(more[0][0], 60 * SLOW, w)
        self.assertEqual(row["status"], "completed", w.describe())
        self.assertEqual(self.broker.queue_state(worker_queue(w.id)), (0, 1))
        self.stop_worker(w)
        self.report = ("%.1f s to the restart (statuses then: %r); "
                       "%s took %.1f s with %d of %d final at the restart; all final %.1f s "
                       "after it began; %d completion messages (%d duplicates); collector "
                       "reconnects %d\nworker log on the fault:\n%s" % (
                           to_restart, status_counts(at_restart), self.restart, restart_seconds, final_at_restart, COUNT, finished,
                           completions.received, completions.received - COUNT,
                           completions.reconnects,
                           log_lines(w, r"lost|restored|backlog|returned to the queue|warn")))
        print("\n" + self.report)
