"""The database side of the service tests: a fresh database per test class on
the test server, migrated, with the rows the tests need written as Attune's
services write them."""
import glob
import os
import random
import re
import subprocess
import uuid

import psycopg2
import psycopg2.extras

from keys_support import encrypt_json, key_hash_of
from support import SOURCE_DIR, WORKER_BIN, cold_starts_default

CTL_BIN = os.path.join(os.path.dirname(WORKER_BIN), "attunectl")
MIGRATIONS_DIR = os.path.join(SOURCE_DIR, "migrations")
ENCRYPTION_KEY = "service-tests-encryption-key-0123456789-abcdef"


def with_database(url, name):
    """The same server URL with another database name."""
    return re.sub(r"/[^/?]*(\?.*)?$", "/" + name, url)


def clean_env(extra=None):
    """Our environment without any ATTUNE_* setting (a developer's ATTUNE_CONFIG,
    the test runner's own variables), plus `extra` (None values remove)."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("ATTUNE_")}
    for key, value in (cold_starts_default(extra) or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


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
