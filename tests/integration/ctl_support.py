"""Helpers for the tests of attunectl against the real servers started by
`scripts/services` (the ctest fixture `services`): a private database per test,
running attunectl, reading rows with psycopg2."""
import os
import random
import re
import shutil
import subprocess
import tempfile
import unittest
import uuid

import psycopg2
import psycopg2.extras

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.abspath(os.environ.get("ATTUNE_SOURCE_DIR") or os.path.join(HERE, "..", ".."))
WORKER_BIN = os.path.abspath(
    os.environ.get("ATTUNE_WORKER_BIN") or os.path.join(SOURCE_DIR, "build", "attune-worker"))
CTL_BIN = os.path.join(os.path.dirname(WORKER_BIN), "attunectl")
SERVICES = os.path.join(SOURCE_DIR, "scripts", "services")
EXAMPLES_DIR = os.path.join(SOURCE_DIR, "packs", "examples")
ENCRYPTION_KEY = "test-encryption-key-0123456789-abcdefghij"

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CONFIG, EXIT_TIMEOUT = 0, 1, 2, 78, 124


def service_urls():
    """{'ATTUNE__DATABASE__URL': ..., 'ATTUNE__MESSAGE_QUEUE__URL': ...} from
    `scripts/services env`."""
    proc = subprocess.run([SERVICES, "env"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=30)
    if proc.returncode != 0:
        raise RuntimeError("scripts/services env failed (are the services started?): "
                           + proc.stderr.strip())
    urls = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"^export (ATTUNE__[A-Z_]+)=(.*)$", line)
        if m:
            urls[m.group(1)] = m.group(2)
    return urls


def with_database(url, name):
    """The same server URL with another database name."""
    return re.sub(r"/[^/?]*(\?.*)?$", "/" + name, url)


class CtlTestCase(unittest.TestCase):
    """Each test gets its own database (dropped afterwards), a temporary
    directory, and the environment for attunectl pointing at both servers."""

    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        if not os.access(CTL_BIN, os.X_OK):
            raise unittest.SkipTest("attunectl not built: %s" % CTL_BIN)
        cls.urls = service_urls()

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="attunectl-test-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.dbname = "test_%s_%d_%s" % (self._testMethodName[:30].lower(), os.getpid(),
                                         uuid.uuid4().hex[:8])
        self.admin = psycopg2.connect(with_database(self.urls["ATTUNE__DATABASE__URL"],
                                                    "postgres"))
        self.admin.autocommit = True
        with self.admin.cursor() as cur:
            cur.execute('CREATE DATABASE "%s" TEMPLATE template0' % self.dbname)
        self.addCleanup(self._drop_database)
        self.db_url = with_database(self.urls["ATTUNE__DATABASE__URL"], self.dbname)
        self.mq_url = self.urls["ATTUNE__MESSAGE_QUEUE__URL"]
        self._conn = None

    def _drop_database(self):
        if self._conn is not None:
            self._conn.close()
        with self.admin.cursor() as cur:
            cur.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.dbname)
        self.admin.close()

    # --- running attunectl ---------------------------------------------------

    def env(self, extra=None):
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith("ATTUNE_")}
        env["ATTUNE__DATABASE__URL"] = self.db_url
        env["ATTUNE__MESSAGE_QUEUE__URL"] = self.mq_url
        env["ATTUNE__PACKS_BASE_DIR"] = os.path.join(SOURCE_DIR, "packs")
        for key, value in (extra or {}).items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def ctl(self, *args, stdin=None, env=None, timeout=60):
        """Runs attunectl; returns the CompletedProcess (text output)."""
        return subprocess.run([CTL_BIN] + list(args), input=stdin, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=self.env(env), cwd=self.tmp,
                              timeout=timeout, text=True)

    def describe(self, proc):
        return "argv: %r\nexit: %r\nstdout: %s\nstderr: %s" % (
            proc.args, proc.returncode, proc.stdout[:3000], proc.stderr[-3000:])

    def assertExit(self, proc, code):
        self.assertEqual(proc.returncode, code, self.describe(proc))
        return proc

    def assertOneLineError(self, proc, code, *needles):
        self.assertExit(proc, code)
        text = proc.stderr.strip()
        self.assertTrue(text, "stderr is empty\n" + self.describe(proc))
        self.assertEqual(len(text.splitlines()), 1, "not one line\n" + self.describe(proc))
        for needle in needles:
            self.assertIn(needle, text, self.describe(proc))

    def migrate(self):
        return self.assertExit(self.ctl("migrate"), EXIT_OK)

    def load_examples(self):
        return self.assertExit(self.ctl("pack", "load", EXAMPLES_DIR), EXIT_OK)

    # --- the test database ---------------------------------------------------

    @property
    def conn(self):
        if self._conn is None:
            self._conn = psycopg2.connect(self.db_url)
            self._conn.autocommit = True
        return self._conn

    def rows(self, sql, params=()):
        with self.conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(sql, params)
            return [dict(r) for r in cur.fetchall()] if cur.description else []

    def row(self, sql, params=()):
        found = self.rows(sql, params)
        self.assertEqual(len(found), 1, "expected one row from %s %r, got %r" % (sql, params,
                                                                                 found))
        return found[0]

    def value(self, sql, params=()):
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchone()[0]

    def execute(self, sql, params=()):
        with self.conn.cursor() as cur:
            cur.execute(sql, params)

    def insert_worker(self, name, status="active", heartbeat_age=0, runtimes=("shell",),
                      worker_id=None):
        """A worker row; heartbeat_age None means never. The id is random unless
        given, so that queue names do not meet those of tests running at the
        same time on the shared broker."""
        worker_id = worker_id or random.randrange(10**8, 10**12)
        heartbeat = None if heartbeat_age is None else "NOW() - make_interval(secs => %d)" % (
            heartbeat_age)
        self.execute(
            "INSERT INTO attune.worker (id, name, worker_role, status, host, capabilities, "
            "last_heartbeat) VALUES (%%s, %%s, 'action', %%s, 'testhost', "
            "jsonb_build_object('runtimes', %%s::jsonb), %s)"
            % (heartbeat or "NULL"),
            (worker_id, name, status, psycopg2.extras.Json(list(runtimes))))
        return worker_id
