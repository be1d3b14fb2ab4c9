"""The compatibility fixture: attune-worker beside today's Attune services.

Each test class gets a fresh database built from upstream_schema.sql (Attune's
own DDL, not `attunectl migrate`) on the servers of `scripts/services`, and the
broker topology declared exactly as Attune's services declare it, before any
worker starts. The test then plays Attune's API and executor with independent
clients (psycopg2, pika, Python's cryptography): it writes pack, release,
runtime, action and execution rows the way they write them, picks the worker
the way the scheduler picks one, publishes the dispatch envelope the executor
publishes, and listens where the executor and notifier listen.

The facts come from /work/shared/ATTUNE-TODAY.md (sections named in the
comments) and upstream's source; see upstream_schema.sql for the tables."""
import base64
import hashlib
import json
import os
import random
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import unittest
import uuid
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import pika  # noqa: E402
import pika.exceptions  # noqa: E402
import psycopg2  # noqa: E402
import psycopg2.extras  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from support import WORKER_BIN, live_members_of_group  # noqa: E402
from service_support import (SLOW, EventListener, WorkerProcess, clean_env,  # noqa: E402
                             service_urls, with_database)

SCHEMA_FILE = os.path.join(HERE, "upstream_schema.sql")
FIXTURE_PACKS = os.path.join(HERE, "packs")
CTL_BIN = os.path.join(os.path.dirname(WORKER_BIN), "attunectl")

# 1.1: the exchanges every Attune service declares at startup.
EXCHANGES = (("attune.events", "topic"), ("attune.executions", "topic"),
             ("attune.notifications", "fanout"), ("attune.metadata", "topic"),
             ("attune.dlx", "direct"))
EXECUTIONS = "attune.executions"
DLX = "attune.dlx"
DLX_QUEUE = "attune.dlx.queue"
# 1.2: worker.{id}.executions as Attune's worker declares it. pika sends a str
# as an AMQP long string and 300000 as a signed 32-bit int, as lapin does.
WORKER_QUEUE_ARGUMENTS = {"x-dead-letter-exchange": DLX, "x-message-ttl": 300000}
# 1.2: worker.{id}.cancel carries the dead-letter exchange only, no TTL.
CANCEL_QUEUE_ARGUMENTS = {"x-dead-letter-exchange": DLX}

PACK_REF = "attune_it"
ENCRYPTION_KEY = "attune-compat-encryption-key-0123456789-abcdefgh"
API_URL = "http://attune-api.compat.invalid:8080"
SECRET_MARKER = {"$attune_secret": True, "redacted": True}
# A variable of the worker's own environment that must never reach an action.
LEAK_CANARY = ("AWS_SECRET_ACCESS_KEY", "worker-env-canary-do-not-leak")

READY_TIMEOUT = 20 * SLOW
RUN_TIMEOUT = 30 * SLOW
FINAL_STATUSES = ("completed", "failed", "timeout", "cancelled", "abandoned")

# The runtime rows of Attune's core pack (packs/core/runtimes; 3.9): the
# interpreter of each, and lowercase aliases as the pack loader stores them.
RUNTIMES = {
    "shell": {
        "ref": "core.shell", "name": "Shell", "aliases": ["shell", "bash", "sh"],
        "execution_config": {
            "interpreter": {"binary": "/bin/bash", "args": [], "file_extension": ".sh"},
            "inline_execution": {"strategy": "temp_file", "extension": ".sh",
                                 "inject_shell_helpers": True},
            # Runtime variables (3.9): templated; ATTUNE_* keys are ignored (5.3).
            "env_vars": {"AT_RT_PACK_DIR": "{pack_dir}",
                         "AT_RT_PATHLIKE": {"value": "{pack_dir}/lib", "operation": "prepend",
                                            "separator": ":"},
                         "ATTUNE_ACTION": "spoofed-by-the-runtime-row"},
        },
    },
    "python": {
        "ref": "core.python", "name": "Python", "aliases": ["python", "python3"],
        "execution_config": {
            "interpreter": {"binary": "python3", "args": ["-u"], "file_extension": ".py"},
        },
    },
    "node": {
        "ref": "core.nodejs", "name": "Node.js", "aliases": ["node", "nodejs", "node.js"],
        "execution_config": {
            "interpreter": {"binary": "node", "args": [], "file_extension": ".js"},
        },
    },
    # Native executables run as they are: no interpreter, so {} (3.9, 5.4).
    "native": {"ref": "core.native", "name": "Native", "aliases": ["native"],
               "execution_config": {}},
}


