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
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import uuid

import pika.exceptions
import psycopg2

# The broker and database helpers, importable from here as before.
from broker_support import (DLX, DLX_QUEUE, EXCHANGE, WORKER_QUEUE_ARGUMENTS,  # noqa: F401
                            Broker, DeadLetterListener, EventListener, Listener, _params,
                            dispatch_key, marker_of, new_marker, now_rfc3339, request_envelope,
                            take_from_dead_letter_queue, worker_queue)
from db_support import (CTL_BIN, ENCRYPTION_KEY, MIGRATIONS_DIR, Database,  # noqa: F401
                        clean_env, with_database)
from support import (SOURCE_DIR, WORKER_BIN, alive, cold_starts_default,
                     live_members_of_group, sanitized_build)

SERVICES = os.path.join(SOURCE_DIR, "scripts", "services")
SOURCE_PACKS = os.path.join(SOURCE_DIR, "packs")

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
    """One `attune-worker` in service mode; its stderr (the log) goes to a file.
    `prefix` goes before the program (`setpriv ...` to run it as another user)."""

    def __init__(self, name, env, workdir, prefix=()):
        self.name = name
        self.log_path = os.path.join(workdir, "%s.log" % name)
        self.out_path = os.path.join(workdir, "%s.out" % name)
        self.id = None
        self.ready_ms = None
        self.returncode = None
        self.started = time.monotonic()
        with open(self.log_path, "ab") as log, open(self.out_path, "ab") as out:
            self.proc = subprocess.Popen(list(prefix) + [WORKER_BIN], stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=log, env=env, cwd=workdir)
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


# Workers without spare processes: every shell and node execution starts its
# interpreter cold (worker.spare_processes is 2 by default).
SPARES_OFF = {"ATTUNE__WORKER__SPARE_PROCESSES": "0"}


def spare_pids(worker_pid, runtime=None):
    """The worker's idle spare processes (of one runtime: "shell", "node",
    "python"): children running a wrapper with no entry (bash ... attune-spare,
    node -e WRAPPER, python3 ... --attune-spare), or a python child the fork
    server forked (the zygote's command line, not its name)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                comm, rest = f.read().split("(", 1)[1].rsplit(")", 1)
            ppid = int(rest.split()[1])
            with open("/proc/%s/cmdline" % name, "rb") as f:
                argv = f.read().split(b"\0")[:-1]
        except (OSError, ValueError, IndexError):
            continue
        if ppid != worker_pid or not argv:
            continue
        kind = None
        if argv[-1] == b"attune-spare":
            kind = "shell"
        elif len(argv) == 3 and argv[1] == b"-e":
            kind = "node"
        elif b"--attune-spare" in argv or (b"--attune-zygote" in argv and
                                           comm != "attune-zygote"):
            kind = "python"
        if kind and runtime in (None, kind):
            found.append(int(name))
    return sorted(found)


# --- the test case ------------------------------------------------------------

class ServiceTestCase(unittest.TestCase):
    """A private database and temporary directory per class; workers started by a
    test are stopped after it (SIGTERM, and exit status 0 is asserted)."""

    maxDiff = 6000
    encryption_key = ENCRYPTION_KEY
    # runtimes.python.fork_server of the workers the class starts: None for the
    # default (on), "false" to run the same tests with python actions started cold.
    python_fork_server = None
    # Configuration every worker of the class starts with, below a test's own
    # (a subclass with SPARES_OFF runs the same tests with cold starts only).
    worker_defaults = {}

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
            # Unsandboxed unless a test asks (see support.worker_env).
            "ATTUNE__SANDBOX__MODE": "none",
        }
        if self.python_fork_server is not None:
            env["ATTUNE__RUNTIMES__PYTHON__FORK_SERVER"] = self.python_fork_server
        env.update(self.worker_defaults)
        env.update(extra or {})
        return clean_env(env)

    def start_worker(self, name=None, env=None, wait=True, packs_dir=None, prefix=()):
        """Starts a worker (unique name unless given), waits until it says it is
        ready and its queue has a consumer; checks the id against its row."""
        name = name or "w-%s-%s" % (self._testMethodName[5:25], uuid.uuid4().hex[:8])
        w = WorkerProcess(name, self.worker_env(name, env, packs_dir), self.tmp, prefix)
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

    def assert_python_route(self, w):
        """The worker started the python fork server exactly when the class asks
        (a class that does not say follows ATTUNE_TEST_COLD)."""
        wanted = self.python_fork_server
        if wanted is None:
            wanted = cold_starts_default({}).get("ATTUNE__RUNTIMES__PYTHON__FORK_SERVER", "true")
        started = w.wait_log(r"python fork server ready", 5 * SLOW)
        self.assertEqual(started, wanted != "false",
                         "python fork server ready: %s\n%s" % (started, w.describe()))

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
