"""Helpers for the tests of the worker's service mode against the real servers of
`scripts/services`: a private database per test class, packs and actions registered
by SQL, worker processes, and AMQP clients (pika) that publish requests the way
Attune's executor does and listen to what the worker publishes.

Tests run in parallel on one shared broker, so everything that lands on shared
names is made unique or filtered: worker and execution ids start at random
offsets in each database (queue names and payloads never meet those of another
test), listeners use private auto-delete queues, and the shared dead-letter
queue is only ever taken from for messages a test recognises as its own."""
import fcntl
import glob
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import uuid
from datetime import datetime, timezone

import pika
import pika.exceptions
import psycopg2
import psycopg2.extras
from keys_support import encrypt_json, key_hash_of
from support import SOURCE_DIR, WORKER_BIN, alive, live_members_of_group, sanitized_build

CTL_BIN = os.path.join(os.path.dirname(WORKER_BIN), "attunectl")
SERVICES = os.path.join(SOURCE_DIR, "scripts", "services")
MIGRATIONS_DIR = os.path.join(SOURCE_DIR, "migrations")
SOURCE_PACKS = os.path.join(SOURCE_DIR, "packs")
ENCRYPTION_KEY = "service-tests-encryption-key-0123456789-abcdef"

EXCHANGE = "attune.executions"
DLX = "attune.dlx"
DLX_QUEUE = "attune.dlx.queue"
# The arguments Attune's own worker declares its queue with, types included
# (pika sends 300000 as a signed 32-bit int, as Attune does).
WORKER_QUEUE_ARGUMENTS = {"x-dead-letter-exchange": DLX, "x-message-ttl": 300000}

# Sanitizers make every program several times slower.
SLOW = 3 if sanitized_build() else 1
READY_TIMEOUT = 15 * SLOW
READY_RE = re.compile(r"worker (\S+) \(id (\d+)\) ready in (\d+) ms")

_urls_cache = None  # the URLs, read once per process


# --- the servers -------------------------------------------------------------

def _services(*args, timeout=60):
    return subprocess.run([SERVICES] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout)


def service_urls():
    """{'ATTUNE__DATABASE__URL': ..., 'ATTUNE__MESSAGE_QUEUE__URL': ...} from
    `scripts/services env`, starting the servers first when they are not running
    (ctest's fixture has started them; by hand they may not be). A lock keeps two
    test processes from starting them at the same time."""
    global _urls_cache
    if _urls_cache is not None:
        return dict(_urls_cache)
    state_dir = os.path.abspath(os.environ.get("ATTUNE_SERVICES_DIR") or "/tmp/attune-services")
    lock_path = os.path.join(tempfile.gettempdir(), "attune-services-%s.lock" % hashlib.sha256(
        state_dir.encode()).hexdigest()[:12])
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _services("status").returncode != 0:
            started = _services("start", timeout=300)
            if started.returncode != 0:
                raise RuntimeError("scripts/services start failed:\n%s%s" % (started.stdout,
                                                                             started.stderr))
        proc = _services("env")
    if proc.returncode != 0:
        raise RuntimeError("scripts/services env failed: " + proc.stderr.strip())
    urls = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"^export (ATTUNE__[A-Z_]+)=(.*)$", line)
        if m:
            urls[m.group(1)] = m.group(2)
    for key in ("ATTUNE__DATABASE__URL", "ATTUNE__MESSAGE_QUEUE__URL"):
        if key not in urls:
            raise RuntimeError("scripts/services env did not print %s:\n%s" % (key, proc.stdout))
    _urls_cache = urls
    return dict(urls)


def with_database(url, name):
    """The same server URL with another database name."""
    return re.sub(r"/[^/?]*(\?.*)?$", "/" + name, url)