def normalize_runtime_name(name):
    """The scheduler's runtime-name normalisation (runtime_detection.rs)."""
    lower = name.strip().lower()
    return {"node": "node", "nodejs": "node", "node.js": "node", "python": "python",
            "python3": "python", "shell": "shell", "bash": "shell", "sh": "shell",
            "native": "native", "builtin": "native", "standalone": "native"}.get(lower, lower)


# --- crypto, as common/crypto.rs (section 4), by an independent implementation --

def encrypt_json(value, key_string=ENCRYPTION_KEY):
    """encrypt_json: AES-256-GCM with key SHA-256(key string), a random 12-byte
    nonce, over the compact JSON text of the value; base64(nonce || ciphertext
    || tag). The result is what goes into a JSONB column: a JSON string."""
    key = hashlib.sha256(key_string.encode("utf-8")).digest()
    nonce = os.urandom(12)
    plaintext = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.b64encode(nonce + AESGCM(key).encrypt(nonce, plaintext, None)).decode("ascii")


def key_hash(key_string=ENCRYPTION_KEY):
    return hashlib.sha256(key_string.encode("utf-8")).hexdigest()


def random_digest():
    """A release digest of our choosing: the worker must take the row's word for
    it and never hash the folder itself."""
    return hashlib.sha256(uuid.uuid4().bytes).hexdigest()


def now_rfc3339():
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


# --- the database: Attune's schema, rows written as the API and executor do ----

