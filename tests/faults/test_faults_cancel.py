"""200 executions, each cancelled at a random moment of its life, under load:
a short action (a random sleep of 0 to 2 s) on a worker with 4 slots, a new
dispatch every 0.12 s, and for each a cancel request at a random moment from
0.5 s before its dispatch to 2.5 s after it: before the dispatch, while it
waits in the queue, during its claim, while it runs, or after it ended. The
test plays Attune's API: a running row is set canceling first; otherwise only
the message is sent, as the executor's workflow cascade sends it.

Each execution ends cancelled or completed, once; one execution.completed and
one final status change per execution, matching the row; nothing runs after
the worker processed its cancel request: the worker's own log (at debug
level) says when it processed each request and when it started each action,
and no action starts after its request was processed nor runs on to its end
(the end line its script writes after the sleep) later than that; a
cancelled one that ran was recorded within worker.cancel_grace_seconds of the
request; no action process is left; the worker is still up and stops
cleanly."""
import datetime
import heapq
import json
import os
import random
import re
import time
import unittest
import uuid

from faults_support import (SLOW, CompletionCollector, FaultTestCase, kill_groups,
                            live_in_groups, log_lines, status_counts, write_action_file)

COUNT = 200
SLOTS = 4
INTERVAL = 0.12      # seconds between two dispatches
MAX_RUN = 2.0        # the action sleeps 0 to MAX_RUN seconds
CANCEL_FROM, CANCEL_TO = -0.5, 2.5  # cancel request, relative to the dispatch
GRACE = 2            # worker.cancel_grace_seconds
START_SLACK = 1.0    # an action may start this long after its cancel was sent
STOP_SLACK = 3.0     # the row may be recorded this long after the grace
# An end line may bear a time this much after the worker's log line about the
# cancel (the two clocks are the same; the worker logs, then signals).
END_SLACK = 0.2
CANCEL_ERROR = "Execution cancelled by user"

# One line "EXEC_ID PID PGID START" when it starts (START: seconds since the
# epoch, from bash's own clock), then the sleep, then "EXEC_ID PID PGID END
# end" if the sleep was not cut short.
MARKER_SH = """#!/bin/bash
read -r _ _ _ _ pgid _ </proc/$$/stat
echo "$ATTUNE_EXEC_ID $$ $pgid $EPOCHREALTIME" >>"$PARAM_RUNLOG"
sleep "$PARAM_SECONDS"
echo "$ATTUNE_EXEC_ID $$ $pgid $EPOCHREALTIME end" >>"$PARAM_RUNLOG"
"""

# The worker's log lines (text format, debug level) about a cancel request
# being processed (held by a job, or kept for a dispatch to come) and about an
# action being started (logged just before the spawn, in the same turn of the
# worker's loop, so that no cancel can come in between).
WORKER_LINE_RE = re.compile(
    r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z \S+\s+(?:\S+: )?execution (\d+): "
    r"(cancel requested|action and parameters ready; starting)")


class StatusCollector(CompletionCollector):
    """The worker's status changes: {execution id: [new_status, ...]}."""

    def __init__(self, url):
        super().__init__(url, key="execution.status.changed")

    def _record(self, body):
        try:
            env = json.loads(body.decode("utf-8"))
            payload = env["payload"]
            if self._first_time(env):
                self.by_id.setdefault(payload["execution_id"], []).append(
                    payload.get("new_status"))
        except (ValueError, KeyError, TypeError):
            pass
        self.received += 1


def read_markers(path, ends=False):
    """{execution id: [(pid, pgid, time), ...]} from the run log: the start
    lines, or with ends the end lines."""
    out = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 5 and parts[4] == "end":
                    parts = parts[:4] if ends else []
                elif ends:
                    continue
                if len(parts) == 4 and all(p.isdigit() for p in parts[:3]):
                    out.setdefault(int(parts[0]), []).append(
                        (int(parts[1]), int(parts[2]), float(parts[3])))
    return out


def cancels_and_starts(log_text):
    """From the worker's log: {execution id: (line number, time)} of the first
    line saying it processed a cancel request for the execution, and
    {execution id: line number} of the first saying it starts its action."""
    cancels, starts = {}, {}
    for n, line in enumerate(log_text.splitlines()):
        m = WORKER_LINE_RE.match(line)
        if not m:
            continue
        eid = int(m.group(2))
        if m.group(3) == "cancel requested":
            at = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(
                tzinfo=datetime.timezone.utc).timestamp()
            cancels.setdefault(eid, (n, at))
        else:
            starts.setdefault(eid, n)
    return cancels, starts


