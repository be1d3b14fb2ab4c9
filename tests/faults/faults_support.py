"""Helpers for the fault tests: servers of their own that the tests may stop and
start (scripts/services in $ATTUNE_SERVICES_DIR, by default build/faults-services,
with a 10 s consumer timeout on the broker), a database connection that survives
a PostgreSQL restart, a durable completion listener that survives a RabbitMQ
restart, a run log that actions append to, and process-group checks.

Reuses tests/integration/service_support.py (not modified) for everything else."""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
_SOURCE = os.path.abspath(os.environ.get("ATTUNE_SOURCE_DIR") or os.path.join(HERE, "..", ".."))
# Before service_support is imported: it reads these when it starts the servers.
os.environ.setdefault("ATTUNE_SERVICES_DIR", os.path.join(_SOURCE, "build", "faults-services"))
os.environ.setdefault("ATTUNE_RABBITMQ_CONSUMER_TIMEOUT_MS", "10000")
sys.path.insert(0, os.path.join(_SOURCE, "tests", "integration"))

import pika  # noqa: E402
import pika.exceptions  # noqa: E402
import psycopg2  # noqa: E402
import psycopg2.extras  # noqa: E402

import service_support as ss  # noqa: E402
from service_support import (EXCHANGE, SLOW, Broker, Database, ServiceTestCase,  # noqa: E402,F401
                             WorkerProcess, dispatch_key, marker_of, new_marker,
                             request_envelope, service_urls, wait_until_value, worker_queue,
                             write_action_file, write_pack)
from support import live_members_of_group, proc_stat, sanitized_build  # noqa: E402,F401

SERVICES = ss.SERVICES
SERVICES_DIR = os.path.abspath(os.environ["ATTUNE_SERVICES_DIR"])
FINAL = ("completed", "failed", "timeout", "cancelled", "abandoned")

# The action every fault test runs: one line "EXEC_ID PID PGID" in the run log
# when it starts (so a second run of the same execution shows), then a sleep.
RECORDER_SH = """#!/bin/bash
read -r _ _ _ _ pgid _ </proc/$$/stat
echo "$ATTUNE_EXEC_ID $$ $pgid" >>"$PARAM_RUNLOG"
sleep "$PARAM_SECONDS"
echo "done $ATTUNE_EXEC_ID"
"""


def services(*args, timeout=300):
    """Runs scripts/services on the fault tests' own servers; raises on failure."""
    proc = subprocess.run([SERVICES] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout,
                          env=dict(os.environ, ATTUNE_SERVICES_DIR=SERVICES_DIR))
    if proc.returncode != 0:
        raise RuntimeError("scripts/services %s failed (exit %d):\n%s%s" % (
            " ".join(args), proc.returncode, proc.stdout, proc.stderr))
    return proc.stdout


def rabbit_eval(expr):
    """Evaluates an Erlang expression on the test broker; returns its output."""
    return services("rabbitmqctl", "eval", expr, timeout=60).strip()


def enforce_consumer_timeout():
    """Checks that the broker runs with the 10 s consumer timeout, and makes it
    look for overdue acknowledgements every second instead of once a minute (the
    default channel tick), so that the timeout bites at 10 s. Channels read the
    tick when they open: call before the worker connects, and again after the
    broker restarts."""
    out = rabbit_eval("application:get_env(rabbit, consumer_timeout).")
    if out != "{ok,10000}":
        raise AssertionError("the fault tests' broker must run with consumer_timeout 10000 "
                             "(ATTUNE_RABBITMQ_CONSUMER_TIMEOUT_MS at its first start in "
                             "%s); it says %r" % (SERVICES_DIR, out))
    rabbit_eval("application:set_env(rabbit, channel_tick_interval, 1000).")


