"""Cancellation as today's Attune drives it (ATTUNE-TODAY 1.2, 2.2, 5.6, 5.7,
6): the worker's cancel queue declared with upstream's arguments; the API's
cancel request (the row set to canceling, then ExecutionCancelRequested on
execution.cancel.worker.{id}) stopping a running action's whole process group,
with SIGKILL after worker.cancel_grace_seconds for one that ignores SIGTERM;
a cancel that arrives before the action starts (during the claim, whether it
waits for the row or for the keys it reads too; between the claim and the
process, while the python fork server is still to fork it; before the
dispatch itself) so that the action never runs and no process is left; a
cancel after the end, which changes nothing; a dispatch that comes again while
the action runs and its row is canceling, which reports nothing (the running
job reports, once); and cancel messages that do not parse, which are
acknowledged and dropped.

A dispatch of a row that is already canceling is covered by
tests/integration/test_service_release.py
(test_canceling_at_dispatch_is_reported_cancelled); the cancelled one is here."""
import os
import signal
import time
import unittest
import uuid

import psycopg2

from attune_support import (CANCEL_QUEUE_ARGUMENTS, DLX, READY_TIMEOUT, RUN_TIMEOUT, SLOW,
                            WORKER_QUEUE_ARGUMENTS, AttuneTestCase, cancel_envelope, cancel_key,
                            cancel_queue, live_members_of_group, wait_gone, worker_queue)
from service_support import Listener
from support import alive, zygotes_of

CANCEL_ERROR = "Execution cancelled by user"
# Long enough that an action still running when it should have been stopped
# outlasts every wait of these tests.
LINGER_SECONDS = 60
# Ids no execution of these tests has (their sequences start at 10**6 or more).
NO_SUCH_EXECUTION = (7, 8, 9)


