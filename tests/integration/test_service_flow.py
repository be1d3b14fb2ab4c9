"""The service mode end to end on the real servers: a request published with pika
is run, recorded and reported (CONTRACT.md sections 2 and 3); two workers share a
broker; a duplicate request runs once; requests that cannot run fail or are
dead-lettered, each with a reason. Each test runs with spare processes (the
default) and without."""
import os
import re
import time
import unittest
import uuid

from service_support import (EXCHANGE, RESULT_KEYS, SLOW, SPARES_OFF, ServiceTestCase,
                             new_marker, request_envelope, take_from_dead_letter_queue,
                             worker_queue, write_action_file, write_pack)

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)

GATE_SH = """#!/bin/bash
# Runs until the file named by the gate parameter exists, so that the test can
# see the execution in the 'running' state; then reports as JSON.
for _ in $(seq 1 400); do [ -e "$PARAM_GATE" ] && break; sleep 0.05; done
seen=false
[ -e "$PARAM_GATE" ] && seen=true
echo "gate waited" >&2
printf '{"gate_seen": %s, "word": "%s"}\\n' "$seen" "$PARAM_WORD"
"""

NOOP_SH = """#!/bin/bash
echo "noop $PARAM_N"
"""

APPEND_SH = """#!/bin/bash
# One line per run, so that a test can count the runs.
echo "run of execution $ATTUNE_EXEC_ID" >>"$PARAM_FILE"
"""


