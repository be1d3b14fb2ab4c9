"""Helpers for the tests of attunectl against the real servers started by
`scripts/services` (the ctest fixture `services`): a private database and
packs_base_dir per test, running attunectl, reading rows with psycopg2, and an
independent computation of Attune's pack release rule."""
import hashlib
import os
import random
import re
import shutil
import subprocess
import tempfile
import unittest
import uuid
import zlib

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


def remove_tree(path):
    """shutil.rmtree that also removes read-only trees (pack releases are)."""
    def retry(func, name, _exc):
        os.chmod(os.path.dirname(name), 0o755)
        if os.path.isdir(name) and not os.path.islink(name):
            os.chmod(name, 0o755)
        func(name)
    shutil.rmtree(path, onerror=retry)


# --- Attune's pack release rule, written from its source independently of
# attunectl's C code: publish_release, build_release_manifest and
# write_deterministic_archive in crates/common/src/pack_registry/storage.rs@03eeaa5b,
# with the tar crate's GNU headers and flate2's gzip header.

def release_files(root):
    """[(relative path, full path)] of the regular files below root, without
    .git at any depth, in bytewise order of the path."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames:
            if name != ".git":
                full = os.path.join(dirpath, name)
                found.append((os.path.relpath(full, root), full))
    return sorted(found, key=lambda entry: entry[0].encode())


def _octal(value, width):
    return ("%0*o" % (width - 1, value)).encode() + b"\0"


def _tar_header(name, size, mode, typeflag):
    h = bytearray(512)
    h[0:len(name)] = name
    h[100:108] = _octal(mode, 8)
    h[108:116] = _octal(0, 8)
    h[116:124] = _octal(0, 8)
    h[124:136] = _octal(size, 12)
    h[136:148] = _octal(0, 12)
    h[156] = typeflag
    h[257:265] = b"ustar  \0"
    h[148:156] = b" " * 8
    h[148:156] = _octal(sum(h), 8)
    return bytes(h)


def _pad(n):
    return b"\0" * ((512 - n % 512) % 512)


def upstream_release(root, pack_ref, version):
    """(digest, manifest, archive bytes) of the pack folder root."""
    tar, files = bytearray(), []
    for rel, full in release_files(root):
        with open(full, "rb") as f:
            data = f.read()
        executable = bool(os.stat(full).st_mode & 0o111)
        files.append({"path": rel, "size": len(data),
                      "sha256": hashlib.sha256(data).hexdigest(), "executable": executable})
        name = ("%s/%s" % (pack_ref, rel)).encode()
        if len(name) > 100:
            tar += _tar_header(b"././@LongLink", len(name) + 1, 0o644, ord("L"))
            tar += name + b"\0" + _pad(len(name) + 1)
            cut = 100
            while name[cut] & 0xC0 == 0x80:
                cut -= 1
            name = name[:cut - 2] if name[:cut].endswith(b"/.") else name[:cut]
        tar += _tar_header(name, len(data), 0o755 if executable else 0o644, 0)
        tar += data + _pad(len(data))
    tar += b"\0" * 1024
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15, 8)
    archive = (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + deflate.compress(bytes(tar))
               + deflate.flush() + zlib.crc32(tar).to_bytes(4, "little")
               + (len(tar) & 0xFFFFFFFF).to_bytes(4, "little"))
    manifest = {"format_version": 1, "pack_ref": pack_ref, "version": version, "files": files}
    return hashlib.sha256(archive).hexdigest(), manifest, archive


class CtlTestCase(unittest.TestCase):
    """Each test gets its own database (dropped afterwards), a temporary
    directory holding packs_base_dir (packs/, with a copy of the examples pack),
    and the environment for attunectl pointing at both servers."""

    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        if not os.access(CTL_BIN, os.X_OK):
            raise unittest.SkipTest("attunectl not built: %s" % CTL_BIN)
        cls.urls = service_urls()

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="attunectl-test-")
        self.addCleanup(remove_tree, self.tmp)
        self.packs_dir = os.path.join(self.tmp, "packs")
        self.examples_dir = os.path.join(self.packs_dir, "examples")
        shutil.copytree(EXAMPLES_DIR, self.examples_dir)
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
        env["ATTUNE__PACKS_BASE_DIR"] = self.packs_dir
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
        return self.assertExit(self.ctl("pack", "load", self.examples_dir), EXIT_OK)

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
