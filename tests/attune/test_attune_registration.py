"""The worker as Attune's scheduler and broker see it: its worker row after
registration and while it heartbeats, also with every slot taken (ATTUNE-TODAY
3.3, 3.4, 8), its queue and the shared exchanges redeclared with upstream's
exact arguments (1.1, 1.2), and its row after SIGTERM (8)."""
import os
import signal
import time
import unittest
import uuid

from attune_support import (DLX, DLX_QUEUE, EXCHANGES, RUNTIMES, SLOW, WORKER_QUEUE_ARGUMENTS,
                            AttuneTestCase, declare_upstream_topology, normalize_runtime_name,
                            worker_queue)

# The executor's content-health query for action hosts (repositories/health.rs,
# 3.4), with $1 = 90 s.
HEALTH_SQL = """
SELECT id FROM attune.worker
 WHERE worker_role = 'action' AND status IN ('active', 'busy') AND NOT cordoned
   AND last_heartbeat > clock_timestamp() - make_interval(secs => 90)
   AND jsonb_typeof(capabilities->'runtimes') = 'array'
   AND jsonb_array_length(capabilities->'runtimes') > 0
"""


class RegistrationTest(AttuneTestCase):
    class_worker = False
    heartbeat_interval = 1

    @classmethod
    def setUpData(cls):
        cls.add_action("python_gate", "report.py", "python")

    def test_registers_as_an_action_worker_the_scheduler_picks(self):
        w = self.start_worker()
        row = self.db.worker_row(w.name)
        self.assertEqual(row["worker_role"], "action", row)
        self.assertEqual(row["status"], "active", row)
        self.assertEqual(row["worker_type"], "local", row)
        self.assertIs(row["cordoned"], False, row)
        self.assertIsNotNone(row["last_heartbeat"], row)
        self.assertLessEqual(row["heartbeat_age"].total_seconds(), 90, row)

        caps = row["capabilities"]
        self.assertIsInstance(caps, dict, row)
        runtimes = caps.get("runtimes")
        self.assertIsInstance(runtimes, list, caps)
        self.assertTrue(runtimes, caps)
        for name in runtimes:
            self.assertIsInstance(name, str, caps)
            self.assertEqual(name, name.lower(), "capabilities.runtimes must be lowercase: %r"
                             % runtimes)
        self.assertIn("native", runtimes, caps)
        # The versions the executor matches a runtime_version constraint
        # against (3.3): {runtime: [version, ...]}, for runtimes it advertises.
        versions = caps.get("runtime_versions")
        self.assertIsInstance(versions, dict, caps)
        self.assertRegex((versions.get("python") or [""])[0], r"^3\.[0-9]+\.[0-9]+$", caps)
        for name, listed in versions.items():
            self.assertIn(name, runtimes, caps)
            self.assertTrue(listed and all(isinstance(v, str) for v in listed), caps)
        advertised = {normalize_runtime_name(n) for n in runtimes}
        for key, spec in RUNTIMES.items():
            self.assertIn(normalize_runtime_name(spec["name"]), advertised,
                          "runtime %s (a row of the runtime table) is not in "
                          "capabilities.runtimes %r" % (spec["name"], runtimes))
            self.assertEqual(self.choose_worker(key, w), w.id)

        healthy = [r["id"] for r in self.db.rows(HEALTH_SQL)]
        self.assertIn(w.id, healthy, "the executor's health query does not see the worker")

    def test_heartbeat_keeps_the_row_fresh_and_active(self):
        w = self.start_worker()

        def heartbeat():
            return self.db.worker_row(w.name)["last_heartbeat"]

        first = heartbeat()
        for _ in range(2):
            deadline = time.monotonic() + 10 * SLOW
            while heartbeat() <= first and time.monotonic() < deadline:
                time.sleep(0.1)
            later = heartbeat()
            self.assertGreater(later, first, "no heartbeat within 10 s at a 1 s interval\n"
                               + w.describe())
            first = later

        # The executor's monitor marks a worker it finds stale inactive; the
        # next heartbeat makes it active again (heartbeat.rs: status='active').
        self.db.execute("UPDATE attune.worker SET status = 'inactive' WHERE id = %s", (w.id,))
        marked = heartbeat()
        deadline = time.monotonic() + 10 * SLOW
        row = self.db.worker_row(w.name)
        while (row["status"] != "active" or row["last_heartbeat"] <= marked) \
                and time.monotonic() < deadline:
            time.sleep(0.1)
            row = self.db.worker_row(w.name)
        self.assertEqual(row["status"], "active", "a heartbeat did not restore 'active'\n"
                         + w.describe())
        self.assertLessEqual(row["heartbeat_age"].total_seconds(), 90, row)

    def test_heartbeat_stays_active_with_every_slot_taken(self):
        # 3.4 and 8: a full worker still queues what it is sent, and the
        # scheduler only picks `active` ones, so it must never turn `busy`.
        w = self.start_worker({"ATTUNE__WORKER__MAX_CONCURRENT_TASKS": "1"})
        tag = uuid.uuid4().hex[:8]
        started = os.path.join(self.tmp, "%s-started" % tag)
        gate = os.path.join(self.tmp, "%s-gate" % tag)
        config = {"started_file": started, "gate_file": gate}
        listener = self.event_listener()
        eid = self.create_execution("python_gate", config, worker=w)
        self.dispatch(eid, config, worker=w)
        deadline = time.monotonic() + 20 * SLOW
        while not os.path.exists(started) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertTrue(os.path.exists(started), "the action did not start\n" + w.describe())

        beats, statuses = [self.db.worker_row(w.name)["last_heartbeat"]], set()
        deadline = time.monotonic() + 10 * SLOW
        while len(beats) < 3 and time.monotonic() < deadline:
            row = self.db.worker_row(w.name)
            statuses.add(row["status"])
            if row["last_heartbeat"] > beats[-1]:
                beats.append(row["last_heartbeat"])
            time.sleep(0.1)
        self.assertEqual(len(beats), 3, "no two heartbeats while full\n" + w.describe())
        self.assertEqual(statuses, {"active"}, "the full worker left `active`")
        self.assertEqual(self.db.execution(eid)["status"], "running")
        self.assertIn(w.id, [r["id"] for r in self.db.select_worker("python")],
                      "the scheduler would not pick the full worker")
        self.assertIn(w.id, [r["id"] for r in self.db.rows(HEALTH_SQL)])

        with open(gate, "w"):
            pass
        run = self.wait_run(eid, listener, worker=w)
        self.assertEqual(run.status, "completed", run.describe() + "\n" + w.describe())

    def test_queue_and_exchanges_match_upstream_arguments(self):
        w = self.start_worker()
        queue = worker_queue(w.id)

        def upstream_queue(ch):
            ch.queue_declare(queue, durable=True, exclusive=False, auto_delete=False,
                             arguments=WORKER_QUEUE_ARGUMENTS)
        self.assertIsNone(self.executor.redeclare(upstream_queue),
                          "%s was not declared with Attune's arguments %r"
                          % (queue, WORKER_QUEUE_ARGUMENTS))

        # The same redeclaration without the arguments must be refused: the
        # queue really carries them (the broker compares them).
        def bare_queue(ch):
            ch.queue_declare(queue, durable=True, exclusive=False, auto_delete=False)
        self.assertIsNotNone(self.executor.redeclare(bare_queue),
                             "%s carries no arguments" % queue)

        # Everything the worker declared of the shared topology agrees with
        # what Attune's services declare.
        self.assertIsNone(self.executor.redeclare(declare_upstream_topology))
        for name, kind in EXCHANGES:
            def passive(ch, name=name):
                ch.exchange_declare(exchange=name, passive=True)
            self.assertIsNone(self.executor.redeclare(passive), name)
        state = self.executor.queue_state(DLX_QUEUE)
        self.assertIsNotNone(state, "%s (bound to %s) is gone" % (DLX_QUEUE, DLX))
        messages, consumers = self.executor.queue_state(queue)
        self.assertGreaterEqual(consumers, 1, "nobody consumes %s" % queue)


class ShutdownTest(AttuneTestCase):
    class_worker = False

    def test_sigterm_leaves_the_worker_row_inactive(self):
        w = self.start_worker()
        self.assertEqual(self.db.worker_row(w.name)["status"], "active")
        w.signal(signal.SIGTERM)
        rc = w.wait(20 * SLOW)
        if rc is None:
            w.kill()
            self.fail("worker did not exit within %ss of SIGTERM\n%s" % (20 * SLOW, w.describe()))
        self.assertEqual(rc, 0, w.describe())
        row = self.db.worker_row(w.name)
        self.assertEqual(row["status"], "inactive", row)
        # Durable queues stay for the next start (8).
        self.assertIsNotNone(self.executor.queue_state(worker_queue(w.id)),
                             "the worker deleted its durable queue on shutdown")


if __name__ == "__main__":
    unittest.main()
