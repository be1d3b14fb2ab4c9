"""The worker's named prepared statements, seen from the database server: each
statement is parsed once per connection and executed by name after that, again
after the connection is lost; a statement the server cannot prepare fails its
queries with PostgreSQL's own message, and is prepared again once it can be;
with database.prepared_statements false, every statement is unnamed.

The server's own log is the witness: the test database gets
log_min_duration_statement = 0, so that the server logs every parse, bind and
execute of the worker's sessions (by backend pid) in the log file of
scripts/services."""
import collections
import os
import re
import shutil
import socket
import subprocess
import time
import unittest
from urllib.parse import urlsplit

from service_support import SLOW, ServiceTestCase, wait_until_value, write_action_file, write_pack

ECHO_SH = """#!/bin/bash
echo "done $ATTUNE_EXEC_ID"
"""

# "2026-12-02 08:30:01.123 UTC [4242] LOG:  duration: 0.120 ms  parse attune_ab12: WITH ..."
SERVER_LINE = re.compile(r"\[(\d+)\] LOG:  duration: [\d.]+ ms  (parse|bind|execute) (\S+?):")
CLAIM_START = "WITH prev AS (SELECT x.id, x.status"
PGBOUNCER = "/usr/sbin/pgbouncer"

# Transaction pooling as PgBouncer before 1.21 does it: a prepared statement
# stays on the server session it was prepared on, which the next transaction
# may not get. The worker's search_path option is not passed on (the database
# sets it, as docs/configuration.md asks behind PgBouncer).
PGBOUNCER_INI = """[databases]
{db} = host={host} port={port} dbname={db} user={user} password={password}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen}
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = 4
ignore_startup_parameters = options
logfile = {dir}/pgbouncer.log
pidfile = {dir}/pgbouncer.pid
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServicePreparedTest(ServiceTestCase):

    @classmethod
    def setUpData(cls):
        write_pack(cls.packs_dir, "prep")
        write_action_file(cls.packs_dir, "prep", "echo.sh", ECHO_SH)
        cls.db.insert_action(cls.db.insert_pack("prep"), "prep", "echo", "echo.sh")
        # Only the sessions opened on this database from now on (the worker's).
        cls.db.execute('ALTER DATABASE "%s" SET log_min_duration_statement = 0' % cls.db.name)
        data_dir = cls.db.value("SHOW data_directory")
        # scripts/services starts the server with pg_ctl -l PGDIR/postgres.log.
        cls.server_log = os.path.join(os.path.dirname(data_dir), "postgres.log")

    def setUp(self):
        super().setUp()
        if not os.access(self.server_log, os.R_OK):
            raise unittest.SkipTest("the server's log %s cannot be read" % self.server_log)
        self.log_offset = os.path.getsize(self.server_log)

    def server_lines(self, pids):
        """(pid, parse|bind|execute, statement name) logged since setUp by pids."""
        with open(self.server_log, "rb") as f:
            f.seek(self.log_offset)
            text = f.read().decode("utf-8", "replace")
        return [(int(m.group(1)), m.group(2), m.group(3)) for m in SERVER_LINE.finditer(text)
                if int(m.group(1)) in pids]

    def worker_backend(self, exclude=()):
        """The pid of the worker's database session (not one of exclude)."""
        found = []

        def look():
            found[:] = [r["pid"] for r in self.db.rows(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = 'attune-worker'") if r["pid"] not in exclude]
            return len(found) == 1
        self.assertTrue(wait_until_value(look, 10 * SLOW), "worker sessions: %r" % found)
        return found[0]

    def run_burst(self, w, count):
        ids = [self.db.insert_execution("prep.echo", {}) for _ in range(count)]
        for eid in ids:
            self.broker.dispatch(w.id, eid, "prep.echo", {})
        statuses = self.wait_all_final(ids, 60 * SLOW, worker=w)
        self.assertEqual(set(statuses.values()), {"completed"}, w.describe())
        return ids

    def claim_name(self, w):
        m = re.search(r"preparing statement (attune_[0-9a-f]+) on this connection: " +
                      re.escape(CLAIM_START), w.log())
        self.assertIsNotNone(m, "the claim was never prepared\n" + w.describe())
        return m.group(1)

    def test_prepared_once_per_connection_and_again_after_reconnect(self):
        w = self.start_worker(env={"ATTUNE__LOG__LEVEL": "debug",
                                   "ATTUNE__WORKER__MAX_CONCURRENT_TASKS": "4"})
        first = self.worker_backend()
        self.run_burst(w, 12)
        # The session ends under the worker: it reconnects, and its
        # statements are prepared again on the new session.
        self.db.execute("SELECT pg_terminate_backend(%s)", (first,))
        self.assertTrue(w.wait_log("database connection lost", 10 * SLOW), w.describe())
        second = self.worker_backend(exclude=(first,))
        self.run_burst(w, 12)

        lines = self.server_lines({first, second})
        claim = self.claim_name(w)
        for pid in (first, second):
            parses = collections.Counter(n for p, kind, n in lines if p == pid and kind == "parse")
            executes = collections.Counter(n for p, kind, n in lines
                                           if p == pid and kind == "execute")
            self.assertEqual(parses[claim], 1, "session %d: parses %r" % (pid, parses))
            self.assertGreaterEqual(executes[claim], 12, "session %d: %r" % (pid, executes))
            again = {n: c for n, c in parses.items() if c > 1}
            self.assertEqual(again, {}, "session %d parsed these more than once" % pid)
            self.assertNotIn("<unnamed>", parses, "session %d sent unnamed statements" % pid)
            # Every statement the session executed, it had prepared.
            self.assertLessEqual(set(executes), set(parses), "session %d" % pid)
        # The worker's own account agrees: each statement prepared once per session.
        prepared = re.findall(r"preparing statement (attune_[0-9a-f]+) on this connection",
                              w.log())
        server = [n for _, kind, n in lines if kind == "parse"]
        self.assertEqual(collections.Counter(prepared), collections.Counter(server))

    def test_switched_off_every_statement_is_unnamed(self):
        w = self.start_worker(env={"ATTUNE__LOG__LEVEL": "debug",
                                   "ATTUNE__DATABASE__PREPARED_STATEMENTS": "false"})
        session = self.worker_backend()
        self.run_burst(w, 6)
        parses = collections.Counter(n for p, kind, n in self.server_lines({session})
                                     if kind == "parse")
        self.assertGreaterEqual(parses["<unnamed>"], 6 * 3, parses)
        self.assertEqual(set(parses), {"<unnamed>"}, "named statements with the switch off")
        self.assertNotIn("preparing statement", w.log())

    def test_a_statement_that_cannot_be_prepared_fails_with_the_servers_message(self):
        w = self.start_worker(env={"ATTUNE__LOG__LEVEL": "debug",
                                   "ATTUNE__WORKER__MAX_CONCURRENT_TASKS": "4"})
        # The claim names this column: its Prepare fails, for the first claim
        # and for those sent behind it before the answer came.
        self.db.execute("ALTER TABLE attune.enforcement RENAME COLUMN trigger_ref TO tr_gone")
        try:
            ids = [self.db.insert_execution("prep.echo", {}) for _ in range(4)]
            for eid in ids:
                self.broker.dispatch(w.id, eid, "prep.echo", {})
            refused = r'returned to the queue'
            self.assertTrue(w.wait_log(refused, 20 * SLOW, count=8), w.describe())
        finally:
            self.db.execute("ALTER TABLE attune.enforcement RENAME COLUMN tr_gone TO trigger_ref")
        statuses = self.wait_all_final(ids, 60 * SLOW, worker=w)
        self.assertEqual(set(statuses.values()), {"completed"}, w.describe())
        log = w.log()
        requeued = [l for l in log.splitlines() if "returned to the queue" in l]
        wrong = [l for l in requeued if "en.trigger_ref does not exist" not in l]
        self.assertEqual(wrong, [], "claims failed with another message than the server's")
        # Not "prepared statement ... does not exist" for the claims sent behind
        # the failed Prepare, nor a fallback to unnamed statements.
        missing = [l for l in log.splitlines() if "prepared statement" in l]
        self.assertEqual(missing, [])
        self.assertNotIn("database connection lost", log, w.describe())

    def start_pgbouncer(self):
        """PgBouncer in transaction mode in front of this class's database; its URL."""
        if not os.access(PGBOUNCER, os.X_OK):
            raise unittest.SkipTest("PgBouncer is not installed (Debian package pgbouncer)")
        url = urlsplit(self.db.url)
        folder = os.path.join(self.tmp, "pgbouncer")
        os.makedirs(folder)
        listen = free_port()
        with open(os.path.join(folder, "pgbouncer.ini"), "w") as f:
            f.write(PGBOUNCER_INI.format(db=self.db.name, host=url.hostname, port=url.port,
                                         user=url.username, password=url.password,
                                         listen=listen, dir=folder))
        prefix = []
        if os.geteuid() == 0:  # PgBouncer refuses to run as root
            shutil.chown(folder, "postgres", "postgres")
            prefix = ["setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups"]
        proc = subprocess.Popen(prefix + [PGBOUNCER, os.path.join(folder, "pgbouncer.ini")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (proc.terminate(), proc.wait(10)))

        def listening():
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", listen)) == 0
        self.assertTrue(wait_until_value(listening, 10 * SLOW), "PgBouncer did not start")
        return "postgresql://%s:%s@127.0.0.1:%d/%s" % (url.username, url.password, listen,
                                                      self.db.name)

    def test_behind_a_pooler_that_loses_prepared_statements_it_falls_back_to_unnamed(self):
        self.db.execute('ALTER DATABASE "%s" SET search_path = "attune", public' % self.db.name)
        self.addCleanup(self.db.execute, 'ALTER DATABASE "%s" RESET search_path' % self.db.name)
        url = self.start_pgbouncer()
        w = self.start_worker(env={"ATTUNE__LOG__LEVEL": "debug", "ATTUNE__DATABASE__URL": url,
                                   "ATTUNE__WORKER__MAX_CONCURRENT_TASKS": "4"})
        self.run_burst(w, 8)
        # The pooler's server sessions end; its clients stay connected, and
        # their next transactions get new sessions without the statements.
        self.db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                        "datname = current_database() AND pid <> pg_backend_pid()")
        time.sleep(0.2)
        self.run_burst(w, 8)
        log = w.log()
        lost = [l for l in log.splitlines() if "lost a prepared statement" in l]
        self.assertEqual(len(lost), 1, w.describe())
        self.assertRegex(lost[0], r"prepared statement \"attune_[0-9a-f]+\" does not exist")
        after = log[log.index(lost[0]):]
        self.assertNotIn("preparing statement", after, "named statements after the fallback")
        self.run_burst(w, 4)
        self.stop_worker(w)  # while PgBouncer still runs: it marks its row inactive


if __name__ == "__main__":
    unittest.main()