class CancelTest(AttuneTestCase):

    @classmethod
    def setUpData(cls):
        cls.add_action("linger", "linger.sh", "shell", output="text")
        cls.add_action("python_report", "report.py", "python")
        # A python runtime row that names no interpreter (execution_config
        # {}), as a pack may define one: the worker's own python3 runs its
        # actions, forked by the fork server; one that names an interpreter,
        # as the core pack's does, has them start cold.
        cls.runtime_ids["python_plain"] = cls.db.insert_runtime(
            {"ref": "attune_it.python3", "name": "Python3", "aliases": ["python_plain"],
             "execution_config": {}})
        cls.add_action("python_forked", "report.py", "python_plain")

    # --- helpers --------------------------------------------------------------------

    def files(self):
        """(started_file, pid_file) paths for one execution of linger."""
        tag = uuid.uuid4().hex[:8]
        started = os.path.join(self.tmp, "%s-started" % tag)
        pid_file = os.path.join(self.tmp, "%s-pids" % tag)
        self.addCleanup(self.kill_group_of, pid_file)
        return started, pid_file

    def linger_config(self, **extra):
        started, pid_file = self.files()
        return dict({"started_file": started, "pid_file": pid_file,
                     "seconds": LINGER_SECONDS}, **extra)

    @staticmethod
    def read_pids(pid_file, timeout=RUN_TIMEOUT):
        """(pid, pgid, child) the action wrote, waiting for the file; None if it
        never came."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open(pid_file) as f:
                    pid, pgid, child = (int(x) for x in f.read().split())
                return pid, pgid, child
            except (OSError, ValueError):
                time.sleep(0.02)
        return None

    def kill_group_of(self, pid_file):
        """Whatever the worker did, nothing of the action outlives the test."""
        pids = self.read_pids(pid_file, 0.01)
        if pids:
            for member in live_members_of_group(pids[1]):
                try:
                    os.kill(member, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def cancel_as_api(self, execution_id, worker):
        """What the API does for a running execution (6): the row to canceling,
        then the request to the worker that runs it. Returns when it was sent."""
        self.db.execute("UPDATE attune.execution SET status = 'canceling' WHERE id = %s AND "
                        "status = 'running'", (execution_id,))
        self.executor.request_cancel(worker.id, execution_id)
        return time.monotonic()

    def wait_cancel_taken(self, worker, timeout=10 * SLOW):
        """Until the worker has taken every message from its cancel queue."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.executor.queue_state(cancel_queue(worker.id))
            if state is not None and state[0] == 0:
                return
            time.sleep(0.05)
        self.fail("%s still holds messages after %ss: %r\n%s" % (
            cancel_queue(worker.id), timeout, state, worker.describe()))

    def wait_status(self, execution_id, status, timeout=RUN_TIMEOUT):
        deadline = time.monotonic() + timeout
        row = self.db.execution(execution_id)
        while row["status"] != status and time.monotonic() < deadline:
            time.sleep(0.02)
            row = self.db.execution(execution_id)
        self.assertEqual(row["status"], status, "%r\n%s" % (row, self.worker.describe()))

    def wait_worker_blocked(self, what, timeout=10 * SLOW):
        """Until a statement of the worker waits for a lock this test holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.db.value("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                             "current_database() AND application_name = 'attune-worker' AND "
                             "wait_event_type = 'Lock'"):
                return
            time.sleep(0.02)
        self.fail("the worker never waited for %s within %ss\n%s" % (what, timeout,
                                                                     self.worker.describe()))

    def holder(self):
        """A connection of the test's own, in a transaction until it ends."""
        conn = psycopg2.connect(self.db.url)
        self.addCleanup(conn.close)
        return conn

    def assertCancelled(self, run, ran):
        """The row as 5.7 says for a cancelled execution; `ran` whether the
        process had started (then it was killed: exit_code -1)."""
        self.assertEqual(run.status, "cancelled", run.describe() + "\n" + self.worker.describe())
        result = run.result
        self.assertIs(result.get("succeeded"), False, run.describe())
        self.assertIs(result.get("cancelled"), True, run.describe())
        self.assertEqual(result.get("error"), CANCEL_ERROR, run.describe())
        if not ran:
            self.assertEqual(result, {"succeeded": False, "cancelled": True,
                                      "error": CANCEL_ERROR}, run.describe())
        if ran:
            self.assertEqual(result.get("exit_code"), -1, run.describe())
            self.assertIsInstance(result.get("duration_ms"), int, run.describe())
            self.assertNotIn("slept through", result.get("stdout") or "", run.describe())

    def assertCancelReported(self, run, action, listener):
        """running then cancelled on execution.status.changed, and one
        execution.completed with Cancelled, nothing heard twice."""
        listener.pump(1.0)
        run.events = listener.events(run.id)
        self.assertReported(run, "cancelled", "Cancelled", action)
        self.assertEqual([c.get("new_status") for c in run.status_changes()],
                         ["running", "cancelled"], run.describe())
        self.assertEqual(run.completed["payload"].get("result"), run.result, run.describe())

    def assertNothingLeft(self, pids, run):
        pid, pgid, child = pids
        self.assertTrue(wait_gone(pgid, 2 * SLOW), "processes of the cancelled action are "
                        "still alive: %r\n%s" % (live_members_of_group(pgid), run.describe()))
        self.assertFalse(alive(pid), "the action's shell %d is still alive" % pid)
        self.assertFalse(alive(child), "the action's child %d is still alive" % child)

    # --- the queue ------------------------------------------------------------------

    def test_cancel_queue_is_declared_as_upstream(self):
        queue = cancel_queue(self.worker.id)

        def upstream_queue(ch):
            ch.queue_declare(queue, durable=True, exclusive=False, auto_delete=False,
                             arguments=CANCEL_QUEUE_ARGUMENTS)
        self.assertIsNone(self.executor.redeclare(upstream_queue),
                          "%s was not declared with Attune's arguments %r"
                          % (queue, CANCEL_QUEUE_ARGUMENTS))
        for other in (None, WORKER_QUEUE_ARGUMENTS):
            def mismatched(ch, other=other):
                ch.queue_declare(queue, durable=True, exclusive=False, auto_delete=False,
                                 arguments=other)
            self.assertIsNotNone(self.executor.redeclare(mismatched),
                                 "%s accepted the arguments %r" % (queue, other))
        messages, consumers = self.executor.queue_state(queue)
        self.assertGreaterEqual(consumers, 1, "nobody consumes %s" % queue)
        # Bound with execution.cancel.worker.{id}: a mandatory publish is routed.
        self.executor.request_cancel(self.worker.id, NO_SUCH_EXECUTION[0])
        self.wait_cancel_taken(self.worker)
        self.assertEqual(self.executor.queue_state(worker_queue(self.worker.id))[0], 0)

    def test_malformed_cancel_requests_are_acknowledged_and_dropped(self):
        w = self.start_worker()
        queue = cancel_queue(w.id)
        deadline = time.monotonic() + 10 * SLOW
        while (self.executor.queue_state(queue) or (0, 0))[1] < 1:
            self.assertLess(time.monotonic(), deadline, "nobody consumes %s\n%s"
                            % (queue, w.describe()))
            time.sleep(0.05)
        dead = Listener(self.mq_url, [(DLX, cancel_key(w.id))])
        self.addCleanup(dead.close)

        good = cancel_envelope(NO_SUCH_EXECUTION[1], w.id)
        no_payload = dict(good)
        del no_payload["payload"]
        bodies = [
            b"not json at all",
            b"",
            b"[1, 2, 3]",
            b'{"message_type": "ExecutionCancelRequested", "payload": "\xff\xfe"}',
            no_payload,
            dict(good, payload={}),
            dict(good, payload={"execution_id": "%d" % NO_SUCH_EXECUTION[2], "worker_id": w.id}),
            dict(good, payload={"execution_id": -1, "worker_id": w.id}),
            dict(good, payload={"execution_id": NO_SUCH_EXECUTION[2]}),
            dict(good, message_type="ExecutionRequested"),
            good,  # well formed, for an execution that does not exist
        ]
        for body in bodies:
            self.executor.publish(cancel_key(w.id), body, str(uuid.uuid4()), str(uuid.uuid4()))
        # Each that does not parse is logged (the last one parses).
        self.assertTrue(w.wait_log(r"cancel request ignored", 10 * SLOW, len(bodies) - 1),
                        "not every malformed cancel request was logged\n" + w.describe())

        # The consumer is still there and still cancels.
        listener = self.event_listener()
        config = self.linger_config()
        eid = self.create_execution("linger", config, worker=w)
        self.dispatch(eid, config, worker=w)
        pids = self.read_pids(config["pid_file"])
        self.assertIsNotNone(pids, "the action never started\n" + w.describe())
        self.cancel_as_api(eid, w)
        run = self.wait_run(eid, listener, timeout=15 * SLOW, worker=w)
        self.assertCancelled(run, ran=True)
        self.assertNothingLeft(pids, run)

        # Every message acknowledged: none dead-lettered, none left unacknowledged
        # (those would be back in the queue once the worker's channel closes).
        dead.pump(0.5)
        self.assertEqual([m[2] for m in dead.messages], [],
                         "cancel messages were dead-lettered, not acknowledged")
        self.assertEqual(w.terminate(20 * SLOW), 0, w.describe())
        self.assertEqual(self.executor.queue_state(queue), (0, 0),
                         "cancel messages were left unacknowledged\n" + w.describe())

    # --- a running action ------------------------------------------------------------

    def test_cancel_while_running_stops_the_whole_process_group(self):
        listener = self.event_listener()
        term_file = os.path.join(self.tmp, "%s-term" % uuid.uuid4().hex[:8])
        config = self.linger_config(term_file=term_file)
        eid = self.create_execution("linger", config)
        self.dispatch(eid, config)
        pids = self.read_pids(config["pid_file"])
        self.assertIsNotNone(pids, "the action never started\n" + self.worker.describe())
        self.assertTrue(alive(pids[0]) and alive(pids[2]), "the action and its child")
        sent = self.cancel_as_api(eid, self.worker)
        run = self.wait_run(eid, listener, timeout=15 * SLOW)
        took = time.monotonic() - sent
        self.assertCancelled(run, ran=True)
        self.assertCancelReported(run, "linger", listener)
        self.assertNothingLeft(pids, run)
        # SIGTERM first (6.3): the shell's trap ran, which a SIGKILL at once
        # would not have let it do.
        self.assertTrue(os.path.exists(term_file), "the action got no SIGTERM\n" + run.describe())
        self.assertLess(took, 5 * SLOW, "SIGTERM should have ended it at once")

    def test_action_ignoring_sigterm_is_killed_after_the_grace(self):
        w = self.start_worker(extra={"ATTUNE__WORKER__CANCEL_GRACE_SECONDS": "2"})
        listener = self.event_listener()
        config = self.linger_config(ignore_term=True)
        eid = self.create_execution("linger", config, worker=w)
        self.dispatch(eid, config, worker=w)
        pids = self.read_pids(config["pid_file"])
        self.assertIsNotNone(pids, "the action never started\n" + w.describe())
        sent = self.cancel_as_api(eid, w)
        heard = listener.wait_for(lambda _: listener.completed(eid), 20 * SLOW)
        took = time.monotonic() - sent
        self.assertTrue(heard, "no execution.completed\n" + w.describe())
        run = self.wait_run(eid, listener, worker=w)
        self.assertCancelled(run, ran=True)
        self.assertCancelReported(run, "linger", listener)
        self.assertNothingLeft(pids, run)
        self.assertGreaterEqual(took, 1.5, "killed before the 2 s grace")
        self.assertLess(took, 8, "not killed 2 s after SIGTERM (the default grace is 10 s)")

    def test_a_second_dispatch_while_it_runs_canceling_reports_nothing(self):
        # At-least-once delivery: the executor's request comes again while the
        # first delivery's job still runs the action, after the API set the
        # row canceling. The job that runs it reports; the copy says nothing.
        listener = self.event_listener()
        config = self.linger_config()
        eid = self.create_execution("linger", config)
        self.dispatch(eid, config)
        pids = self.read_pids(config["pid_file"])
        self.assertIsNotNone(pids, "the action never started\n" + self.worker.describe())
        self.db.execute("UPDATE attune.execution SET status = 'canceling' WHERE id = %s", (eid,))
        self.dispatch(eid, config)
        self.assertTrue(self.worker.wait_log(
            r"execution %d (is already|was cancelled)" % eid, 10 * SLOW),
            "the repeated request was not handled\n" + self.worker.describe())
        listener.pump(1.0)
        self.assertEqual(listener.completed(eid), [], "the copy reported the execution while it "
                         "still runs\n" + self.worker.describe())
        self.assertTrue(alive(pids[0]), "the action was stopped by the copy")
        self.executor.request_cancel(self.worker.id, eid)
        run = self.wait_run(eid, listener, timeout=15 * SLOW)
        self.assertCancelled(run, ran=True)
        self.assertCancelReported(run, "linger", listener)
        self.assertNothingLeft(pids, run)

    # --- before the action starts --------------------------------------------------

    def test_cancel_while_the_claim_waits_for_the_keys_runs_nothing(self):
        # A cancel during the claim, as the next test's, but with the claim
        # waiting for another lock: the keys come with the claim, read by its
        # statement, so while this test holds the key table locked the claim
        # waits and the row stays scheduled; the cancel comes as the executor
        # sends it then.
        listener = self.event_listener()
        config = self.linger_config()
        eid = self.create_execution("linger", config)
        lock = self.holder()
        lock.cursor().execute("LOCK TABLE attune.key IN ACCESS EXCLUSIVE MODE")
        self.dispatch(eid, config)
        self.wait_worker_blocked("the key table")
        self.assertEqual(self.db.execution(eid)["status"], "scheduled")
        self.executor.request_cancel(self.worker.id, eid, source="executor-service")
        time.sleep(0.5)
        lock.rollback()
        run = self.wait_run(eid, listener)
        self.assertCancelled(run, ran=False)
        self.assertNothingRan(run, config["started_file"])
        self.assertCancelReported(run, "linger", listener)

    def test_cancel_during_the_claim_runs_nothing(self):
        # The worker's claim waits for the row, which this test holds.
        listener = self.event_listener()
        config = self.linger_config()
        eid = self.create_execution("linger", config)
        lock = self.holder()
        lock.cursor().execute("SELECT id FROM attune.execution WHERE id = %s FOR UPDATE",
                              (eid,))
        self.dispatch(eid, config)
        self.wait_worker_blocked("the execution row")
        # The row is still scheduled: the API would cancel it in the database
        # itself; a workflow cascade of the executor sends the request anyway.
        self.executor.request_cancel(self.worker.id, eid, source="executor-service")
        time.sleep(0.5)
        lock.commit()
        run = self.wait_run(eid, listener)
        self.assertCancelled(run, ran=False)
        self.assertNothingRan(run, config["started_file"])
        self.assertCancelReported(run, "linger", listener)

    def test_cancel_before_the_dispatch_runs_nothing(self):
        listener = self.event_listener()
        config = self.linger_config()
        eid = self.create_execution("linger", config)
        self.assertEqual(self.db.execution(eid)["status"], "scheduled")
        self.executor.request_cancel(self.worker.id, eid, source="executor-service")
        self.wait_cancel_taken(self.worker)
        time.sleep(0.3)
        self.dispatch(eid, config)
        run = self.wait_run(eid, listener)
        self.assertCancelled(run, ran=False)
        self.assertNothingRan(run, config["started_file"])
        self.assertCancelReported(run, "linger", listener)

    def test_dispatch_of_a_cancelled_execution_runs_nothing_and_says_nothing(self):
        # The API cancelled it before it reached the worker (6); the executor's
        # dispatch was already on its way.
        listener = self.event_listener()
        config = self.linger_config()
        eid = self.create_execution("linger", config, status="cancelled")
        self.db.execute("UPDATE attune.execution SET result = %s WHERE id = %s",
                        ('{"error": "Cancelled by user before execution started"}', eid))
        before = self.db.execution(eid)
        self.dispatch(eid, config)
        self.worker.wait_log(r"\b%d\b" % eid, 10 * SLOW)
        deadline = time.monotonic() + 10 * SLOW
        while self.executor.queue_state(worker_queue(self.worker.id))[0] and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        listener.pump(1.5)
        self.assertEqual(listener.events(eid), [], "the worker reported on it")
        self.assertEqual(self.db.execution(eid), before, "the row changed")
        self.assertFalse(os.path.exists(config["started_file"]), "the action ran")
        self.assertEqual(self.executor.queue_state(worker_queue(self.worker.id))[0], 0)

    # --- between the claim and the process: the fork server's answer ----------------

    def fork_server_worker(self):
        """A worker whose python actions are forked by its fork server (no
        python spare takes them instead), logging each step of its jobs; and
        its zygote's pid, and its other children (a guardian)."""
        w = self.start_worker(extra={"ATTUNE__RUNTIMES__PYTHON__FORK_SERVER": "true",
                                     "ATTUNE__WORKER__SPARE_PROCESSES": "0",
                                     "ATTUNE__LOG__LEVEL": "debug"})
        self.assertTrue(w.wait_log(r"python fork server ready", READY_TIMEOUT),
                        "the fork server never became ready\n" + w.describe())
        zygotes = zygotes_of(w.pid)
        self.assertEqual(len(zygotes), 1, "no single zygote under the worker\n" + w.describe())
        others = [c for c in live_children(w.pid) if c[0] != zygotes[0]]
        return w, zygotes[0], others

    def assertOnlyTheZygoteLeft(self, w, others, run):
        """Beside those it had before, the worker's only live child is one
        zygote: no forked child and no action."""
        def children():
            return [c for c in live_children(w.pid) if c not in others]
        deadline = time.monotonic() + 5 * SLOW
        left = children()
        while time.monotonic() < deadline and [c[1] for c in left] != ["attune-zygote"]:
            time.sleep(0.05)
            left = children()
        self.assertEqual([c[1] for c in left], ["attune-zygote"],
                         "the worker's new live children: %r\n%s\n%s" % (left, run.describe(),
                                                                         w.describe()))

    def cancel_while_forking(self, continue_zygote):
        """A python action whose fork is asked of a stopped zygote, cancelled
        while the worker waits for it; then the zygote is continued (it forks
        the child, which the worker must kill unfed) or left stopped (the
        worker gives up on it after a second, and must not start the action
        cold)."""
        w, zygote, others = self.fork_server_worker()
        listener = self.event_listener()
        tag = uuid.uuid4().hex[:8]
        # gate_file never comes: an action that started would stay, and be seen.
        config = {"started_file": os.path.join(self.tmp, "%s-started" % tag),
                  "gate_file": os.path.join(self.tmp, "%s-gate" % tag)}
        eid = self.create_execution("python_forked", config, worker=w)
        os.kill(zygote, signal.SIGSTOP)
        self.addCleanup(continue_process, zygote)
        dispatched = time.monotonic()
        self.dispatch(eid, config, worker=w)
        self.assertTrue(w.wait_log(r"execution %d: action and parameters ready; starting" % eid,
                                   10 * SLOW), "the action was never started\n" + w.describe())
        self.assertEqual(self.db.execution(eid)["status"], "running")
        self.cancel_as_api(eid, w)
        if continue_zygote:
            # Once the worker has seen the cancel, so that the child comes after it.
            self.assertTrue(w.wait_log(r"execution %d: cancel requested" % eid, 10 * SLOW),
                            "the cancel was not seen\n" + w.describe())
            continue_process(zygote)
            # Well within the second the worker gives the zygote (counted from
            # its request, after the dispatch), the zygote answered: it forked
            # the child after the cancel, and was not replaced.
            in_time = time.monotonic() - dispatched < 0.8
        run = self.wait_run(eid, listener, worker=w)
        self.assertCancelled(run, ran=False)
        self.assertNothingRan(run, config["started_file"])
        self.assertCancelReported(run, "python_forked", listener)
        self.assertOnlyTheZygoteLeft(w, others, run)
        self.assertFalse(os.path.exists(config["started_file"]), "the action ran late")
        if continue_zygote and in_time:
            self.assertEqual(zygotes_of(w.pid), [zygote], "the continued zygote did not answer\n"
                             + w.describe())
        if not continue_zygote:
            self.assertNotIn(zygote, [c[0] for c in live_children(w.pid)],
                             "the stuck zygote was not replaced\n" + w.describe())
        # The worker still serves python actions.
        after = self.run_action("python_forked", {}, worker=w)
        self.assertCompleted(after)

    def test_cancel_while_the_fork_is_awaited_then_forked_runs_nothing(self):
        self.cancel_while_forking(continue_zygote=True)

    def test_cancel_while_the_fork_is_awaited_from_a_stuck_zygote_runs_nothing(self):
        self.cancel_while_forking(continue_zygote=False)

    # --- after the end ---------------------------------------------------------------

    def test_cancel_after_completion_changes_nothing(self):
        started = os.path.join(self.tmp, "%s-started" % uuid.uuid4().hex[:8])
        run = self.run_action("python_report", {"started_file": started})
        self.assertCompleted(run)
        listener = self.event_listener()
        before = self.db.execution(run.id)
        self.executor.request_cancel(self.worker.id, run.id)
        self.wait_cancel_taken(self.worker)
        # Checked once the worker has handled the request, not merely taken it.
        self.assertTrue(self.worker.wait_log(
            r"execution %d: cancel requested for an execution this worker does not run" % run.id,
            10 * SLOW), "the cancel request was not handled\n" + self.worker.describe())
        listener.pump(1.0)
        self.assertEqual(listener.events(run.id), [], "a second report after the end")
        self.assertEqual(self.db.execution(run.id), before, "the finished row changed")


def continue_process(pid):
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


def live_children(pid):
    """[(pid, name)] of the live (not zombie) children of pid."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                text = f.read()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            found.append((int(entry), text[text.index("(") + 1:text.rindex(")")]))
    return sorted(found)


if __name__ == "__main__":
    unittest.main()
