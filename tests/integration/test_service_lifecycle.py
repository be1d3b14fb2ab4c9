"""The worker's life in the database and on the broker: registration and
heartbeat, deregistration on SIGTERM, requests that wait in the durable queue of
a stopped worker for its restart, and executions left running by an earlier run
marked abandoned."""
import os
import socket
import time
import unittest
import uuid

from service_support import (SLOW, ServiceTestCase, wait_until_value, worker_queue,
                             write_action_file, write_pack)

NOOP_SH = """#!/bin/bash
echo "noop $PARAM_N"
"""

# Holds its slot until the file named by the gate parameter exists.
WAIT_SH = """#!/bin/bash
for _ in $(seq 1 600); do [ -e "$PARAM_GATE" ] && break; sleep 0.05; done
echo waited
"""


class ServiceLifecycleTest(ServiceTestCase):

    @classmethod
    def setUpData(cls):
        write_pack(cls.packs_dir, "life")
        write_action_file(cls.packs_dir, "life", "noop.sh", NOOP_SH)
        cls.pack_id = cls.db.insert_pack("life")
        cls.noop_id = cls.db.insert_action(cls.pack_id, "life", "noop", "noop.sh",
                                           params={"n": {"type": "integer"}})
        write_action_file(cls.packs_dir, "life", "wait.sh", WAIT_SH)
        cls.db.insert_action(cls.pack_id, "life", "wait", "wait.sh",
                             params={"gate": {"type": "string"}}, required=["gate"])

    def unique_name(self, what):
        return "w-%s-%s" % (what, uuid.uuid4().hex[:8])

    # 8 -----------------------------------------------------------------------

    def test_registration_heartbeat_and_deregistration(self):
        w = self.start_worker(env={"ATTUNE__WORKER__HEARTBEAT_INTERVAL": "1",
                                   "ATTUNE__WORKER__MAX_CONCURRENT_TASKS": "7"})
        row = self.db.worker(w.id)
        self.assertEqual(row["name"], w.name)
        self.assertEqual(row["status"], "active")
        self.assertEqual(row["worker_type"], "local")
        self.assertEqual(row["host"], socket.gethostname())
        caps = row["capabilities"]
        self.assertEqual(caps.get("max_concurrent_executions"), 7, caps)
        self.assertIsInstance(caps.get("worker_version"), str, caps)
        self.assertTrue(caps["worker_version"], caps)
        self.assertIsInstance(caps.get("runtimes"), list, caps)
        self.assertTrue(set(caps["runtimes"]) >= {"shell", "python", "native"}, caps)
        self.assertTrue(set(caps["runtimes"]) <= {"shell", "python", "node", "node.js", "native"},
                        caps)
        self.assertRegex(caps["runtime_versions"]["python"][0], r"^3\.[0-9]+\.[0-9]+$", caps)
        self.assertEqual(caps.get("host"), socket.gethostname(), caps)
        self.assertEqual(caps.get("pid"), w.pid, caps)
        self.assertIsNotNone(row["last_heartbeat"])

        beats = [row["last_heartbeat"]]

        def advanced():
            hb = self.db.worker(w.id)["last_heartbeat"]
            if hb > beats[-1]:
                beats.append(hb)
            return len(beats) >= 3
        self.assertTrue(wait_until_value(advanced, 5 * SLOW, 0.1),
                        "last_heartbeat did not advance twice in %ss: %r\n%s" % (
                            5 * SLOW, beats, w.describe()))
        self.assertEqual(self.db.worker(w.id)["status"], "active")

        self.stop_worker(w)
        row = self.db.worker(w.id)
        self.assertEqual(row["status"], "inactive")
        self.assertGreaterEqual(row["last_heartbeat"], beats[-1])

    def test_heartbeat_stays_active_with_every_slot_taken(self):
        # Attune's scheduler only sends work to active workers; a full one
        # still queues what it gets, so it must not turn itself `busy`.
        w = self.start_worker(env={"ATTUNE__WORKER__HEARTBEAT_INTERVAL": "1",
                                   "ATTUNE__WORKER__MAX_CONCURRENT_TASKS": "1"})
        gate = os.path.join(self.tmp, "gate-" + uuid.uuid4().hex[:8])
        eid = self.db.insert_execution("life.wait", {"gate": gate})
        self.broker.dispatch(w.id, eid, "life.wait", {"gate": gate})
        self.wait_status(eid, "running", worker=w)
        beats = [self.db.worker(w.id)["last_heartbeat"]]
        statuses = set()

        def beat_twice():
            row = self.db.worker(w.id)
            statuses.add(row["status"])
            if row["last_heartbeat"] > beats[-1]:
                beats.append(row["last_heartbeat"])
            return len(beats) >= 3
        self.assertTrue(wait_until_value(beat_twice, 5 * SLOW, 0.1),
                        "no heartbeats while full\n" + w.describe())
        self.assertEqual(self.db.execution(eid)["status"], "running")
        self.assertEqual(statuses, {"active"})
        with open(gate, "w"):
            pass
        self.assertEqual(self.wait_final(eid, worker=w)["status"], "completed")

    def test_default_heartbeat_does_not_beat_every_second(self):
        # The interval setting is what makes the row move (default 30 s).
        w = self.start_worker()
        first = self.db.worker(w.id)["last_heartbeat"]
        time.sleep(2.5)
        self.assertEqual(self.db.worker(w.id)["last_heartbeat"], first)

    def test_same_name_keeps_its_id(self):
        name = self.unique_name("same")
        w = self.start_worker(name)
        first = w.id
        self.stop_worker(w)
        w = self.start_worker(name)
        self.assertEqual(w.id, first)
        self.assertEqual(self.db.worker(first)["status"], "active")
        self.assertEqual(self.db.value("SELECT count(*) FROM attune.worker WHERE name = %s",
                                       (name,)), 1)

    # 4 -----------------------------------------------------------------------

    def test_requests_wait_in_the_queue_of_a_stopped_worker(self):
        name = self.unique_name("queued")
        w = self.start_worker(name)
        wid = w.id
        self.stop_worker(w)
        self.assertEqual(self.db.worker(wid)["status"], "inactive")
        queue = worker_queue(wid)
        self.assertEqual(self.broker.queue_state(queue), (0, 0),
                         "the queue of a stopped worker should remain, empty and unconsumed")
        self.assertTrue(self.broker.queue_arguments_ok(queue),
                        "queue %s is not durable with x-dead-letter-exchange attune.dlx" % queue)

        ids = [self.db.insert_execution("life.noop", {"n": i}) for i in range(6)]
        for i, eid in enumerate(ids):
            # mandatory: raises if nothing is bound to take it
            self.broker.dispatch(wid, eid, "life.noop", {"n": i})
        self.assertEqual(self.broker.queue_state(queue), (len(ids), 0))
        time.sleep(0.5)
        self.assertEqual(set(self.db.statuses(ids).values()), {"scheduled"})

        again = self.start_worker(name)
        self.assertEqual(again.id, wid, "a restarted worker of the same name got a new id")
        statuses = self.wait_all_final(ids, 20 * SLOW, again)
        self.assertEqual(set(statuses.values()), {"completed"}, statuses)
        rows = self.db.rows("SELECT worker, result FROM attune.execution WHERE id = ANY(%s)",
                            (ids,))
        self.assertEqual({r["worker"] for r in rows}, {wid})
        self.assertEqual(sorted(r["result"]["stdout"] for r in rows),
                         ["noop %d\n" % i for i in range(len(ids))])
        self.assertTrue(wait_until_value(
            lambda: self.broker.queue_state(queue) == (0, 1), 5 * SLOW),
            "queue state %r" % (self.broker.queue_state(queue),))

    # 10 ----------------------------------------------------------------------

    def test_executions_left_running_are_abandoned_at_start(self):
        name = self.unique_name("stale")
        # The worker's row from an earlier run, and what that run left behind.
        wid = self.db.value("INSERT INTO attune.worker (name, worker_role, status, host) VALUES "
                            "(%s, 'action', 'active', 'elsewhere') RETURNING id", (name,))
        other = self.db.value("INSERT INTO attune.worker (name, worker_role, status) VALUES "
                              "(%s, 'action', 'active') RETURNING id", (self.unique_name("other"),))
        stale = [self.db.insert_execution("life.noop", {"n": i}, status="running", worker=wid)
                 for i in range(2)]
        self.db.execute("UPDATE attune.execution SET started_at = NOW() - interval '1 hour' "
                        "WHERE id = ANY(%s)", (stale,))
        done = self.db.insert_execution("life.noop", {"n": 9}, status="completed", worker=wid)
        elsewhere = self.db.insert_execution("life.noop", {"n": 8}, status="running",
                                             worker=other)
        waiting = self.db.insert_execution("life.noop", {"n": 7}, status="scheduled")

        events = self.event_listener()
        w = self.start_worker(name)
        self.assertTrue(events.wait_for(lambda _: all(events.completed(e) for e in stale),
                                        10 * SLOW), w.describe())
        for eid in stale:
            (_, _, changed), (_, _, completed) = events.events(eid)
            self.assertEqual((changed["payload"]["previous_status"],
                              changed["payload"]["new_status"]), ("running", "abandoned"))
            self.assertEqual(completed["payload"]["status"], "Abandoned")
            self.assertEqual(completed["payload"]["action_id"], self.noop_id)
        self.assertEqual(w.id, wid)
        for eid in stale:
            row = self.db.execution(eid)
            self.assertEqual(row["status"], "abandoned", "%r\n%s" % (row, w.describe()))
            self.assertIsInstance(row["result"], dict, row)
            self.assertIs(row["result"].get("succeeded"), False, row)
            self.assertTrue(row["result"].get("error"), row)
        self.assertEqual(self.db.execution(done)["status"], "completed")
        self.assertEqual(self.db.execution(elsewhere)["status"], "running",
                         "a row of another worker was touched")
        self.assertEqual(self.db.execution(waiting)["status"], "scheduled")
        self.assertTrue(w.wait_log(r"2 executions .*abandoned", 5 * SLOW), w.describe())


if __name__ == "__main__":
    unittest.main()
