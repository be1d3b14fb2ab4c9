"""`attunectl execution tail ID [-f]` against a live worker in service mode: with
-f it shows each line a running action prints within a short bound of the
action writing it (the latencies are printed), and exits 0 once the execution
is final, with everything the action wrote; without -f, the logs of a
finished execution as the worker stored them (stdout.log on standard output,
stderr.log on standard error, or one of them with --stream); a secret the
action prints shows as `********`; an unknown execution, one no worker has
started, and one whose folder is on another host exit 1 with a one-line
reason."""
import os
import select
import statistics
import subprocess
import time
import unittest

from keys_support import insert_key
from service_support import (CTL_BIN, ENCRYPTION_KEY, SLOW, ServiceTestCase, clean_env,
                             write_action_file, write_pack)

LATENCY_BOUND = 2.0 * SLOW  # seconds; the aim is well under 200 ms
TICKS = 5

# Each tick carries the time it was written (bash's clock, no fork); a pause
# before the first (tail -f has started by then: what is measured is following,
# not catching up) and between ticks, so that each is written while it runs.
TICKS_SH = r'''#!/bin/bash
sleep 1
for i in $(seq 1 %d); do
  printf 'tick %%s %%s\n' "$i" "$EPOCHREALTIME"
  sleep 0.3
done
printf 'warning on stderr\n' >&2
sleep 0.5
printf 'tock\n'
''' % TICKS

LOGS_SH = r'''#!/bin/bash
for i in $(seq 1 50); do printf 'out %s\n' "$i"; printf 'err %s\n' "$i" >&2; done
printf 'no newline at the end'
'''

SECRET = "tail-Secret-9f3c2a7b"
SECRET_SH = r'''#!/bin/bash
printf 'the token is %s\n' "$(get_secret token)"
sleep 1
printf 'done\n'
'''

FINAL = ("completed", "failed", "timeout", "cancelled", "abandoned")