class UpstreamDatabase:
    """A fresh database holding upstream_schema.sql. Worker and execution ids
    start at random offsets, so that queue names and execution ids never meet
    those of another test on the shared broker."""

    def __init__(self, server_url):
        self.name = "attune_up_" + uuid.uuid4().hex[:16]
        self.admin_url = with_database(server_url, "postgres")
        self.url = with_database(server_url, self.name)
        self.conn = None
        admin = psycopg2.connect(self.admin_url)
        admin.autocommit = True
        try:
            with admin.cursor() as cur:
                cur.execute('CREATE DATABASE "%s" TEMPLATE template0' % self.name)
        finally:
            admin.close()
        self.conn = psycopg2.connect(self.url)
        self.conn.autocommit = True
        with open(SCHEMA_FILE, encoding="utf-8") as f:
            self.execute(f.read())
        # Upstream's services run every connection with this search_path
        # (common/db.rs, 3.1); the key trigger needs it for its lookups.
        self.execute("SET search_path TO attune, public")
        for table in ("worker", "execution"):
            self.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)",
                         ("attune." + table, random.randrange(10**6, 10**12)))

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

    def execute(self, sql, params=None):
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

    def jsonb_of(self, table, row_id):
        """A row as serde would serialise the model (the executable snapshot)."""
        return self.value("SELECT to_jsonb(t) FROM attune.%s t WHERE id = %%s" % table, (row_id,))

    # --- what the API writes --------------------------------------------------

    def insert_pack(self, ref, version="1.0.0"):
        return self.value(
            "INSERT INTO attune.pack (ref, label, description, version) "
            "VALUES (%s, %s, 'compatibility test pack', %s) RETURNING id",
            (ref, ref.replace("_", " ").title(), version))

    def insert_release(self, pack_id, pack_ref, version, digest):
        """A pack_release row and the pack's active_release (PR, 3.10)."""
        release_id = self.value(
            "INSERT INTO attune.pack_release (pack, pack_ref, version, digest, archive_path, "
            "content_path, archive_size, manifest) VALUES (%s, %s, %s, %s, NULL, %s, 0, %s) "
            "RETURNING id",
            (pack_id, pack_ref, version, digest, ".releases/sha256/%s/pack" % digest,
             psycopg2.extras.Json({"pack_ref": pack_ref, "version": version})))
        self.execute("UPDATE attune.pack SET active_release = %s WHERE id = %s",
                     (release_id, pack_id))
        return release_id

    def insert_runtime(self, spec, pack_id=None, pack_ref=None):
        return self.value(
            "INSERT INTO attune.runtime (ref, pack, pack_ref, description, name, aliases, "
            "distributions, installation, execution_config) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, '{}', %s) RETURNING id",
            (spec["ref"], pack_id, pack_ref, "%s runtime" % spec["name"], spec["name"],
             spec["aliases"],
             psycopg2.extras.Json({"verification": {"always_available": True}}),
             psycopg2.extras.Json(spec["execution_config"])))

    def insert_action(self, pack_id, pack_ref, name, entrypoint, runtime_id, delivery="stdin",
                      fmt="json", output="json", param_schema=None, out_schema=None,
                      timeout=None):
        return self.value(
            "INSERT INTO attune.action (ref, pack, pack_ref, label, description, entrypoint, "
            "runtime, param_schema, out_schema, parameter_delivery, parameter_format, "
            "output_format, timeout_seconds) "
            "VALUES (%s, %s, %s, %s, 'compatibility test action', %s, %s, %s, %s, %s, %s, %s, %s) "
            "RETURNING id",
            ("%s.%s" % (pack_ref, name), pack_id, pack_ref, name, entrypoint, runtime_id,
             None if param_schema is None else psycopg2.extras.Json(param_schema),
             None if out_schema is None else psycopg2.extras.Json(out_schema),
             delivery, fmt, output, timeout))

    def insert_identity(self, login):
        return self.value("INSERT INTO attune.identity (login, display_name) VALUES (%s, %s) "
                          "RETURNING id", (login, login))

    def insert_enforcement(self, rule_ref, trigger_ref):
        return self.value(
            "INSERT INTO attune.enforcement (rule_ref, trigger_ref, config, payload) "
            "VALUES (%s, %s, '{}', '{}') RETURNING id", (rule_ref, trigger_ref))

    def insert_key(self, local_ref, value, owner_type="system", owner_pack=None,
                   owner_action=None, encrypted=True, key_string=ENCRYPTION_KEY):
        """A key row as the API writes it (3.7): the value is JSONB, encrypted
        ones hold encrypt_json(value) (a JSON string) and the key's hash; the
        table's trigger fills owner, the *_ref columns and the canonical ref."""
        stored = encrypt_json(value, key_string) if encrypted else value
        return self.value(
            "INSERT INTO attune.key (local_ref, owner_type, owner_pack, owner_action, name, "
            "encrypted, encryption_key_hash, value) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
            "RETURNING id",
            (local_ref, owner_type, owner_pack, owner_action, local_ref, encrypted,
             key_hash(key_string) if encrypted else None, psycopg2.extras.Json(stored)))

    def insert_secret_value(self, execution_id, json_path, value, key_string=ENCRYPTION_KEY,
                            stored_hash=None):
        """One redacted parameter's value in execution_secret_value (3.6)."""
        return self.value(
            "INSERT INTO attune.execution_secret_value (entity_type, entity_id, json_path, "
            "source_kind, source_ref, encrypted_value, encryption_key_hash) "
            "VALUES ('execution_config', %s, %s, 'keystore', %s, %s, %s) RETURNING id",
            (execution_id, json_path, "system.compat_secret:%s" % json_path,
             psycopg2.extras.Json(encrypt_json(value, key_string)),
             stored_hash if stored_hash is not None else key_hash(key_string)))

    # --- what the executor writes ---------------------------------------------

    def insert_execution(self, action_id, release, config, worker_id, status="scheduled",
                         env_vars=None, trace_tag=None, enforcement=None, executor=None,
                         timeout_seconds=None, permission_set_refs=(), parent=None,
                         workflow_task=None):
        """An execution pinned to a release, as the executor leaves it just
        before dispatch (3.5): pack_release, its digest and the executable
        snapshot of the action and its runtime, the chosen worker; a workflow
        task also has its parent and workflow_task."""
        action = self.jsonb_of("action", action_id)
        runtime = self.jsonb_of("runtime", action["runtime"]) if action.get("runtime") else None
        snapshot = {
            "release": {"id": release["id"], "digest": release["digest"],
                        "content_path": ".releases/sha256/%s/pack" % release["digest"]},
            "executable": {"action": action, "runtime": runtime, "runtime_versions": [],
                           "workflow_definition": None},
            "pack_executables": {},
        }
        return self.value(
            "INSERT INTO attune.execution (action, action_ref, config, env_vars, enforcement, "
            "executor, permission_set_refs, worker, status, timeout_seconds, trace_tag, "
            "pack_release, pack_release_digest, executable_snapshot, parent, workflow_task) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (action_id, action["ref"],
             None if config is None else psycopg2.extras.Json(config),
             None if env_vars is None else psycopg2.extras.Json(env_vars),
             enforcement, executor, list(permission_set_refs), worker_id, status,
             timeout_seconds, trace_tag, release["id"], release["digest"],
             psycopg2.extras.Json(snapshot), parent,
             None if workflow_task is None else psycopg2.extras.Json(workflow_task)))

    def execution(self, execution_id):
        return self.row("SELECT id, action, action_ref, status::text AS status, result, worker, "
                        "started_at, updated FROM attune.execution WHERE id = %s",
                        (execution_id,))

    def worker_row(self, name):
        found = self.rows("SELECT id, name, worker_type::text AS worker_type, "
                          "worker_role::text AS worker_role, status::text AS status, "
                          "capabilities, host, port, last_heartbeat, cordoned, "
                          "now() - last_heartbeat AS heartbeat_age "
                          "FROM attune.worker WHERE name = %s", (name,))
        return found[0] if found else None

    def select_worker(self, runtime_name):
        """The scheduler's choice (3.4): action workers that are active, not
        cordoned, with a heartbeat no older than 90 s (3 x 30 s) and the
        runtime among capabilities.runtimes (names and aliases normalised),
        in name order."""
        runtime = self.row("SELECT name, aliases FROM attune.runtime WHERE lower(name) = %s "
                           "OR %s = ANY(aliases)", (runtime_name, runtime_name))
        wanted = {normalize_runtime_name(n) for n in [runtime["name"]] + runtime["aliases"]}
        chosen = []
        for w in self.rows("SELECT id, name, capabilities FROM attune.worker "
                           "WHERE worker_role = 'action' AND status = 'active' AND NOT cordoned "
                           "AND last_heartbeat IS NOT NULL "
                           "AND now() - last_heartbeat <= interval '90 seconds' ORDER BY name"):
            runtimes = (w["capabilities"] or {}).get("runtimes")
            if isinstance(runtimes, list) and any(
                    isinstance(r, str) and normalize_runtime_name(r) in wanted for r in runtimes):
                chosen.append(w)
        return chosen


