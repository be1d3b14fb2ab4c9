"""`attunectl cancel ID` against real PostgreSQL and RabbitMQ, checked on the
execution row and on the broker: what Attune's API does for POST
/api/v1/executions/{id}/cancel. An execution no worker has started becomes
cancelled at once; a running one becomes canceling and its worker gets an
ExecutionCancelRequested envelope on execution.cancel.worker.{id}; one already
canceling is left alone; a finished one is refused. A worker that claims or
finishes the execution while attunectl acts on it wins cleanly."""
import json
import re
import subprocess
import time
import unittest

import pika
import psycopg2

from ctl_support import CTL_BIN, EXIT_FAILED, EXIT_OK, EXIT_USAGE, CtlTestCase

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
PENDING = ("requested", "scheduling", "scheduled")
FINAL = ("completed", "failed", "timeout", "cancelled", "abandoned")
BEFORE_START = {"error": "Cancelled by user before execution started"}


class CancelTest(CtlTestCase):

    def setUp(self):
        super().setUp()
        self.migrate()
        self.cancels = self.bind_cancel_queue()

    def bind_cancel_queue(self):
        """A private queue that hears every cancel request sent to any worker."""
        conn = pika.BlockingConnection(pika.URLParameters(self.mq_url))
        self.addCleanup(lambda: conn.is_open and conn.close())
        ch = conn.channel()
        ch.exchange_declare("attune.executions", "topic", durable=True)
        queue = ch.queue_declare("", exclusive=True, auto_delete=True).method.queue
        ch.queue_bind(queue, "attune.executions", "execution.cancel.worker.#")
        self.cancel_channel = ch
        return queue

    def cancel_messages(self, execution_id):
        """The cancel requests about the execution in the queue (taken from it)."""
        found = []
        while True:
            method, props, body = self.cancel_channel.basic_get(self.cancels, auto_ack=True)
            if method is None:
                return found
            env = json.loads(body)
            if env.get("payload", {}).get("execution_id") == execution_id:
                found.append((method, props, env))

    def insert_execution(self, status, worker=None, result=None):
        return self.value(
            "INSERT INTO attune.execution (action_ref, status, worker, result, config) "
            "VALUES ('examples.hello', %s, %s, %s, '{\"name\": \"Ada\"}') RETURNING id",
            (status, worker, None if result is None else json.dumps(result)))

    def execution(self, execution_id):
        return self.row("SELECT status::text AS status, worker, result, config, updated "
                        "FROM attune.execution WHERE id = %s", (execution_id,))

    def cancel(self, execution_id, **kwargs):
        return self.ctl("cancel", str(execution_id), **kwargs)

    # --- the branches of cancel_execution --------------------------------------

    def test_not_found(self):
        proc = self.cancel(424242)
        self.assertOneLineError(proc, EXIT_FAILED, "execution 424242 does not exist")
        self.assertEqual(proc.stdout, "")

    def test_bad_id(self):
        for bad in ("abc", "0", "-3", "1.5"):
            with self.subTest(id=bad):
                proc = self.ctl("cancel", "--", bad)
                self.assertExit(proc, EXIT_USAGE)
        self.assertExit(self.ctl("cancel"), EXIT_USAGE)
        self.assertExit(self.ctl("cancel", "1", "2"), EXIT_USAGE)

    def test_finished_executions_cannot_be_cancelled(self):
        worker = self.insert_worker("w1")
        for status in FINAL:
            with self.subTest(status=status):
                eid = self.insert_execution(status, worker, {"succeeded": status == "completed"})
                before = self.execution(eid)
                proc = self.cancel(eid)
                self.assertOneLineError(
                    proc, EXIT_FAILED,
                    "Execution %d is in status '%s' and cannot be cancelled" % (eid, status))
                self.assertEqual(self.execution(eid), before)
                self.assertEqual(self.cancel_messages(eid), [])

    def test_canceling_changes_nothing(self):
        worker = self.insert_worker("w1")
        eid = self.insert_execution("canceling", worker)
        before = self.execution(eid)
        proc = self.assertExit(self.cancel(eid), EXIT_OK)
        self.assertEqual(proc.stdout.count("\n"), 1, self.describe(proc))
        self.assertIn("execution %d" % eid, proc.stdout)
        self.assertIn("canceling", proc.stdout)
        self.assertIn(str(worker), proc.stdout)
        self.assertEqual(proc.stderr, "")
        self.assertEqual(self.execution(eid), before, "the row changed")
        self.assertEqual(self.cancel_messages(eid), [], "a second cancel request was sent")

    def test_not_yet_started_is_cancelled_at_once(self):
        worker = self.insert_worker("w1")
        for status in PENDING:
            with self.subTest(status=status):
                # The executor sets worker when it schedules; requested has none yet.
                eid = self.insert_execution(status, None if status == "requested" else worker)
                before = self.execution(eid)
                proc = self.assertExit(self.cancel(eid), EXIT_OK)
                self.assertEqual(proc.stdout,
                                 "execution %d cancelled (it was %s and had not started)\n"
                                 % (eid, status))
                after = self.execution(eid)
                self.assertEqual((after["status"], after["result"]), ("cancelled", BEFORE_START))
                self.assertEqual((after["worker"], after["config"]),
                                 (before["worker"], before["config"]))
                self.assertEqual(self.cancel_messages(eid), [],
                                 "no worker has it: nothing to send")

    def test_running_becomes_canceling_and_its_worker_is_asked(self):
        worker = self.insert_worker("w1")
        eid = self.insert_execution("running", worker)
        proc = self.assertExit(self.cancel(eid), EXIT_OK)
        self.assertEqual(proc.stdout, "execution %d canceling; cancel request sent to worker %d\n"
                         % (eid, worker))
        after = self.execution(eid)
        self.assertEqual((after["status"], after["worker"], after["result"]),
                         ("canceling", worker, None), "the worker writes the final row")
        (method, props, env), = self.cancel_messages(eid)
        self.assertEqual((method.exchange, method.routing_key),
                         ("attune.executions", "execution.cancel.worker.%d" % worker))
        self.assertEqual(props.content_type, "application/json")
        self.assertEqual(props.delivery_mode, 2)
        self.assertEqual(props.message_id, env["message_id"])
        self.assertEqual(props.correlation_id, env["correlation_id"])
        self.assertAlmostEqual(props.timestamp, time.time(), delta=60)
        self.assertRegex(env["message_id"], UUID_RE)
        self.assertRegex(env["correlation_id"], UUID_RE)
        self.assertEqual((env["message_type"], env["version"]), ("ExecutionCancelRequested", "1.0"))
        self.assertRegex(env["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
        self.assertEqual(env["headers"]["retry_count"], 0)
        self.assertIsInstance(env["headers"]["source_service"], str)
        self.assertEqual(env["payload"], {"execution_id": eid, "worker_id": worker})

        # A second cancel finds it canceling: nothing changes, nothing is sent.
        self.assertExit(self.cancel(eid), EXIT_OK)
        self.assertEqual(self.execution(eid)["status"], "canceling")
        self.assertEqual(self.cancel_messages(eid), [])

    def test_running_without_a_worker_is_marked_with_a_warning(self):
        eid = self.insert_execution("running", None)
        proc = self.assertExit(self.cancel(eid), EXIT_OK)
        self.assertIn("warning", proc.stderr)
        self.assertIn("no cancel request was sent", proc.stderr)
        self.assertEqual(len(proc.stderr.strip().splitlines()), 1, self.describe(proc))
        self.assertEqual(proc.stdout.count("\n"), 1, self.describe(proc))
        self.assertEqual(self.execution(eid)["status"], "canceling")
        self.assertEqual(self.cancel_messages(eid), [])

    def test_unroutable_cancel_request_is_an_error(self):
        # Nobody listens on execution.cancel.worker.*: the request cannot reach
        # the worker, which attunectl says (the row stays canceling, as the API
        # leaves it when its publish fails).
        self.cancel_channel.queue_unbind(self.cancels, "attune.executions",
                                         "execution.cancel.worker.#")
        worker = self.insert_worker("w-gone")
        eid = self.insert_execution("running", worker)
        proc = self.cancel(eid)
        self.assertOneLineError(proc, EXIT_FAILED, "execution %d" % eid, "worker %d" % worker,
                                "not sent", "no queue is bound")
        self.assertEqual(self.execution(eid)["status"], "canceling")

    # --- a worker acting on the row at the same moment ------------------------------

    def blocked_cancel(self, eid):
        """Starts attunectl cancel while this test holds the row locked, and
        returns once its guarded UPDATE waits for the lock; returns (the test's
        open transaction, the running attunectl)."""
        holder = psycopg2.connect(self.db_url)
        self.addCleanup(holder.close)
        cur = holder.cursor()
        cur.execute("SELECT status FROM attune.execution WHERE id = %s FOR UPDATE", (eid,))
        proc = subprocess.Popen([CTL_BIN, "cancel", str(eid)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=self.env(), text=True)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        deadline = time.monotonic() + 30
        while not self.value("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND "
                             "application_name = 'attunectl' AND wait_event_type = 'Lock'",
                             (self.dbname,)):
            if proc.poll() is not None:
                self.fail("attunectl ended without waiting: %r" % (proc.communicate(),))
            self.assertLess(time.monotonic(), deadline, "attunectl never waited for the row")
            time.sleep(0.02)
        return holder, cur, proc

    def test_claim_while_cancelling_wins_and_the_worker_is_asked(self):
        worker = self.insert_worker("w1")
        eid = self.insert_execution("scheduled", worker)
        holder, cur, proc = self.blocked_cancel(eid)
        # The worker's claim lands first: attunectl's guard no longer matches,
        # so it reads the row again and cancels it as a running one.
        cur.execute("UPDATE attune.execution SET status = 'running', started_at = NOW() "
                    "WHERE id = %s", (eid,))
        holder.commit()
        out, err = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, EXIT_OK, err)
        self.assertEqual(out, "execution %d canceling; cancel request sent to worker %d\n"
                         % (eid, worker))
        after = self.execution(eid)
        self.assertEqual((after["status"], after["result"]), ("canceling", None))
        self.assertEqual(len(self.cancel_messages(eid)), 1)

    def test_finish_while_cancelling_wins(self):
        worker = self.insert_worker("w1")
        eid = self.insert_execution("running", worker)
        holder, cur, proc = self.blocked_cancel(eid)
        cur.execute("UPDATE attune.execution SET status = 'completed', result = %s "
                    "WHERE id = %s", (json.dumps({"succeeded": True}), eid))
        holder.commit()
        out, err = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, EXIT_FAILED, err)
        self.assertIn("Execution %d is in status 'completed' and cannot be cancelled" % eid, err)
        after = self.execution(eid)
        self.assertEqual((after["status"], after["result"]), ("completed", {"succeeded": True}))
        self.assertEqual(self.cancel_messages(eid), [])

    def test_help_lists_cancel(self):
        proc = self.assertExit(self.ctl("--help"), EXIT_OK)
        self.assertRegex(proc.stdout, r"\n  cancel ID +\S")


if __name__ == "__main__":
    unittest.main()