def clean_env(extra=None):
    """Our environment without any ATTUNE_* setting (a developer's ATTUNE_CONFIG,
    the test runner's own variables), plus `extra` (None values remove)."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("ATTUNE_")}
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


# --- the database ------------------------------------------------------------

class Database:
    """A fresh database on the test server with the schema applied; worker and
    execution ids start at random offsets, so that queue names and execution ids
    never meet those of another test on the shared broker."""

    def __init__(self, server_url):
        self.name = "attune_t_" + uuid.uuid4().hex[:16]
        self.admin_url = with_database(server_url, "postgres")
        self.url = with_database(server_url, self.name)
        self.conn = None
        self.migrated_by = None
        admin = psycopg2.connect(self.admin_url)
        admin.autocommit = True
        try:
            with admin.cursor() as cur:
                cur.execute('CREATE DATABASE "%s" TEMPLATE template0' % self.name)
        finally:
            admin.close()

    def setup(self):
        self.migrate()
        self.conn = psycopg2.connect(self.url)
        self.conn.autocommit = True
        for table in ("worker", "execution"):
            self.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)",
                         ("attune." + table, random.randrange(10**6, 10**12)))

    def migrate(self):
        """`attunectl migrate` when attunectl is built, else the migration files in
        order (what attunectl would do, less its bookkeeping table)."""
        if os.access(CTL_BIN, os.X_OK):
            proc = subprocess.run([CTL_BIN, "migrate"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, timeout=60, cwd="/",
                                  env=clean_env({"ATTUNE__DATABASE__URL": self.url}))
            if proc.returncode != 0:
                raise RuntimeError("attunectl migrate failed (exit %d):\n%s%s" % (
                    proc.returncode, proc.stdout, proc.stderr))
            self.migrated_by = "attunectl"
            return
        conn = psycopg2.connect(self.url)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                for path in sorted(glob.glob(os.path.join(MIGRATIONS_DIR, "*.sql"))):
                    with open(path, encoding="utf-8") as f:
                        cur.execute(f.read())
        finally:
            conn.close()
        self.migrated_by = "sql files"

    def drop(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        admin = psycopg2.connect(self.admin_url)
        admin.autocommit = True
        try:
            with admin.cursor() as cur:
                cur.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.name)
        finally:
            admin.close()

    def execute(self, sql, params=()):
        with self.conn.cursor() as cur:
            cur.execute(sql, params)

    def rows(self, sql, params=()):
        with self.conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(sql, params)
            return [dict(r) for r in cur.fetchall()] if cur.description else []

    def row(self, sql, params=()):
        found = self.rows(sql, params)
        if len(found) != 1:
            raise AssertionError("expected one row from %s %r, got %r" % (sql, params, found))
        return found[0]

    def value(self, sql, params=()):
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchone()[0]

    # --- rows the tests need --------------------------------------------------

    def insert_pack(self, ref):
        return self.value(
            "INSERT INTO attune.pack (ref, label, description, version) "
            "VALUES (%s, %s, 'test pack', '1.0.0') RETURNING id", (ref, ref.capitalize()))

    def insert_action(self, pack_id, pack_ref, name, entrypoint, params=None, required=(),
                      delivery="stdin", fmt="json", output="text", timeout=None):
        """An action row; `params` is a map name -> JSON schema, stored normalised
        as {"type": "object", "properties": ..., "required": [...]}."""
        schema = {"type": "object", "properties": params or {}, "required": list(required)}
        return self.value(
            "INSERT INTO attune.action (ref, pack, pack_ref, label, description, entrypoint, "
            "param_schema, parameter_delivery, parameter_format, output_format, timeout_seconds) "
            "VALUES (%s, %s, %s, %s, 'test action', %s, %s, %s, %s, %s, %s) RETURNING id",
            ("%s.%s" % (pack_ref, name), pack_id, pack_ref, name, entrypoint,
             psycopg2.extras.Json(schema), delivery, fmt, output, timeout))

    def insert_execution(self, action_ref, params=None, status="scheduled", config=None,
                         action_id=None, worker=None, timeout=None, env_vars=None, **columns):
        """An execution row as the executor leaves it before dispatch. Its config
        is the flat parameter map, as Attune stores it: `params`, unless a whole
        `config` is given. `columns` sets other columns by name (pack_release,
        pack_release_digest, executable_snapshot, trace_tag, enforcement...)."""
        if config is None and params is not None:
            config = params
        if action_id is None:
            action_id = self.value("SELECT (SELECT id FROM attune.action WHERE ref = %s)",
                                   (action_ref,))
        names = ["action", "action_ref", "config", "status", "worker", "timeout_seconds",
                 "env_vars"] + list(columns)
        values = [action_id, action_ref, None if config is None else psycopg2.extras.Json(config),
                  status, worker, timeout,
                  None if env_vars is None else psycopg2.extras.Json(env_vars)]
        values += [psycopg2.extras.Json(v) if isinstance(v, (dict, list)) else v
                   for v in columns.values()]
        return self.value(
            "INSERT INTO attune.execution (%s) VALUES (%s) RETURNING id" % (
                ", ".join(names), ", ".join(["%s"] * len(names))), tuple(values))

    def insert_secret_value(self, execution_id, json_path, value, key_string=ENCRYPTION_KEY,
                            key_hash=None):
        """A secret parameter of an execution as Attune stores it: encrypt_json of
        the value (Python's cryptography, keys_support) at an RFC 6901 path."""
        return self.value(
            "INSERT INTO attune.execution_secret_value (entity_type, entity_id, json_path, "
            "source_kind, encrypted_value, encryption_key_hash) "
            "VALUES ('execution_config', %s, %s, 'parameter_schema', %s, %s) RETURNING id",
            (execution_id, json_path, psycopg2.extras.Json(encrypt_json(value, key_string)),
             key_hash if key_hash is not None else key_hash_of(key_string)))

    def execution(self, execution_id):
        return self.row("SELECT id, status::text AS status, result, worker, started_at, "
                        "action_ref, updated FROM attune.execution WHERE id = %s",
                        (execution_id,))

    def statuses(self, ids):
        found = self.rows("SELECT id, status::text AS status FROM attune.execution "
                          "WHERE id = ANY(%s)", (list(ids),))
        return {r["id"]: r["status"] for r in found}

    def worker(self, worker_id=None, name=None):
        if name is not None:
            return self.row("SELECT id, name, status::text AS status, capabilities, host, "
                            "last_heartbeat, worker_type::text AS worker_type "
                            "FROM attune.worker WHERE name = %s", (name,))
        return self.row("SELECT id, name, status::text AS status, capabilities, host, "
                        "last_heartbeat, worker_type::text AS worker_type "
                        "FROM attune.worker WHERE id = %s", (worker_id,))


# --- packs on disk -----------------------------------------------------------

def write_pack(packs_dir, ref):
    os.makedirs(os.path.join(packs_dir, ref, "actions"), exist_ok=True)
    with open(os.path.join(packs_dir, ref, "pack.yaml"), "w") as f:
        f.write("ref: %s\nlabel: %s\ndescription: test pack\nversion: 1.0.0\n" % (ref, ref))


def write_action_file(packs_dir, pack_ref, filename, text, mode=0o755):
    path = os.path.join(packs_dir, pack_ref, "actions", filename)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


# --- the worker process ------------------------------------------------------

class WorkerProcess:
    """One `attune-worker` in service mode; its stderr (the log) goes to a file."""

    def __init__(self, name, env, workdir):
        self.name = name
        self.log_path = os.path.join(workdir, "%s.log" % name)
        self.out_path = os.path.join(workdir, "%s.out" % name)
        self.id = None
        self.ready_ms = None
        self.returncode = None
        self.started = time.monotonic()
        with open(self.log_path, "ab") as log, open(self.out_path, "ab") as out:
            self.proc = subprocess.Popen([WORKER_BIN], stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=log, env=env, cwd=workdir)
        self.pid = self.proc.pid

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_tail(self, n=40):
        return "\n".join(self.log().splitlines()[-n:])

    def describe(self):
        return "worker %s (pid %d, exit %r), last log lines:\n%s" % (
            self.name, self.pid, self.proc.poll(), self.log_tail())

    def alive(self):
        return self.proc.poll() is None

    def wait_ready(self, timeout=READY_TIMEOUT):
        """Waits for the 'ready' log line; returns the worker id it names."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = READY_RE.search(self.log())
            if m:
                self.id = int(m.group(2))
                self.ready_ms = int(m.group(3))
                return self.id
            if self.proc.poll() is not None:
                raise AssertionError("worker exited before it was ready\n" + self.describe())
            time.sleep(0.02)
        raise AssertionError("worker not ready within %ss\n%s" % (timeout, self.describe()))

    def wait_log(self, pattern, timeout, count=1):
        """Waits until `pattern` (a regex) matches `count` times in the log."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            if len(rx.findall(self.log())) >= count:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def signal(self, signo):
        if self.proc.poll() is None:
            self.proc.send_signal(signo)

    def wait(self, timeout):
        """The exit status, or None if still running after `timeout` seconds."""
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def terminate(self, timeout=20 * SLOW):
        """SIGTERM, then the exit status (None if it did not exit in time)."""
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.returncode = self.proc.wait()
        return self.returncode


# --- the broker ---------------------------------------------------------------

def _params(url):
    params = pika.URLParameters(url)
    params.connection_attempts = 3
    params.retry_delay = 0.5
    params.socket_timeout = 10
    params.blocked_connection_timeout = 30
    return params


def now_rfc3339():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def request_envelope(execution_id, worker_id, action_ref, config=None,
                     message_type="ExecutionScheduled", trace_id=None, correlation_id=None,
                     message_id=None, release_id=None, release_digest=None):
    """An inbound request as Attune's executor sends it today: CONTRACT.md
    section 2, plus the pinned release when given."""
    headers = {"retry_count": 0, "source_service": "executor"}
    if trace_id is not None:
        headers["trace_id"] = trace_id
    payload = {"execution_id": execution_id, "worker_id": worker_id, "action_ref": action_ref,
               "config": config}
    if release_id is not None or release_digest is not None:
        payload.update(release_id=release_id, release_digest=release_digest)
    return {
        "message_id": message_id or str(uuid.uuid4()),
        "correlation_id": correlation_id or str(uuid.uuid4()),
        "message_type": message_type,
        "version": "1.0",
        "timestamp": now_rfc3339(),
        "headers": headers,
        "payload": payload,
    }


def dispatch_key(worker_id):
    return "execution.dispatch.worker.%d" % worker_id


def worker_queue(worker_id):
    return "worker.%d.executions" % worker_id


class Broker:
    """A publishing connection (with publisher confirms, so that a publish has
    reached its queue when the call returns) and passive queue inspection."""

    def __init__(self, url):
        self.url = url
        self.conn = pika.BlockingConnection(_params(url))
        self.ch = self.conn.channel()
        self.ch.confirm_delivery()

    def close(self):
        try:
            if self.conn.is_open:
                self.conn.close()
        except pika.exceptions.AMQPError:
            pass

    def publish_body(self, routing_key, body, message_id=None, correlation_id=None,
                     headers=None, mandatory=True):
        """Publishes raw bytes (or a dict, as JSON) to attune.executions. With
        `mandatory`, an unroutable message (no such worker queue) raises."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode("utf-8")
        elif isinstance(body, str):
            body = body.encode("utf-8")
        props = pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                     message_id=message_id, correlation_id=correlation_id,
                                     timestamp=int(time.time()), headers=headers)
        self.ch.basic_publish(EXCHANGE, routing_key, body, props, mandatory=mandatory)

    def publish_request(self, worker_id, envelope, routing_worker_id=None):
        """Publishes an envelope (from request_envelope) the way the executor does."""
        self.publish_body(dispatch_key(routing_worker_id or worker_id), envelope,
                          message_id=envelope.get("message_id"),
                          correlation_id=envelope.get("correlation_id"))
        return envelope

    def dispatch(self, worker_id, execution_id, action_ref, config=None, **kwargs):
        env = request_envelope(execution_id, worker_id, action_ref, config, **kwargs)
        return self.publish_request(worker_id, env)

    def queue_state(self, queue):
        """(ready messages, consumers) of a queue, or None if it does not exist."""
        ch = self.conn.channel()
        try:
            ok = ch.queue_declare(queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker:
            return None
        ch.close()
        return ok.method.message_count, ok.method.consumer_count

    def queue_arguments_ok(self, queue):
        """True if declaring `queue` durable with the arguments of Attune's own
        worker agrees with the queue on the broker (the broker refuses a mismatch)."""
        ch = self.conn.channel()
        try:
            ch.queue_declare(queue, durable=True, arguments=WORKER_QUEUE_ARGUMENTS)
        except pika.exceptions.ChannelClosedByBroker:
            return False
        ch.close()
        return True

    def delete_queue(self, queue):
        ch = self.conn.channel()
        try:
            ch.queue_delete(queue)
            ch.close()
        except pika.exceptions.ChannelClosedByBroker:
            pass


class Listener:
    """A private exclusive, auto-delete queue bound to `bindings` [(exchange,
    routing key)], consumed in the background of the calls to pump()."""

    def __init__(self, url, bindings):
        self.conn = pika.BlockingConnection(_params(url))
        self.ch = self.conn.channel()
        ok = self.ch.queue_declare("", exclusive=True, auto_delete=True)
        self.queue = ok.method.queue
        for exchange, key in bindings:
            self.ch.queue_bind(self.queue, exchange, routing_key=key)
        self.messages = []  # (method, properties, raw body, parsed body or None)
        self.ch.basic_consume(self.queue, self._on_message, auto_ack=True)

    def _on_message(self, ch, method, props, body):
        try:
            parsed = json.loads(body.decode("utf-8"))
        except ValueError:
            parsed = None
        self.messages.append((method, props, body, parsed))

    def pump(self, seconds=0.0):
        self.conn.process_data_events(time_limit=seconds)

    def wait_for(self, predicate, timeout):
        """Pumps until predicate(self.messages) is true; returns whether it is."""
        deadline = time.monotonic() + timeout
        while True:
            self.pump(0.05)
            if predicate(self.messages):
                return True
            if time.monotonic() >= deadline:
                return False

    def close(self):
        try:
            if self.conn.is_open:
                self.conn.close()
        except pika.exceptions.AMQPError:
            pass


class EventListener(Listener):
    """The worker's reports on attune.executions: status changes and completions.
    Dispatch keys are not bound, so that this queue never makes an unroutable
    dispatch (another test's worker without a queue) look routed."""

    def __init__(self, url):
        super().__init__(url, [(EXCHANGE, "execution.status.changed"),
                               (EXCHANGE, "execution.completed")])

    def events(self, execution_id, message_type=None):
        """(properties, envelope) of the messages about one execution."""
        out = []
        for method, props, body, env in self.messages:
            if not isinstance(env, dict) or not isinstance(env.get("payload"), dict):
                continue
            if env["payload"].get("execution_id") != execution_id:
                continue
            if env.get("message_type") in ("ExecutionRequested", "ExecutionScheduled"):
                continue  # our own requests, heard on execution.dispatch.*
            if message_type and env.get("message_type") != message_type:
                continue
            out.append((method, props, env))
        return out

    def completed(self, execution_id):
        return self.events(execution_id, "ExecutionCompleted")


class DeadLetterListener(Listener):
    """A copy of every message the queues of `worker_ids` dead-letter to
    attune.dlx, so that a test can count its own without taking from the shared
    queue. attune.dlx is a direct exchange: a dead-lettered message keeps the
    routing key it was published with, the worker's dispatch key."""

    def __init__(self, url, worker_ids):
        super().__init__(url, [(DLX, dispatch_key(i)) for i in worker_ids])


def marker_of(props, body, markers):
    """Which of `markers` a message carries: its message id, an AMQP header
    x-test-marker, or anywhere in the body."""
    if props.message_id in markers:
        return props.message_id
    headers = props.headers or {}
    value = headers.get("x-test-marker")
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if value in markers:
        return value
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    for m in re.findall(r"mk-[0-9a-f]{32}", text):
        if m in markers:
            return m
    return None


def take_from_dead_letter_queue(url, markers, timeout):
    """Takes (acknowledges) the messages in attune.dlx.queue that carry one of
    `markers`. The queue is shared: messages of others are held unacknowledged
    only until one pass over the queue ends, then given back, so that two tests
    looking at once cannot hold each other's messages for long. Returns
    {marker: count}."""
    found = {}
    conn = pika.BlockingConnection(_params(url))
    try:
        ch = conn.channel()
        deadline = time.monotonic() + timeout
        while sum(found.values()) < len(markers) and time.monotonic() < deadline:
            held = []
            try:
                while sum(found.values()) < len(markers):
                    method, props, body = ch.basic_get(DLX_QUEUE, auto_ack=False)
                    if method is None:
                        break
                    m = marker_of(props, body, markers)
                    if m is None:
                        held.append(method.delivery_tag)
                    else:
                        found[m] = found.get(m, 0) + 1
                        ch.basic_ack(method.delivery_tag)
            finally:
                for tag in held:
                    ch.basic_nack(tag, requeue=True)
            if sum(found.values()) < len(markers):
                conn.process_data_events(time_limit=0.1 + random.random() * 0.2)
        ch.close()
    finally:
        conn.close()
    return found


def new_marker():
    return "mk-" + uuid.uuid4().hex


# --- the test case ------------------------------------------------------------

class ServiceTestCase(unittest.TestCase):
    """A private database and temporary directory per class; workers started by a
    test are stopped after it (SIGTERM, and exit status 0 is asserted)."""

    maxDiff = 6000
    encryption_key = ENCRYPTION_KEY

    @classmethod
    def setUpClass(cls):
        if not os.access(WORKER_BIN, os.X_OK):
            raise unittest.SkipTest("worker binary not found: %s" % WORKER_BIN)
        cls.urls = service_urls()
        cls.mq_url = cls.urls["ATTUNE__MESSAGE_QUEUE__URL"]
        cls.tmp = tempfile.mkdtemp(prefix="attune-svc-test-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        os.chmod(cls.tmp, 0o755)
        cls.packs_dir = os.path.join(cls.tmp, "packs")
        cls.artifacts_dir = os.path.join(cls.tmp, "artifacts")
        os.makedirs(cls.packs_dir)
        cls.db = Database(cls.urls["ATTUNE__DATABASE__URL"])
        cls.addClassCleanup(cls.db.drop)
        cls.db.setup()
        cls.broker = Broker(cls.mq_url)
        cls.addClassCleanup(cls.broker.close)
        # Worker queues are durable: delete this class's when it is done.
        cls.addClassCleanup(cls._delete_worker_queues)
        cls.setUpData()

    @classmethod
    def _delete_worker_queues(cls):
        if cls.db.conn is None:
            return
        try:
            for row in cls.db.rows("SELECT id FROM attune.worker"):
                cls.broker.delete_queue(worker_queue(row["id"]))
        except (pika.exceptions.AMQPError, psycopg2.Error):
            pass

    @classmethod
    def setUpData(cls):
        """Packs and actions for the class (override)."""

    def setUp(self):
        self.workers = []
        self.listeners = []
        self.group_pidfiles = []
        self.addCleanup(self._cleanup)

    # --- workers ----------------------------------------------------------

    def worker_env(self, name, extra=None, packs_dir=None):
        env = {
            "ATTUNE__DATABASE__URL": self.db.url,
            "ATTUNE__MESSAGE_QUEUE__URL": self.mq_url,
            "ATTUNE__PACKS_BASE_DIR": packs_dir or self.packs_dir,
            "ATTUNE__WORKER__NAME": name,
            "ATTUNE__WORKER__ARTIFACTS_DIR": self.artifacts_dir,
            "ATTUNE__SECURITY__ENCRYPTION_KEY": self.encryption_key,
        }
        env.update(extra or {})
        return clean_env(env)

    def start_worker(self, name=None, env=None, wait=True, packs_dir=None):
        """Starts a worker (unique name unless given), waits until it says it is
        ready and its queue has a consumer; checks the id against its row."""
        name = name or "w-%s-%s" % (self._testMethodName[5:25], uuid.uuid4().hex[:8])
        w = WorkerProcess(name, self.worker_env(name, env, packs_dir), self.tmp)
        self.workers.append(w)
        if wait:
            w.wait_ready()
            row = self.db.worker(name=name)
            self.assertEqual(row["id"], w.id, "ready line and worker row disagree\n" +
                             w.describe())
            self.assertTrue(wait_until_value(lambda: (self.broker.queue_state(
                worker_queue(w.id)) or (0, 0))[1] >= 1, 10 * SLOW),
                "no consumer on %s after ready\n%s" % (worker_queue(w.id), w.describe()))
        return w

    def stop_worker(self, w, timeout=20 * SLOW):
        """SIGTERM; asserts exit status 0 within `timeout`."""
        rc = w.terminate(timeout)
        if rc is None:
            w.kill()
            self.fail("worker did not exit within %ss of SIGTERM\n%s" % (timeout, w.describe()))
        self.assertEqual(rc, 0, "worker exit status after SIGTERM\n" + w.describe())
        return rc

    def event_listener(self):
        lst = EventListener(self.mq_url)
        self.listeners.append(lst)
        return lst

    def dead_letter_listener(self, *worker_ids):
        lst = DeadLetterListener(self.mq_url, worker_ids)
        self.listeners.append(lst)
        return lst

    def kill_group_later(self, pidfile):
        """An action that wrote "PID PGID" to `pidfile` runs in its own process
        group: make sure nothing of it outlives the test, whatever the worker did."""
        self.group_pidfiles.append(pidfile)

    def _cleanup(self):
        problems = []
        for w in self.workers:
            if w.alive():
                rc = w.terminate(20 * SLOW)
                if rc is None:
                    w.kill()
                    problems.append("worker %s did not exit on SIGTERM; killed\n%s" %
                                    (w.name, w.describe()))
                elif rc != 0:
                    problems.append("worker %s exited %d on SIGTERM\n%s" % (w.name, rc,
                                                                             w.describe()))
        for pidfile in self.group_pidfiles:
            try:
                with open(pidfile) as f:
                    pgid = int(f.read().split()[-1])
            except (OSError, ValueError, IndexError):
                continue
            for member in live_members_of_group(pgid):
                try:
                    os.kill(member, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for lst in self.listeners:
            lst.close()
        if problems:
            self.fail("\n".join(problems))

    # --- waiting ----------------------------------------------------------

    def wait_final(self, execution_id, timeout=20 * SLOW, worker=None,
                   final=("completed", "failed", "timeout", "cancelled", "abandoned")):
        """Polls the row until its status is one of `final`; returns the row."""
        deadline = time.monotonic() + timeout
        while True:
            row = self.db.execution(execution_id)
            if row["status"] in final:
                return row
            if time.monotonic() >= deadline:
                self.fail("execution %d still %s after %ss%s" % (
                    execution_id, row["status"], timeout,
                    "\n" + worker.describe() if worker else ""))
            time.sleep(0.05)

    def wait_all_final(self, ids, timeout, worker=None,
                       final=("completed", "failed", "timeout", "cancelled", "abandoned")):
        deadline = time.monotonic() + timeout
        while True:
            st = self.db.statuses(ids)
            pending = {i: s for i, s in st.items() if s not in final}
            if not pending:
                return st
            if time.monotonic() >= deadline:
                self.fail("%d of %d executions not finished after %ss (e.g. %r)%s" % (
                    len(pending), len(ids), timeout, list(pending.items())[:5],
                    "\n" + worker.describe() if worker else ""))
            time.sleep(0.1)

    def wait_status(self, execution_id, status, timeout=10 * SLOW, worker=None):
        return self.wait_final(execution_id, timeout, worker, final=(status,))


def wait_until_value(predicate, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def pid_gone(pid):
    return not alive(pid)


# `stdout` is there only when the action printed something that did not become `data`.
RESULT_KEYS = ("succeeded", "exit_code", "duration_ms", "stderr", "stdout_truncated",
               "stderr_truncated", "stdout_bytes_truncated", "stderr_bytes_truncated",
               "artifacts_dir")