class CtlTailTest(ServiceTestCase):

    @classmethod
    def setUpClass(cls):
        if not os.access(CTL_BIN, os.X_OK):
            raise unittest.SkipTest("attunectl not built: %s" % CTL_BIN)
        super().setUpClass()

    @classmethod
    def setUpData(cls):
        db = cls.db
        write_pack(cls.packs_dir, "tail")
        write_action_file(cls.packs_dir, "tail", "ticks.sh", TICKS_SH)
        write_action_file(cls.packs_dir, "tail", "logs.sh", LOGS_SH)
        write_action_file(cls.packs_dir, "tail", "secret.sh", SECRET_SH)
        pack = db.insert_pack("tail")
        cls.ticks = (db.insert_action(pack, "tail", "ticks", "ticks.sh"), "tail.ticks")
        cls.logs = (db.insert_action(pack, "tail", "logs", "logs.sh"), "tail.logs")
        cls.secret = (db.insert_action(pack, "tail", "secret", "secret.sh"), "tail.secret")
        insert_key(db, "token", SECRET, "pack", pack=(pack, "tail"), encrypted=True,
                   key_string=ENCRYPTION_KEY)

    # --- attunectl ------------------------------------------------------------

    def ctl_env(self):
        return clean_env({
            "ATTUNE__DATABASE__URL": self.db.url,
            "ATTUNE__MESSAGE_QUEUE__URL": self.mq_url,
            "ATTUNE__PACKS_BASE_DIR": self.packs_dir,
            "ATTUNE__WORKER__ARTIFACTS_DIR": self.artifacts_dir,
        })

    def ctl(self, *args, timeout=60):
        return subprocess.run([CTL_BIN] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=self.ctl_env(), cwd=self.tmp,
                              timeout=timeout)

    def start_tail(self, eid, *extra):
        proc = subprocess.Popen([CTL_BIN, "execution", "tail", str(eid), "-f"] + list(extra),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=self.ctl_env(), cwd=self.tmp)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        return proc

    def describe(self, proc, out=b"", err=b"", worker=None):
        return "argv: %r\nexit: %r\nstdout: %r\nstderr: %r%s" % (
            proc.args, proc.returncode, out[-3000:], err[-3000:],
            "\n" + worker.describe() if worker else "")

    def assertOneLineError(self, proc, code, *needles):
        text = proc.stderr.decode().strip()
        self.assertEqual(proc.returncode, code, self.describe(proc, proc.stdout, proc.stderr))
        self.assertEqual(len(text.splitlines()), 1, self.describe(proc, proc.stdout, proc.stderr))
        for needle in needles:
            self.assertIn(needle, text)
        self.assertEqual(proc.stdout, b"")

    def run_to_end(self, w, action):
        eid = self.db.insert_execution(action[1], {}, action_id=action[0])
        self.broker.dispatch(w.id, eid, action[1], {})
        row = self.wait_final(eid, worker=w)
        self.assertEqual(row["status"], "completed", "%r\n%s" % (row, w.describe()))
        return eid, row

    def read_following(self, proc, timeout):
        """Reads tail -f's stdout and stderr until it exits; returns (stdout,
        stderr, [(time read, line)] of stdout)."""
        out, err, lines, partial = b"", b"", [], b""
        streams = {proc.stdout.fileno(): "out", proc.stderr.fileno(): "err"}
        deadline = time.monotonic() + timeout
        while streams:
            left = deadline - time.monotonic()
            if left <= 0:
                proc.kill()
                self.fail("tail -f still running after %ss\n%s" % (
                    timeout, self.describe(proc, out, err)))
            ready, _, _ = select.select(list(streams), [], [], left)
            for fd in ready:
                chunk = os.read(fd, 65536)
                now = time.time()
                if not chunk:
                    del streams[fd]
                elif streams[fd] == "err":
                    err += chunk
                else:
                    out += chunk
                    partial += chunk
                    while b"\n" in partial:
                        line, partial = partial.split(b"\n", 1)
                        lines.append((now, line.decode()))
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()
        return out, err, lines

    # --- following a running execution --------------------------------------------

    def test_follow_shows_lines_as_written_and_ends_with_the_execution(self):
        w = self.start_worker()
        eid = self.db.insert_execution(self.ticks[1], {}, action_id=self.ticks[0])
        proc = self.start_tail(eid)  # before the worker has it: tail waits for the folder
        self.broker.dispatch(w.id, eid, self.ticks[1], {})
        out, err, lines = self.read_following(proc, 60 * SLOW)
        self.assertEqual(proc.returncode, 0, self.describe(proc, out, err, w))
        self.assertIn(self.db.execution(eid)["status"], FINAL,
                      "tail -f exited before the execution was final")
        latencies = [seen - float(line.split()[2].replace(",", ".")) for seen, line in lines
                     if line.startswith("tick ")]
        self.assertEqual(len(latencies), TICKS, self.describe(proc, out, err, w))
        print("\ntail -f latency from write to output: median %.1f ms, max %.1f ms (%s)" % (
            statistics.median(latencies) * 1000, max(latencies) * 1000,
            ", ".join("%.1f" % (x * 1000) for x in latencies)))
        for latency in latencies:
            self.assertLess(latency, LATENCY_BOUND, "a line took %.3f s to show" % latency)
        self.assertEqual(lines[-1][1], "tock", self.describe(proc, out, err, w))
        self.assertEqual(err, b"warning on stderr\n", self.describe(proc, out, err, w))
        with open(os.path.join(self.artifacts_dir, w.name, str(eid), "stdout.log"), "rb") as f:
            self.assertEqual(out, f.read(), "tail -f printed other bytes than stdout.log")

    def test_follow_a_finished_execution_prints_it_and_exits(self):
        w = self.start_worker()
        eid, _ = self.run_to_end(w, self.logs)
        start = time.monotonic()
        proc = self.ctl("execution", "tail", str(eid), "-f", timeout=30)
        self.assertEqual(proc.returncode, 0, self.describe(proc, proc.stdout, proc.stderr))
        self.assertLess(time.monotonic() - start, 10)
        self.assertTrue(proc.stdout.startswith(b"out 1\n"), proc.stdout[:200])
        self.assertTrue(proc.stdout.endswith(b"out 50\nno newline at the end"))

    def test_secret_printed_by_the_action_shows_masked(self):
        w = self.start_worker()
        eid = self.db.insert_execution(self.secret[1], {}, action_id=self.secret[0])
        self.broker.dispatch(w.id, eid, self.secret[1], {})
        proc = self.start_tail(eid)
        out, err, lines = self.read_following(proc, 60 * SLOW)
        self.assertEqual(proc.returncode, 0, self.describe(proc, out, err, w))
        self.assertEqual([line for _, line in lines], ["the token is ********", "done"],
                         self.describe(proc, out, err, w))
        self.assertNotIn(SECRET.encode(), out + err)

    # --- a finished execution ----------------------------------------------------

    def test_finished_execution_prints_the_whole_logs(self):
        w = self.start_worker()
        eid, row = self.run_to_end(w, self.logs)
        folder = row["result"]["artifacts_dir"]
        with open(os.path.join(folder, "stdout.log"), "rb") as f:
            stdout_log = f.read()
        with open(os.path.join(folder, "stderr.log"), "rb") as f:
            stderr_log = f.read()
        self.assertEqual(stdout_log.count(b"\n"), 50)
        proc = self.ctl("execution", "tail", str(eid))
        self.assertEqual(proc.returncode, 0, self.describe(proc, proc.stdout, proc.stderr))
        self.assertEqual((proc.stdout, proc.stderr), (stdout_log, stderr_log))
        for stream, expected in (("stdout", stdout_log), ("stderr", stderr_log)):
            with self.subTest(stream=stream):
                proc = self.ctl("execution", "tail", str(eid), "--stream", stream)
                self.assertEqual(proc.returncode, 0, self.describe(proc, proc.stdout,
                                                                   proc.stderr))
                self.assertEqual((proc.stdout, proc.stderr), (expected, b""))

    # --- what cannot be shown ------------------------------------------------------

    def test_unknown_execution(self):
        for extra in ((), ("-f",)):
            with self.subTest(extra=extra):
                proc = self.ctl("execution", "tail", "987654321987", *extra, timeout=30)
                self.assertOneLineError(proc, 1, "execution 987654321987 not found")

    def test_help_lists_it(self):
        for args in (("--help",), ("execution", "--help")):
            with self.subTest(args=args):
                proc = self.ctl(*args)
                self.assertEqual(proc.returncode, 0, self.describe(proc, proc.stdout,
                                                                   proc.stderr))
                self.assertIn(b"execution tail ID [-f]", proc.stdout)
                self.assertIn(b"--stream", proc.stdout)
        proc = self.ctl("execution")
        self.assertEqual(proc.returncode, 2)
        self.assertIn(b"execution get ID | attunectl execution tail ID", proc.stderr)

    def test_bad_usage(self):
        for args in (("execution", "tail", "abc"), ("execution", "tail"),
                     ("execution", "tail", "1", "--stream", "all"),
                     ("execution", "get", "1", "-f")):
            with self.subTest(args=args):
                proc = self.ctl(*args)
                self.assertEqual(proc.returncode, 2, self.describe(proc, proc.stdout,
                                                                   proc.stderr))

    def test_another_user_cannot_read_the_logs(self):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root to run attunectl as nobody")
        w = self.start_worker()
        eid, _ = self.run_to_end(w, self.logs)
        proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                               CTL_BIN, "execution", "tail", str(eid)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=self.ctl_env(), cwd="/", timeout=60)
        self.assertOneLineError(proc, 1, "Permission denied",
                                os.path.join(self.artifacts_dir, w.name))

    def test_not_started(self):
        # Scheduled to a worker that has not claimed it yet: no folder, not an error of one.
        worker = self.insert_worker("w-later", os.uname().nodename)
        for status, assigned in (("requested", None), ("scheduled", worker)):
            with self.subTest(status=status):
                eid = self.db.insert_execution(self.ticks[1], {}, action_id=self.ticks[0],
                                               status=status, worker=assigned)
                proc = self.ctl("execution", "tail", str(eid))
                self.assertOneLineError(proc, 1, "execution %d" % eid,
                                        "no worker has started it (status %s)" % status)

    def insert_worker(self, name, host):
        return self.db.value(
            "INSERT INTO attune.worker (name, worker_role, status, host, capabilities, "
            "last_heartbeat) VALUES (%s, 'action', 'active', %s, '{}'::jsonb, NOW()) "
            "RETURNING id", (name, host))

    def test_folder_on_another_host(self):
        worker = self.insert_worker("w-elsewhere", "elsewhere.example")
        eid = self.db.insert_execution(self.ticks[1], {}, action_id=self.ticks[0],
                                       status="running", worker=worker)
        for extra in ((), ("-f",)):
            with self.subTest(extra=extra):
                proc = self.ctl("execution", "tail", str(eid), *extra, timeout=30)
                self.assertOneLineError(proc, 1, "execution %d" % eid, "elsewhere.example",
                                        "not on this host")

    def test_worker_name_is_not_a_path(self):
        worker = self.insert_worker("..", os.uname().nodename)
        eid = self.db.insert_execution(self.ticks[1], {}, action_id=self.ticks[0],
                                       status="completed", worker=worker)
        proc = self.ctl("execution", "tail", str(eid))
        self.assertOneLineError(proc, 1, "execution %d" % eid, "not a folder name")

    def test_a_log_that_is_a_symlink_is_not_followed(self):
        worker = self.insert_worker("w-planted", os.uname().nodename)
        eid = self.db.insert_execution(self.ticks[1], {}, action_id=self.ticks[0],
                                       status="completed", worker=worker)
        folder = os.path.join(self.artifacts_dir, "w-planted", str(eid))
        os.makedirs(folder, mode=0o700)
        os.symlink("/etc/passwd", os.path.join(folder, "stdout.log"))
        proc = self.ctl("execution", "tail", str(eid), "--stream", "stdout")
        self.assertOneLineError(proc, 1, os.path.join(folder, "stdout.log"))

    def test_follow_gives_up_when_the_worker_stops_heartbeating(self):
        worker = self.insert_worker("w-silent", os.uname().nodename)
        self.db.execute("UPDATE attune.worker SET last_heartbeat = NOW() - interval '1 hour' "
                        "WHERE id = %s", (worker,))
        eid = self.db.insert_execution(self.ticks[1], {}, action_id=self.ticks[0],
                                       status="running", worker=worker)
        folder = os.path.join(self.artifacts_dir, "w-silent", str(eid))
        os.makedirs(folder, mode=0o700)
        with open(os.path.join(folder, "stdout.log"), "w") as f:
            f.write("written before the worker went silent\n")
        proc = self.ctl("execution", "tail", str(eid), "-f", timeout=30)
        self.assertEqual(proc.returncode, 1, self.describe(proc, proc.stdout, proc.stderr))
        self.assertEqual(proc.stdout, b"written before the worker went silent\n")
        self.assertIn(b"worker w-silent stopped sending heartbeats", proc.stderr)
        self.assertIn(b"still running", proc.stderr)

    def test_folder_missing_on_this_host(self):
        worker = self.insert_worker("w-gone", os.uname().nodename)
        eid = self.db.insert_execution(self.ticks[1], {}, action_id=self.ticks[0],
                                       status="completed", worker=worker)
        proc = self.ctl("execution", "tail", str(eid), "-f", timeout=30)
        self.assertOneLineError(proc, 1, "execution %d" % eid,
                                os.path.join(self.artifacts_dir, "w-gone", str(eid)))


if __name__ == "__main__":
    unittest.main()