class CancelAtRandomTest(FaultTestCase):

    @classmethod
    def setUpData(cls):
        super().setUpData()
        write_action_file(cls.packs_dir, "flt", "marker.sh", MARKER_SH)
        cls.db.insert_action(cls.pack_id, "flt", "marker", "marker.sh",
                             params={"runlog": {"type": "string"},
                                     "seconds": {"type": "number"}},
                             required=["runlog", "seconds"])

    def _fault_cleanup(self):
        super()._fault_cleanup()
        kill_groups({pgid for runs in read_markers(self.runlog).values()
                     for _, pgid, _ in runs})

    def status_collector(self):
        c = StatusCollector(self.mq_url)
        self.collectors.append(c)
        return c

    def play_api_cancel(self, worker_id, eid):
        """A running row becomes canceling, then the request goes out in any
        case. Returns the wall-clock time the request was sent."""
        self.db.execute("UPDATE attune.execution SET status = 'canceling' WHERE id = %s AND "
                        "status = 'running'", (eid,))
        mid = str(uuid.uuid4())
        env = {"message_id": mid, "correlation_id": str(uuid.uuid4()),
               "message_type": "ExecutionCancelRequested", "version": "1.0",
               "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "headers": {"retry_count": 0, "source_service": "api-service"},
               "payload": {"execution_id": eid, "worker_id": worker_id}}
        sent = time.time()
        # Mandatory: a worker without a cancel queue fails the test here.
        self.broker.publish_body("execution.cancel.worker.%d" % worker_id, env,
                                 message_id=mid, correlation_id=env["correlation_id"])
        return sent

    def run_schedule(self, worker_id, execs, delays, collectors):
        """Dispatches execution i at i * INTERVAL and cancels it delays[i] later;
        returns {execution id: wall-clock time its cancel was sent}."""
        events = []
        for i, (eid, params) in enumerate(execs):
            heapq.heappush(events, (i * INTERVAL, 1, eid, params))
            heapq.heappush(events, (i * INTERVAL + delays[i], 0, eid, params))
        cancelled_at = {}
        began = time.monotonic()
        while events:
            at, kind, eid, params = heapq.heappop(events)
            while time.monotonic() - began < at:
                for c in collectors:
                    c.pump(min(0.02, max(0.0, at - (time.monotonic() - began))))
            if kind == 1:
                self.broker.dispatch(worker_id, eid, "flt.marker", params)
            else:
                cancelled_at[eid] = self.play_api_cancel(worker_id, eid)
        return cancelled_at

    def test_cancel_at_a_random_moment_of_each_execution(self):
        seed = int(os.environ.get("ATTUNE_FAULTS_SEED") or time.time())
        rng = random.Random(seed)
        print("\nseed %d (ATTUNE_FAULTS_SEED reruns it)" % seed)
        w = self.start_worker(env={"ATTUNE__WORKER__MAX_CONCURRENT_TASKS": str(SLOTS),
                                   "ATTUNE__WORKER__CANCEL_GRACE_SECONDS": str(GRACE),
                                   "ATTUNE__LOG__LEVEL": "debug"})
        completions = self.collector()
        changes = self.status_collector()
        execs = []
        for _ in range(COUNT):
            params = {"runlog": self.runlog, "seconds": round(rng.uniform(0, MAX_RUN), 2)}
            execs.append((self.db.insert_execution("flt.marker", params), params))
        ids = [e for e, _ in execs]
        delays = [rng.uniform(CANCEL_FROM, CANCEL_TO) for _ in execs]

        began = time.monotonic()
        cancelled_at = self.run_schedule(w.id, execs, delays, (completions, changes))
        statuses = self.wait_all_final_pumping(ids, 30 * SLOW, completions, w)
        self.assertEqual(completions.wait_ids(ids, 20 * SLOW), set(),
                         "executions without execution.completed\n" + w.describe())
        self.assertEqual(changes.wait_ids(ids, 20 * SLOW), set())
        for _ in range(10):  # anything heard twice comes now
            completions.pump(0.05)
            changes.pump(0.05)
        took = time.monotonic() - began

        counts = status_counts(statuses)
        self.assertEqual(set(counts) - {"cancelled", "completed"}, set(),
                         "statuses %r\n%s" % (counts, w.describe()))
        rows = {r["id"]: r for r in self.db.rows(
            "SELECT id, status::text AS status, result, extract(epoch FROM updated)::float8 AS "
            "updated FROM attune.execution WHERE id = ANY(%s)", (ids,))}
        markers = read_markers(self.runlog)
        ends = read_markers(self.runlog, ends=True)
        self.assertEqual(set(markers) - set(ids), set(), "runs of executions not sent here")
        twice = {e: len(r) for e, r in markers.items() if len(r) > 1}
        self.assertEqual(twice, {}, "executions that started more than once")
        processed, starts = cancels_and_starts(w.log())
        self.assertEqual(sorted(set(ids) - set(processed))[:20], [],
                         "cancel requests the worker never logged\n" + w.describe())
        self.assertEqual(sorted(set(markers) - set(starts))[:20], [],
                         "actions that ran with no start line in the worker's log")

        problems = []
        kinds = {"cancelled before it started": 0, "cancelled while running": 0,
                 "completed": 0}
        latest_start = slowest_stop = float("-inf")  # relative to the cancel request
        latest_end = float("-inf")  # relative to the worker's processing of it
        for eid in ids:
            row, run = rows[eid], (markers.get(eid) or [None])[0]
            problems += self.check_messages(eid, row, completions, changes)
            line, at = processed[eid]
            if starts.get(eid, -1) > line:
                problems.append("%d started after the worker processed its cancel" % eid)
            if eid in ends:
                latest_end = max(latest_end, ends[eid][0][2] - at)
                if ends[eid][0][2] > at + END_SLACK:
                    problems.append("%d ran on to its end %.2f s after the worker processed "
                                    "its cancel" % (eid, ends[eid][0][2] - at))
            if row["status"] == "completed":
                kinds["completed"] += 1
                if run is None or row["result"].get("exit_code") != 0:
                    problems.append("%d completed without running: %r" % (eid, row["result"]))
                continue
            result = row["result"] or {}
            if (result.get("cancelled"), result.get("error")) != (True, CANCEL_ERROR):
                problems.append("%d cancelled with the result %r" % (eid, result))
            sent = cancelled_at[eid]
            if run is None:
                kinds["cancelled before it started"] += 1
                continue
            kinds["cancelled while running"] += 1
            latest_start = max(latest_start, run[2] - sent)
            slowest_stop = max(slowest_stop, row["updated"] - sent)
            if run[2] > sent + START_SLACK:
                problems.append("%d started %.2f s after its cancel was sent" % (
                    eid, run[2] - sent))
            if row["updated"] > sent + GRACE + STOP_SLACK:
                problems.append("%d recorded %.2f s after its cancel was sent" % (
                    eid, row["updated"] - sent))
        first = problems[0].split()[0] if problems else None
        self.assertEqual(problems[:20], [], "%d problems\n%s\nthe worker's lines about %s:\n%s" % (
            len(problems), w.describe(), first, log_lines(w, r"\b%s\b" % first, 80)))

        pgids = {pgid for runs in markers.values() for _, pgid, _ in runs}
        self.assertEqual(live_in_groups(pgids), {}, "action processes left")
        print("%d executions in %.1f s: %r; of those stopped while running, the latest "
              "started %+.2f s and the slowest was recorded %+.2f s from its cancel request; "
              "the latest natural end %+.2f s from the worker's processing of its cancel"
              % (COUNT, took, kinds, latest_start, slowest_stop, latest_end))
        for kind, n in kinds.items():
            self.assertGreater(n, 0, "no execution was %s: the schedule missed a case" % kind)
        self.assertTrue(w.alive(), w.describe())
        self.stop_worker(w)

    @staticmethod
    def check_messages(eid, row, completions, changes):
        """One execution.completed with the row's status (PascalCase) and one
        status change to it; at most one to running, nothing else."""
        final = row["status"]
        got_completed = completions.by_id.get(eid, [])
        got_changes = changes.by_id.get(eid, [])
        problems = []
        if got_completed != [final.capitalize()]:
            problems.append("%d is %s; execution.completed said %r" % (eid, final,
                                                                        got_completed))
        rest = [s for s in got_changes if s != "running"]
        if rest != [final] or got_changes.count("running") > 1:
            problems.append("%d is %s; status changes %r" % (eid, final, got_changes))
        return problems


if __name__ == "__main__":
    unittest.main()