def broker_log():
    """The test broker's log text (for consumer-timeout closures)."""
    out = []
    logdir = os.path.join(SERVICES_DIR, "rabbitmq", "log")
    for name in sorted(os.listdir(logdir)) if os.path.isdir(logdir) else ():
        if name.endswith(".log"):
            with open(os.path.join(logdir, name), "rb") as f:
                out.append(f.read().decode("utf-8", "replace"))
    return "\n".join(out)


def vm_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


# --- the database, across a server restart ----------------------------------

_DB_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)


class FaultDatabase(Database):
    """service_support.Database whose queries reconnect and retry (for up to a
    minute) when the server went away: the test itself must outlive a restart."""

    def _retry(self, fn):
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.conn is None or self.conn.closed:
                    self.conn = psycopg2.connect(self.url, connect_timeout=5)
                    self.conn.autocommit = True
                return fn()
            except _DB_ERRORS:
                if time.monotonic() >= deadline:
                    raise
                try:
                    if self.conn is not None:
                        self.conn.close()
                except _DB_ERRORS:
                    pass
                self.conn = None
                time.sleep(0.2)

    def execute(self, sql, params=()):
        return self._retry(lambda: Database.execute(self, sql, params))

    def rows(self, sql, params=()):
        return self._retry(lambda: Database.rows(self, sql, params))

    def value(self, sql, params=()):
        return self._retry(lambda: Database.value(self, sql, params))

    def count_status(self, ids, statuses):
        return self.value("SELECT count(*) FROM attune.execution WHERE id = ANY(%s) "
                          "AND status::text = ANY(%s)", (list(ids), list(statuses)))


# --- completions, across a broker restart ------------------------------------

def _params(url):
    params = pika.URLParameters(url)
    params.connection_attempts = 1
    params.socket_timeout = 5
    params.blocked_connection_timeout = 30
    params.heartbeat = 30
    return params


class CompletionCollector:
    """A durable, non-exclusive queue bound to attune.executions with
    execution.completed, declared before anything is published, and read with
    basic.get: no consumer, so nothing is held unacknowledged between reads (a
    consumer would fall foul of the broker's 10 s consumer timeout while the test
    is busy elsewhere). Each message is acknowledged once recorded, so one in
    flight when the broker goes away is still in the queue after it restarts; the
    connection is made again as needed. delete() removes the queue."""

    def __init__(self, url, key="execution.completed"):
        self.url = url
        self.key = key
        self.queue = "faults.completed." + uuid.uuid4().hex[:12]
        self.by_id = {}  # execution id -> [status, ...] in arrival order
        self.seen = set()  # message ids heard
        self.received = 0
        self.reconnects = 0
        self.conn = self.ch = None
        self._connect()

    def _connect(self):
        self.conn = pika.BlockingConnection(_params(self.url))
        self.ch = self.conn.channel()
        self.ch.queue_declare(self.queue, durable=True, exclusive=False, auto_delete=False)
        self.ch.queue_bind(self.queue, EXCHANGE, routing_key=self.key)

    def _first_time(self, env):
        """False for a message heard before (same message_id): a message read
        and not yet acknowledged when this client's connection dropped comes
        again, and so does one the worker sent again after its own reconnect;
        both are the same message, once."""
        mid = env.get("message_id")
        if mid in self.seen:
            return False
        self.seen.add(mid)
        return True

    def _record(self, body):
        try:
            env = json.loads(body.decode("utf-8"))
            payload = env["payload"]
            if self._first_time(env):
                self.by_id.setdefault(payload["execution_id"], []).append(payload.get("status"))
        except (ValueError, KeyError, TypeError):
            pass
        self.received += 1

    def _drop(self):
        try:
            if self.conn is not None and self.conn.is_open:
                self.conn.close()
        except Exception:  # a dead connection can fail in many ways while closing
            pass
        self.conn = self.ch = None

    def pump(self, seconds=0.05):
        """Takes what is in the queue (for up to about `seconds` when there is
        plenty), else waits `seconds`; on a lost connection, tries once to connect
        again (the broker may be restarting) and returns."""
        deadline = time.monotonic() + seconds
        try:
            if self.conn is None or not self.conn.is_open or not self.ch.is_open:
                self._drop()
                self._connect()
                self.reconnects += 1
            while True:
                method, _, body = self.ch.basic_get(self.queue, auto_ack=False)
                if method is None:
                    break
                self._record(body)
                self.ch.basic_ack(method.delivery_tag)
                if time.monotonic() >= deadline:
                    return
            self.conn.sleep(max(0.0, deadline - time.monotonic()))
        except (pika.exceptions.AMQPError, OSError):
            self._drop()
            time.sleep(max(0.0, deadline - time.monotonic()))

    def wait_ids(self, ids, timeout):
        """Pumps until every id in `ids` was heard; returns the ids still missing."""
        ids = set(ids)
        deadline = time.monotonic() + timeout
        while True:
            missing = ids - set(self.by_id)
            if not missing or time.monotonic() >= deadline:
                return missing
            self.pump(0.1)

    def delete(self):
        self._drop()
        try:
            conn = pika.BlockingConnection(_params(self.url))
            try:
                conn.channel().queue_delete(self.queue)
            finally:
                conn.close()
        except pika.exceptions.AMQPError:
            pass