# --- the broker: Attune's topology, the executor's dispatch ----------------------

def _amqp_params(url):
    params = pika.URLParameters(url)
    params.connection_attempts = 3
    params.retry_delay = 0.5
    params.socket_timeout = 10
    params.blocked_connection_timeout = 30
    return params


def declare_upstream_topology(channel):
    """1.1: the exchanges and the dead-letter queue exactly as Attune's
    services declare them (durable, not auto-delete, no arguments); a
    declaration that disagrees with what is on the broker closes the channel."""
    for name, kind in EXCHANGES:
        channel.exchange_declare(exchange=name, exchange_type=kind, durable=True,
                                 auto_delete=False, internal=False, arguments=None)
    channel.queue_declare(DLX_QUEUE, durable=True, exclusive=False, auto_delete=False,
                          arguments=None)
    channel.queue_bind(DLX_QUEUE, DLX, routing_key="#")


def dispatch_key(worker_id):
    return "execution.dispatch.worker.%d" % worker_id


def worker_queue(worker_id):
    return "worker.%d.executions" % worker_id


def cancel_key(worker_id):
    return "execution.cancel.worker.%d" % worker_id


def cancel_queue(worker_id):
    return "worker.%d.cancel" % worker_id


def cancel_envelope(execution_id, worker_id, source="api-service"):
    """2.2 and 6: ExecutionCancelRequested as the API's send_cancel_to_worker
    builds it: a fresh correlation id, the source service in the headers."""
    return {
        "message_id": str(uuid.uuid4()),
        "correlation_id": str(uuid.uuid4()),
        "message_type": "ExecutionCancelRequested",
        "version": "1.0",
        "timestamp": now_rfc3339(),
        "headers": {"retry_count": 0, "source_service": source},
        "payload": {"execution_id": execution_id, "worker_id": worker_id},
    }


