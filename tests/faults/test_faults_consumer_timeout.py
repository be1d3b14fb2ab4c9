"""An action that runs past the broker's consumer timeout (consumer_timeout
10 s on the fault tests' broker, checked every second: see
faults_support.enforce_consumer_timeout) completes normally, the worker's channel is
never closed for a late acknowledgement, and the worker keeps consuming: a
request queued behind the long one (max_concurrent_tasks 1) and one sent
afterwards both run once."""
import re
import time
import unittest

from faults_support import (SLOW, FaultTestCase, broker_log, run_counts, status_counts,
                            worker_queue)

LONG_SECONDS = 15
TIMEOUT_RE = re.compile(r"timed out waiting for delivery acknowledgement|"
                        r"delivery acknowledgement on channel \d+ timed out")


class ConsumerTimeoutTest(FaultTestCase):

    def test_action_longer_than_consumer_timeout(self):
        log_before = len(TIMEOUT_RE.findall(broker_log()))
        w = self.start_worker(env={"ATTUNE__WORKER__MAX_CONCURRENT_TASKS": "1"})
        completions = self.collector()
        long_one, behind = self.new_recordings(1, LONG_SECONDS) + self.new_recordings(1, 0)
        ids = [long_one[0], behind[0]]
        self.dispatch_all(w.id, [long_one])
        self.wait_status(long_one[0], "running", worker=w)
        self.dispatch_all(w.id, [behind])
        started = time.monotonic()

        row = self.wait_final(long_one[0], (LONG_SECONDS + 30) * SLOW, w)
        took = time.monotonic() - started
        self.assertEqual(row["status"], "completed", "%r\n%s" % (row, w.describe()))
        self.assertEqual(row["result"]["stdout"], "done %d\n" % long_one[0])
        self.assertGreaterEqual(took, LONG_SECONDS - 2)
        self.assertGreaterEqual(row["result"]["duration_ms"], LONG_SECONDS * 1000)
        self.wait_all_final(ids, 30 * SLOW, w)

        # A request sent afterwards runs on the same worker process.
        after = self.new_recordings(1, 0)
        self.dispatch_all(w.id, after)
        ids.append(after[0][0])
        statuses = self.wait_all_final(ids, 30 * SLOW, w)
        self.assertEqual(status_counts(statuses), {"completed": 3}, w.describe())
        self.assert_ran_once(ids)
        self.assertTrue(w.alive(), w.describe())
        self.assertEqual(completions.wait_ids(ids, 20 * SLOW), set())

        closures = TIMEOUT_RE.findall(broker_log())[log_before:]
        self.assertEqual(closures, [], "the broker closed a channel for a late "
                         "acknowledgement\n" + w.describe())
        self.assertNotRegex(w.log(), r"broker connection lost",
                            "the worker lost its broker connection\n" + w.describe())
        self.assertEqual(self.broker.queue_state(worker_queue(w.id)), (0, 1))
        self.assertEqual(set(run_counts(self.runlog)), set(ids))
        self.stop_worker(w)


if __name__ == "__main__":
    unittest.main()