class RawListener(ss.Listener):
    """service_support's listener without parsing the bodies (some are hostile:
    10,000-deep nesting makes Python's json recurse too deep)."""

    def _on_message(self, ch, method, props, body):
        self.messages.append((method, props, body, None))


def dead_letter_listener(url, worker_id):
    """A copy of every message the worker's queue dead-letters to attune.dlx
    (direct: under the dispatch key it came with), bodies kept raw."""
    return RawListener(url, [(ss.DLX, dispatch_key(worker_id))])


# --- run logs and process groups ------------------------------------------------

def read_runs(path):
    """[(execution id, pid, pgid)] from a run log."""
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and all(p.isdigit() for p in parts):
                out.append(tuple(int(p) for p in parts))
    return out


def run_counts(path):
    counts = {}
    for eid, _, _ in read_runs(path):
        counts[eid] = counts.get(eid, 0) + 1
    return counts


def live_in_groups(pgids):
    """{pgid: [pid, ...]} of the groups that still have a live (non-zombie) member."""
    wanted = set(pgids)
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st and st[1] in wanted and st[0] not in ("Z", "X"):
                found.setdefault(st[1], []).append(int(entry))
    return found


def kill_groups(pgids):
    for pgid in pgids:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


# --- the test case -------------------------------------------------------------