class Executor:
    """The executor's side of the broker: a confirmed publishing channel."""

    def __init__(self, url):
        self.url = url
        self.conn = pika.BlockingConnection(_amqp_params(url))
        self.ch = self.conn.channel()
        self.ch.confirm_delivery()

    def close(self):
        try:
            if self.conn.is_open:
                self.conn.close()
        except pika.exceptions.AMQPError:
            pass

    def dispatch(self, worker_id, execution_id, action_ref, release_id, release_digest, config):
        """2.1 and 1.4-1.6: an ExecutionRequested envelope on attune.executions
        with the key execution.dispatch.worker.{id}; correlation_id equals
        message_id; AMQP properties as the publisher sets them (no headers
        table). Mandatory, so that a missing worker queue fails here at once."""
        message_id = str(uuid.uuid4())
        envelope = {
            "message_id": message_id,
            "correlation_id": message_id,
            "message_type": "ExecutionRequested",
            "version": "1.0",
            "timestamp": now_rfc3339(),
            "headers": {"retry_count": 0, "source_service": "executor"},
            "payload": {"execution_id": execution_id, "action_ref": action_ref,
                        "worker_id": worker_id, "release_id": release_id,
                        "release_digest": release_digest, "config": config},
        }
        props = pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                     message_id=message_id, correlation_id=message_id,
                                     timestamp=int(time.time()))
        self.ch.basic_publish(EXECUTIONS, dispatch_key(worker_id),
                              json.dumps(envelope, separators=(",", ":")).encode("utf-8"),
                              props, mandatory=True)
        return envelope

    def publish(self, routing_key, body, message_id=None, correlation_id=None):
        """Publishes raw bytes (or a dict, as compact JSON) on attune.executions,
        mandatory and confirmed: a key no queue is bound to fails here at once."""
        if isinstance(body, dict):
            body = json.dumps(body, separators=(",", ":")).encode("utf-8")
        props = pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                     message_id=message_id, correlation_id=correlation_id,
                                     timestamp=int(time.time()))
        self.ch.basic_publish(EXECUTIONS, routing_key, body, props, mandatory=True)

    def request_cancel(self, worker_id, execution_id, source="api-service"):
        """6: the cancel request the API (or the executor's workflow cascade)
        sends to the worker that runs the execution, on
        execution.cancel.worker.{id}."""
        envelope = cancel_envelope(execution_id, worker_id, source)
        self.publish(cancel_key(worker_id), envelope, envelope["message_id"],
                     envelope["correlation_id"])
        return envelope

    def queue_state(self, queue):
        """(ready messages, consumers) of a queue, or None if it does not exist."""
        ch = self.conn.channel()
        try:
            ok = ch.queue_declare(queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker:
            return None
        ch.close()
        return ok.method.message_count, ok.method.consumer_count

    def redeclare(self, declare):
        """Runs declare(channel) on a fresh channel; None if the broker took
        it, else the broker's refusal (the channel is closed by the broker)."""
        ch = self.conn.channel()
        try:
            declare(ch)
        except pika.exceptions.ChannelClosedByBroker as e:
            return "%s %s" % (e.reply_code, e.reply_text)
        ch.close()
        return None

    def delete_queue(self, queue):
        ch = self.conn.channel()
        try:
            ch.queue_delete(queue)
            ch.close()
        except pika.exceptions.ChannelClosedByBroker:
            pass


# --- one execution, seen from outside ------------------------------------------

class Run:
    """What a test sees of one execution: its row, and the worker's messages
    about it (status changes and the completion)."""

    def __init__(self, execution_id, row, events, completed):
        self.id = execution_id
        self.row = row
        self.events = events          # [(method, properties, envelope)] in order heard
        self.completed = completed    # the ExecutionCompleted envelope, or None

    @property
    def status(self):
        return self.row["status"]

    @property
    def result(self):
        return self.row["result"] or {}

    @property
    def data(self):
        """The action's parsed output (output_format json)."""
        data = self.result.get("data")
        return data if isinstance(data, dict) else {}

    def status_changes(self):
        return [env["payload"] for _, _, env in self.events
                if env.get("message_type") == "ExecutionStatusChanged"]

    def describe(self):
        heard = [(env.get("message_type"), env.get("payload", {}).get("new_status")
                  or env.get("payload", {}).get("status")) for _, _, env in self.events]
        return "execution %d: status %r\nresult: %s\nheard: %r" % (
            self.id, self.status, json.dumps(self.result)[:3000], heard)


# --- the test case --------------------------------------------------------------

class AttuneTestCase(unittest.TestCase):
    """A private upstream database, packs folder and broker clients per class.
    With `class_worker`, one worker is started for the whole class; tests
    that need their own start it with start_worker()."""

    maxDiff = 8000
    class_worker = True
    heartbeat_interval = None  # seconds; None keeps the worker's default

    @classmethod
    def setUpClass(cls):
        if not os.access(WORKER_BIN, os.X_OK):
            raise unittest.SkipTest("worker binary not found: %s" % WORKER_BIN)
        cls.urls = service_urls()
        cls.mq_url = cls.urls["ATTUNE__MESSAGE_QUEUE__URL"]
        cls.tmp = tempfile.mkdtemp(prefix="attune-compat-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        os.chmod(cls.tmp, 0o755)
        cls.packs_dir = os.path.join(cls.tmp, "packs")
        cls.artifacts_dir = os.path.join(cls.tmp, "artifacts")
        cls.runtime_envs_dir = os.path.join(cls.tmp, "runtime_envs")
        for d in (cls.packs_dir, cls.artifacts_dir, cls.runtime_envs_dir):
            os.makedirs(d)
            os.chmod(d, 0o755)
        cls.workers = []
        cls.db = UpstreamDatabase(cls.urls["ATTUNE__DATABASE__URL"])
        cls.addClassCleanup(cls.db.drop)
        cls.executor = Executor(cls.mq_url)
        cls.addClassCleanup(cls.executor.close)
        cls.addClassCleanup(cls._delete_worker_queues)
        err = cls.executor.redeclare(declare_upstream_topology)
        if err:
            raise AssertionError("the broker refused Attune's own topology: %s" % err)
        cls.setUpPack()
        cls.setUpData()
        cls.worker, cls.worker_error = None, None
        if cls.class_worker:
            # A worker that cannot start fails each test, so that every test
            # is reported on its own.
            try:
                cls.worker = cls.start_class_worker()
            except AssertionError as e:
                cls.worker_error = str(e)

    def setUp(self):
        if self.class_worker and self.worker is None:
            self.fail("the class's worker did not start: %s" % self.worker_error)

    @classmethod
    def tearDownClass(cls):
        for w in cls.workers:
            if w.alive():
                if w.terminate(20 * SLOW) is None:
                    w.kill()

    @classmethod
    def _delete_worker_queues(cls):
        try:
            for row in cls.db.rows("SELECT id FROM attune.worker"):
                for suffix in ("executions", "packs", "cancel", "packtests"):
                    cls.executor.delete_queue("worker.%d.%s" % (row["id"], suffix))
        except (pika.exceptions.AMQPError, psycopg2.Error):
            pass

    # --- the pack, its release and its runtimes ----------------------------------

    @classmethod
    def setUpPack(cls):
        """The pack at release 1.0.0 under a digest of our choosing, its code in
        {packs_base_dir}/.releases/sha256/{digest}/pack; a wrong, stale copy
        where an unpinned worker would look ({packs_base_dir}/{pack_ref}); the
        core runtimes."""
        cls.pack_id = cls.db.insert_pack(PACK_REF)
        digest = random_digest()
        cls.release = {"id": cls.db.insert_release(cls.pack_id, PACK_REF, "1.0.0", digest),
                       "digest": digest}
        cls.release_dir = os.path.join(cls.packs_dir, ".releases", "sha256", digest, "pack")
        shutil.copytree(os.path.join(FIXTURE_PACKS, PACK_REF), cls.release_dir)
        shutil.copytree(os.path.join(FIXTURE_PACKS, "wrong_copy"),
                        os.path.join(cls.packs_dir, PACK_REF))
        for root, dirs, files in os.walk(cls.packs_dir):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o755)
            for f in files:
                os.chmod(os.path.join(root, f), 0o755 if root.endswith("actions") else 0o644)
        cls.runtime_ids = {key: cls.db.insert_runtime(spec) for key, spec in RUNTIMES.items()}
        cls.actions = {}

    @classmethod
    def setUpData(cls):
        """Actions for the class (override); add_action() registers one."""

    @classmethod
    def add_action(cls, name, entrypoint, runtime, **kwargs):
        action_id = cls.db.insert_action(cls.pack_id, PACK_REF, name, entrypoint,
                                         cls.runtime_ids[runtime], **kwargs)
        cls.actions[name] = {"id": action_id, "ref": "%s.%s" % (PACK_REF, name),
                             "runtime": runtime}
        return action_id

    # --- workers --------------------------------------------------------------------

    @classmethod
    def worker_env(cls, name, extra=None):
        """The service's settings as ATTUNE__ variables (the worker reads its
        own and ignores the others): the C worker's keys and, where Attune's
        config names the same thing differently (artifacts_dir and
        runtime_envs_dir at the top level), Attune's too. ATTUNE_API_URL is
        what Attune's worker hands its actions (5.3)."""
        env = {
            "ATTUNE__DATABASE__URL": cls.db.url,
            "ATTUNE__DATABASE__SCHEMA": "attune",
            "ATTUNE__MESSAGE_QUEUE__URL": cls.mq_url,
            "ATTUNE__PACKS_BASE_DIR": cls.packs_dir,
            "ATTUNE__ARTIFACTS_DIR": cls.artifacts_dir,
            "ATTUNE__RUNTIME_ENVS_DIR": cls.runtime_envs_dir,
            "ATTUNE__WORKER__NAME": name,
            "ATTUNE__WORKER__ARTIFACTS_DIR": cls.artifacts_dir,
            "ATTUNE__SANDBOX__MODE": "none",
            "ATTUNE__SECURITY__ENCRYPTION_KEY": ENCRYPTION_KEY,
            "ATTUNE_API_URL": API_URL,
            LEAK_CANARY[0]: LEAK_CANARY[1],
        }
        if cls.heartbeat_interval is not None:
            env["ATTUNE__WORKER__HEARTBEAT_INTERVAL"] = str(cls.heartbeat_interval)
        env.update(extra or {})
        return clean_env(env)

    @classmethod
    def launch_worker(cls, name=None, extra=None):
        name = name or "compat-%s-%s" % (cls.__name__[:20].lower(), uuid.uuid4().hex[:8])
        w = WorkerProcess(name, cls.worker_env(name, extra), cls.tmp)
        cls.workers.append(w)
        return w

    @classmethod
    def wait_registered(cls, w, timeout=READY_TIMEOUT):
        """Ready as Attune sees a worker: its row is active and its queue has a
        consumer. Returns the worker id (from the row, not the log)."""
        deadline = time.monotonic() + timeout
        row = None
        while time.monotonic() < deadline:
            if w.proc.poll() is not None:
                raise AssertionError("worker exited during start\n" + w.describe())
            row = cls.db.worker_row(w.name)
            if row and row["status"] == "active":
                state = cls.executor.queue_state(worker_queue(row["id"]))
                if state and state[1] >= 1:
                    w.id = row["id"]
                    return row["id"]
            time.sleep(0.05)
        raise AssertionError("worker not registered with a consumer on its queue within %ss "
                             "(row: %r)\n%s" % (timeout, row, w.describe()))

    @classmethod
    def start_class_worker(cls):
        w = cls.launch_worker()
        cls.wait_registered(w)
        return w

    def start_worker(self, extra=None):
        w = self.launch_worker(extra=extra)
        self.addCleanup(self._stop_quietly, w)
        self.wait_registered(w)
        return w

    @staticmethod
    def _stop_quietly(w):
        if w.alive() and w.terminate(20 * SLOW) is None:
            w.kill()

    # --- executions -----------------------------------------------------------------

    def event_listener(self):
        lst = EventListener(self.mq_url)
        self.addCleanup(lst.close)
        return lst

    def choose_worker(self, runtime, worker=None):
        """The scheduler's pick for `runtime`, which must be our worker."""
        worker = worker or self.worker
        chosen = self.db.select_worker(runtime)
        ids = [w["id"] for w in chosen]
        self.assertIn(worker.id, ids, "the scheduler would not pick worker %s for runtime %r "
                      "(row: %r)\n%s" % (worker.name, runtime, self.db.worker_row(worker.name),
                                         worker.describe()))
        return worker.id

    def create_execution(self, action, config, worker=None, **kwargs):
        """An execution row for the action, pinned to the class's release and
        assigned to the worker the scheduler picks."""
        spec = self.actions[action]
        worker_id = self.choose_worker(spec["runtime"], worker)
        return self.db.insert_execution(spec["id"], self.release, config, worker_id, **kwargs)

    def dispatch(self, execution_id, config, worker=None, release=None):
        worker = worker or self.worker
        row = self.db.execution(execution_id)
        release = release or self.release
        return self.executor.dispatch(worker.id, execution_id, row["action_ref"],
                                      release["id"], release["digest"], config)

    def wait_run(self, execution_id, listener, timeout=RUN_TIMEOUT, worker=None):
        """Waits for the ExecutionCompleted message about the execution (the
        executor's signal), then for the row to be final; returns a Run."""
        worker = worker or self.worker

        def completed(_):
            return bool(listener.completed(execution_id))
        heard = listener.wait_for(completed, timeout)
        deadline = time.monotonic() + (10 * SLOW if heard else 0.1)
        row = self.db.execution(execution_id)
        while row["status"] not in FINAL_STATUSES and time.monotonic() < deadline:
            time.sleep(0.05)
            row = self.db.execution(execution_id)
        listener.pump(0.2)  # a status message published just after the completion
        done = listener.completed(execution_id)
        run = Run(execution_id, row, listener.events(execution_id),
                  done[-1][2] if done else None)
        if not heard:
            self.fail("no execution.completed for execution %d within %ss\n%s\n%s" % (
                execution_id, timeout, run.describe(), worker.describe()))
        return run

    def run_action(self, action, config, worker=None, timeout=RUN_TIMEOUT, **kwargs):
        """Creates, dispatches and waits for one execution."""
        listener = self.event_listener()
        eid = self.create_execution(action, config, worker=worker, **kwargs)
        self.dispatch(eid, config, worker=worker)
        return self.wait_run(eid, listener, timeout=timeout, worker=worker)

    # --- assertions -----------------------------------------------------------------

    def assertCompleted(self, run):
        wrong = (run.data.get("copy") == "wrong"
                 or '{"copy": "wrong"}' in str(run.result.get("stdout") or ""))
        self.assertFalse(wrong, "the stale copy at {packs_base_dir}/%s ran, not the pinned "
                         "release\n%s" % (PACK_REF, run.describe()))
        self.assertEqual(run.status, "completed", run.describe() + "\n" + self.worker.describe())
        self.assertIs(run.result.get("succeeded"), True, run.describe())
        self.assertEqual(run.result.get("exit_code"), 0, run.describe())

    def assertNothingRan(self, run, started_file):
        """A refused execution: the action (or the stale copy) never started."""
        self.assertFalse(os.path.exists(started_file), "the action ran\n" + run.describe())
        self.assertNotIn('"copy"', str(run.result.get("stdout") or ""),
                         "the stale copy ran\n" + run.describe())
        self.assertNotIn(run.result.get("exit_code"), (0, 42), run.describe())

    def assertReported(self, run, final, completed_status, action):
        """2.6 and 2.7: status changes on execution.status.changed (lowercase,
        running first, then the final status) and one execution.completed with
        the PascalCase status and the integer action id."""
        changes = run.status_changes()
        statuses = [c.get("new_status") for c in changes]
        self.assertTrue(statuses, "no execution.status.changed heard\n" + run.describe())
        self.assertEqual(statuses[-1], final, run.describe())
        if final != "failed" or "running" in statuses:
            self.assertEqual(statuses[0], "running", run.describe())
        for c in changes:
            self.assertEqual(c.get("execution_id"), run.id)
            self.assertEqual(c.get("action_ref"), self.actions[action]["ref"])
            self.assertIn(c.get("previous_status"),
                          ("requested", "scheduling", "scheduled", "running", "completed",
                           "failed", "canceling", "cancelled", "timeout", "abandoned",
                           "unknown"), c)
            self.assertIsInstance(c.get("changed_at"), str, c)
        for method, _, env in run.events:
            expected_key = ("execution.completed" if env["message_type"] == "ExecutionCompleted"
                            else "execution.status.changed")
            self.assertEqual((method.exchange, method.routing_key), (EXECUTIONS, expected_key),
                             env)
            self.assertEqual(env.get("version"), "1.0", env)
            self.assertIsInstance(env.get("headers", {}).get("retry_count"), int, env)
        done = run.completed
        self.assertIsNotNone(done, run.describe())
        payload = done["payload"]
        self.assertEqual(payload.get("status"), completed_status, done)
        self.assertIs(type(payload.get("action_id")), int, "action_id must be an integer: %r"
                      % payload.get("action_id"))
        self.assertEqual(payload["action_id"], self.actions[action]["id"], done)
        self.assertEqual(payload.get("action_ref"), self.actions[action]["ref"], done)
        self.assertEqual(payload.get("execution_id"), run.id, done)
        self.assertIsInstance(payload.get("completed_at"), str, done)
        completions = [e for e in run.events if e[2]["message_type"] == "ExecutionCompleted"]
        self.assertEqual(len(completions), 1,
                         "exactly one execution.completed\n" + run.describe())

    def assertRanFromRelease(self, run, path_key="script"):
        """The code came from the pinned release folder, which was also the
        working directory (5.5)."""
        release = os.path.realpath(self.release_dir)
        script = run.data.get(path_key) or ""
        if script and not os.path.isabs(script):
            script = os.path.join(run.data.get("cwd") or "/", script)
        self.assertTrue(os.path.realpath(script).startswith(release + os.sep),
                        "%s %r is not under the release %s\n%s" % (path_key, script, release,
                                                                  run.describe()))
        self.assertEqual(os.path.realpath(run.data.get("cwd") or "/"), release, run.describe())


def scan_for(marker, roots, since, exclude=()):
    """Regular files under `roots` changed since `since` (a time.time()) that
    contain `marker`; `exclude` are path prefixes not to enter."""
    needle = marker.encode("utf-8")
    exclude = tuple(os.path.realpath(e) for e in exclude if e)
    found = []
    seen = set()
    for root in roots:
        root_dev = os.lstat(root).st_dev
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            real = os.path.realpath(dirpath)
            if real in seen or any(real == e or real.startswith(e + os.sep) for e in exclude):
                dirnames[:] = []
                continue
            seen.add(real)
            # The root's own file system only (not a /proc or /sys mounted in a
            # chroot below /tmp).
            dirnames[:] = [d for d in dirnames if on_device(os.path.join(dirpath, d), root_dev)]
            for fn in filenames:
                path = os.path.join(dirpath, fn)
                try:
                    data = read_regular_file(path, since - 2, 64 << 20)
                except OSError:
                    continue
                if data is not None and needle in data:
                    found.append(path)
    return found


def on_device(path, dev):
    try:
        return os.lstat(path).st_dev == dev
    except OSError:
        return False  # gone meanwhile


def read_regular_file(path, since, max_size):
    """The content of path if it is a regular file changed since `since` and at
    most max_size bytes, else None. Opened without blocking and checked on the
    descriptor: another test may swap a file for a FIFO at any moment, and a
    blocking open of a FIFO would wait for a writer for ever."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_mtime < since or st.st_size > max_size:
            return None
        return f.read()


def services_dirs():
    """Where the test servers keep their files (their data legitimately holds
    what the test wrote to the database and the broker)."""
    dirs = [os.environ.get("ATTUNE_SERVICES_DIR") or "/tmp/attune-services"]
    dirs += [os.path.join("/tmp", d) for d in os.listdir("/tmp") if d.startswith("attune-pg-")]
    return dirs


def wait_gone(pgid, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not live_members_of_group(pgid):
            return True
        time.sleep(0.05)
    return not live_members_of_group(pgid)


def run_ctl(args, env, timeout=60):
    return subprocess.run([CTL_BIN] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout, cwd="/", env=clean_env(env))