class ServiceFlowTest(ServiceTestCase):

    @classmethod
    def setUpData(cls):
        write_pack(cls.packs_dir, "svc")
        write_action_file(cls.packs_dir, "svc", "gate.sh", GATE_SH)
        write_action_file(cls.packs_dir, "svc", "noop.sh", NOOP_SH)
        write_action_file(cls.packs_dir, "svc", "append.sh", APPEND_SH)
        cls.pack_id = cls.db.insert_pack("svc")
        cls.gate_id = cls.db.insert_action(
            cls.pack_id, "svc", "gate", "gate.sh", output="json",
            params={"gate": {"type": "string"}, "word": {"type": "string"}},
            required=["gate", "word"])
        cls.db.insert_action(cls.pack_id, "svc", "noop", "noop.sh",
                             params={"n": {"type": "integer"}})
        cls.db.insert_action(cls.pack_id, "svc", "append", "append.sh",
                             params={"file": {"type": "string"}}, required=["file"])
        # Registered, but its entry point is not on disk.
        cls.db.insert_action(cls.pack_id, "svc", "lost", "lost_entry.sh")

    def path(self, name):
        return os.path.join(self.tmp, "%s-%s" % (uuid.uuid4().hex[:8], name))

    # 1 -----------------------------------------------------------------------

    def test_published_request_runs_is_recorded_and_reported(self):
        w = self.start_worker()
        events = self.event_listener()
        gate = self.path("gate")
        params = {"gate": gate, "word": "hello"}
        eid = self.db.insert_execution("svc.gate", params)
        before = self.db.execution(eid)
        self.assertEqual((before["status"], before["worker"], before["started_at"]),
                         ("scheduled", None, None))

        trace_id = "trace-" + uuid.uuid4().hex
        request = self.broker.dispatch(w.id, eid, "svc.gate", params,
                                       trace_id=trace_id)

        running = self.wait_status(eid, "running", worker=w)
        self.assertEqual(running["worker"], w.id)
        self.assertIsNotNone(running["started_at"])
        self.assertIsNone(running["result"])
        with open(gate, "w"):
            pass
        row = self.wait_final(eid, worker=w)
        self.assertEqual(row["status"], "completed", "%r\n%s" % (row, w.describe()))
        self.assertEqual(row["worker"], w.id)
        self.assertEqual(row["started_at"], running["started_at"])

        result = row["result"]
        for key in RESULT_KEYS:
            self.assertIn(key, result, "result lacks %r: %r" % (key, result))
        self.assertIs(result["succeeded"], True)
        self.assertEqual(result["exit_code"], 0)
        self.assertIsInstance(result["duration_ms"], int)
        self.assertGreaterEqual(result["duration_ms"], 0)
        self.assertEqual(result["data"], {"gate_seen": True, "word": "hello"})
        # stdout became data: the result does not repeat it, the log keeps it
        self.assertNotIn("stdout", result)
        with open(os.path.join(result["artifacts_dir"], "stdout.log")) as f:
            self.assertIn('"gate_seen": true', f.read())
        self.assertIn("gate waited", result["stderr"])
        self.assertIs(result["stdout_truncated"], False)
        self.assertIs(result["stderr_truncated"], False)
        self.assertEqual((result["stdout_bytes_truncated"], result["stderr_bytes_truncated"]),
                         (0, 0))
        self.assertNotIn("error", result)
        self.assertEqual(os.path.realpath(result["artifacts_dir"]), os.path.realpath(
            os.path.join(self.artifacts_dir, w.name, str(eid))))
        self.assertTrue(os.path.isfile(os.path.join(result["artifacts_dir"], "stdout.log")))

        def heard_all(_):
            return (len(events.completed(eid)) >= 1 and
                    len(events.events(eid, "ExecutionStatusChanged")) >= 2)
        self.assertTrue(events.wait_for(heard_all, 10 * SLOW),
                        "messages heard: %r\n%s" % ([e for _, _, e in events.events(eid)],
                                                    w.describe()))
        events.pump(0.5)  # anything sent twice would arrive by now
        heard = events.events(eid)
        self.assertEqual(
            [(e["message_type"], e["payload"].get("previous_status"),
              e["payload"].get("new_status")) for _, _, e in heard],
            [("ExecutionStatusChanged", "scheduled", "running"),
             ("ExecutionStatusChanged", "running", "completed"),
             ("ExecutionCompleted", None, None)],
            "messages about execution %d in the order heard" % eid)

        _, _, done = heard[-1]
        payload = done["payload"]
        self.assertEqual(payload["execution_id"], eid)
        self.assertEqual(payload["status"], "Completed")
        self.assertEqual(payload["action_ref"], "svc.gate")
        self.assertEqual(payload["action_id"], self.gate_id)
        self.assertEqual(payload["result"], result)
        self.assertIsInstance(payload["completed_at"], str)
        for _, _, e in heard[:2]:
            self.assertEqual(e["payload"]["action_ref"], "svc.gate")
            self.assertIsInstance(e["payload"]["changed_at"], str)

        ids = set()
        for method, props, env in heard:
            what = "%s %r" % (method.routing_key, env)
            self.assertEqual(method.exchange, EXCHANGE, what)
            self.assertEqual(method.routing_key, "execution.completed"
                             if env["message_type"] == "ExecutionCompleted"
                             else "execution.status.changed", what)
            self.assertEqual(env["correlation_id"], request["correlation_id"], what)
            self.assertEqual(env["version"], "1.0", what)
            self.assertIsInstance(env["timestamp"], str, what)
            self.assertRegex(env["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", what)
            self.assertEqual(env["headers"].get("trace_id"), trace_id, what)
            self.assertIsInstance(env["headers"].get("retry_count"), int, what)
            self.assertIsInstance(env["headers"].get("source_service"), str, what)
            self.assertRegex(env["message_id"], UUID_RE, what)
            self.assertNotEqual(env["message_id"], request["message_id"], what)
            self.assertEqual(props.content_type, "application/json", what)
            self.assertEqual(props.delivery_mode, 2, what)
            self.assertEqual(props.message_id, env["message_id"], what)
            self.assertEqual(props.correlation_id, request["correlation_id"], what)
            self.assertIsNotNone(props.timestamp, what)
            ids.add(env["message_id"])
        self.assertEqual(len(ids), 3, "message ids are not unique")

    # 3 -----------------------------------------------------------------------

    def test_two_workers_each_run_what_their_queue_gets(self):
        w1 = self.start_worker()
        w2 = self.start_worker()
        self.assertNotEqual(w1.id, w2.id)
        mine = {w1.id: [], w2.id: []}
        for i in range(4):
            for w in (w1, w2):
                eid = self.db.insert_execution("svc.noop", {"n": i})
                mine[w.id].append(eid)
                self.broker.dispatch(w.id, eid, "svc.noop", {"n": i})
        everything = mine[w1.id] + mine[w2.id]
        statuses = self.wait_all_final(everything, 20 * SLOW)
        self.assertEqual(set(statuses.values()), {"completed"}, statuses)
        for w in (w1, w2):
            rows = self.db.rows("SELECT id, worker FROM attune.execution WHERE id = ANY(%s)",
                                (mine[w.id],))
            self.assertEqual({r["worker"] for r in rows}, {w.id}, "worker column of %r" % rows)
            other = w2 if w is w1 else w1
            # The row turns final before the worker logs the line: wait for it.
            for eid in mine[w.id]:
                line = r"execution %d \(svc.noop\) completed" % eid
                self.assertTrue(w.wait_log(line, 5 * SLOW), "no %r in\n%s" % (line, w.log()))
            log = w.log()
            for eid in mine[other.id]:
                self.assertNotRegex(log, r"execution %d\b" % eid)
        self.assertEqual(self.db.worker(w1.id)["name"], w1.name)
        self.assertEqual(self.db.worker(w2.id)["name"], w2.name)

    # 6 -----------------------------------------------------------------------

    def test_duplicate_request_runs_once(self):
        w = self.start_worker()
        dead = self.dead_letter_listener(w.id)
        runs = self.path("runs.txt")
        eid = self.db.insert_execution("svc.append", {"file": runs})
        env = request_envelope(eid, w.id, "svc.append", {"file": runs})
        self.broker.publish_request(w.id, env)
        self.broker.publish_request(w.id, env)
        row = self.wait_final(eid, worker=w)
        self.assertEqual(row["status"], "completed", "%r\n%s" % (row, w.describe()))
        self.assertTrue(w.wait_log(r"execution %d is already (running|completed); acknowledged"
                                   % eid, 10 * SLOW),
                        "the second copy was not reported as a duplicate\n" + w.describe())
        time.sleep(0.3)
        with open(runs) as f:
            lines = f.read().splitlines()
        self.assertEqual(lines, ["run of execution %d" % eid], "the action ran %d times" %
                         len(lines))
        self.assertEqual(self.broker.queue_state(worker_queue(w.id)), (0, 1))
        self.stop_worker(w)
        # Anything left unacknowledged would be back in the queue now.
        self.assertEqual(self.broker.queue_state(worker_queue(w.id)), (0, 0))
        dead.pump(0.3)
        dead_copies = [m for m in dead.messages if m[3] and
                       m[3].get("message_id") == env["message_id"]]
        self.assertEqual(dead_copies, [], "the duplicate was dead-lettered")
        self.assertEqual(self.db.execution(eid)["status"], "completed")

    # 7 -----------------------------------------------------------------------

    def test_unregistered_action_fails_with_a_reason(self):
        w = self.start_worker()
        events = self.event_listener()
        eid = self.db.insert_execution("svc.never_registered", {}, action_id=None)
        self.broker.dispatch(w.id, eid, "svc.never_registered", {})
        row = self.wait_final(eid, worker=w)
        self.assertEqual(row["status"], "failed", "%r\n%s" % (row, w.describe()))
        self.assertIs(row["result"]["succeeded"], False)
        self.assertIn("svc.never_registered", row["result"].get("error", ""), row["result"])
        self.assertRegex(row["result"]["error"], r"not registered|unknown|not found|no such",
                         row["result"])
        self.assertTrue(events.wait_for(lambda _: events.completed(eid), 10 * SLOW))
        done = events.completed(eid)[0][2]["payload"]
        self.assertEqual(done["status"], "Failed")
        self.assertEqual(done["action_id"], 0, "no action row and none named: 0, not null")

    def test_missing_entry_point_fails_with_a_reason(self):
        w = self.start_worker()
        eid = self.db.insert_execution("svc.lost", {})
        self.broker.dispatch(w.id, eid, "svc.lost", {})
        row = self.wait_final(eid, worker=w)
        self.assertEqual(row["status"], "failed", "%r\n%s" % (row, w.describe()))
        self.assertIs(row["result"]["succeeded"], False)
        error = row["result"].get("error", "")
        self.assertIn("lost_entry.sh", error, row["result"])
        self.assertRegex(error, r"(?i)not found|no such file|missing|does not exist", error)

    def test_unknown_execution_is_dead_lettered(self):
        w = self.start_worker()
        dead = self.dead_letter_listener(w.id)
        eid = self.db.value("SELECT COALESCE(MAX(id), 0) FROM attune.execution") + 7777
        marker = new_marker()
        env = request_envelope(eid, w.id, "svc.noop", {}, trace_id=marker)
        self.broker.publish_body("execution.dispatch.worker.%d" % w.id, env, message_id=marker,
                                 correlation_id=env["correlation_id"])
        self.assertTrue(dead.wait_for(lambda ms: any(p.message_id == marker for _, p, _, _ in ms),
                                      10 * SLOW),
                        "no dead-lettered copy\n" + w.describe())
        self.assertTrue(w.wait_log(r"execution %d does not exist" % eid, 5 * SLOW),
                        w.describe())
        self.assertEqual(take_from_dead_letter_queue(self.mq_url, {marker}, 10 * SLOW),
                         {marker: 1})
        self.assertEqual(self.db.value("SELECT count(*) FROM attune.execution WHERE id = %s",
                                       (eid,)), 0)
        self.assertTrue(w.alive())



class ServiceFlowColdTest(ServiceFlowTest):
    """The same tests with cold starts only: no spare processes."""

    worker_defaults = SPARES_OFF


if __name__ == "__main__":
    unittest.main()