class FaultTestCase(ServiceTestCase):
    """ServiceTestCase on the fault tests' own servers, with a database connection
    that outlives a PostgreSQL restart, the recorder action `flt.rec`, a run log
    per test and cleanup of every process group the run log names."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db.__class__ = FaultDatabase
        enforce_consumer_timeout()

    @classmethod
    def setUpData(cls):
        write_pack(cls.packs_dir, "flt")
        write_action_file(cls.packs_dir, "flt", "rec.sh", RECORDER_SH)
        cls.pack_id = cls.db.insert_pack("flt")
        cls.db.insert_action(cls.pack_id, "flt", "rec", "rec.sh",
                             params={"runlog": {"type": "string"},
                                     "seconds": {"type": "number"}},
                             required=["runlog", "seconds"])

    def setUp(self):
        super().setUp()
        self.runlog = os.path.join(self.tmp, "runs-%s-%s.log" % (self._testMethodName,
                                                                  uuid.uuid4().hex[:6]))
        self.collectors = []
        self.addCleanup(self._fault_cleanup)

    def _fault_cleanup(self):
        kill_groups({pgid for _, _, pgid in read_runs(self.runlog)})
        for c in self.collectors:
            c.delete()

    def collector(self):
        c = CompletionCollector(self.mq_url)
        self.collectors.append(c)
        return c

    def fresh_broker(self):
        """A new publishing connection (the old one died with the broker)."""
        old = type(self).broker
        old.close()
        new = Broker(self.mq_url)
        type(self).broker = new
        self.addClassCleanup(new.close)
        return new

    def new_recordings(self, n, seconds):
        """n execution rows of flt.rec; returns [(id, params)]."""
        out = []
        for _ in range(n):
            params = {"runlog": self.runlog, "seconds": seconds}
            out.append((self.db.insert_execution("flt.rec", params), params))
        return out

    def dispatch_all(self, worker_id, executions):
        """Publishes a request per execution. Many at once go on a channel without
        confirms (one confirm each costs ~15 ms here); a synchronous call on the
        same channel afterwards returns only once the broker has routed them all."""
        if len(executions) < 20:
            for eid, params in executions:
                self.broker.dispatch(worker_id, eid, "flt.rec", params)
            return
        ch = self.broker.conn.channel()
        try:
            for eid, params in executions:
                env = request_envelope(eid, worker_id, "flt.rec", params)
                props = pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                             message_id=env["message_id"],
                                             correlation_id=env["correlation_id"],
                                             timestamp=int(time.time()))
                ch.basic_publish(EXCHANGE, dispatch_key(worker_id),
                                 json.dumps(env).encode("utf-8"), props)
            ch.queue_declare(worker_queue(worker_id), passive=True)
        finally:
            ch.close()

    def start_worker_again(self, name, env=None):
        """Starts a worker under a name used before, logging to a new file (the
        ready line of the earlier process must not be taken for this one's)."""
        workdir = tempfile.mkdtemp(prefix="again-", dir=self.tmp)
        w = WorkerProcess(name, self.worker_env(name, env), workdir)
        self.workers.append(w)
        w.wait_ready()
        self.assertTrue(wait_until_value(lambda: (self.broker.queue_state(
            worker_queue(w.id)) or (0, 0))[1] >= 1, 10 * SLOW),
            "no consumer on %s after ready\n%s" % (worker_queue(w.id), w.describe()))
        return w

    def assert_ran_once(self, ids, allow_missing=False):
        """Every id has exactly one line in the run log (at most one if
        allow_missing); no line for an id outside `ids`."""
        counts = run_counts(self.runlog)
        twice = {i: n for i, n in counts.items() if n > 1}
        self.assertEqual(twice, {}, "executions that ran more than once (id: runs)")
        strangers = set(counts) - set(ids)
        self.assertEqual(strangers, set(), "runs of executions the test did not send")
        if not allow_missing:
            missing = sorted(set(ids) - set(counts))
            self.assertEqual(missing[:20], [], "%d executions never ran" % len(missing))
        return counts

    def wait_all_final_pumping(self, ids, timeout, collector=None, worker=None, every=None):
        """Like wait_all_final, pumping `collector` meanwhile; `every(statuses)` is
        called after each poll. Returns {id: status}."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.db.statuses(ids)
            if every:
                every(st)
            pending = {i: s for i, s in st.items() if s not in FINAL}
            if not pending and len(st) == len(ids):
                return st
            if time.monotonic() >= deadline:
                counts = {}
                for s in st.values():
                    counts[s] = counts.get(s, 0) + 1
                self.fail("%d of %d executions not final after %ss (statuses %r, e.g. %r)%s" % (
                    len(pending), len(ids), timeout, counts, list(pending.items())[:5],
                    "\n" + worker.describe() if worker else ""))
            if collector is not None:
                collector.pump(0.2)
            else:
                time.sleep(0.2)


def status_counts(statuses):
    out = {}
    for s in statuses.values():
        out[s] = out.get(s, 0) + 1
    return out


def log_lines(worker, pattern, limit=20):
    rx = re.compile(pattern)
    return "\n".join([l for l in worker.log().splitlines() if rx.search(l)][:limit])
