"""The end of an execution that ran in a spare process in the sandbox's uid mode,
against the real service (as root): the sweep of its uid may come after
execution.completed, but a `setsid` escaper it left is dead within 2 s of the
end, and before the uid is handed to another execution; the escaper's files/
goes back to the worker, so that no later execution, on that uid or another,
can write there; the homes made ahead of executions are closed to them. When
the result cannot be recorded for a while (the worker's database connection
stalls), the escaper does not wait for it."""
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

from service_support import (SLOW, ServiceTestCase, spare_pids, wait_until_value,  # noqa: E402
                             write_action_file, write_pack)

# Three uids, one slot: spares take at most the two the slot never needs, so a
# uid comes back after two executions.
UID_FIRST, UID_COUNT = 237000, 3
SANDBOX_ENV = {"ATTUNE__SANDBOX__MODE": "uid",
               "ATTUNE__SANDBOX__UID_RANGE": "%d+%d" % (UID_FIRST, UID_COUNT),
               "ATTUNE__WORKER__MAX_CONCURRENT_TASKS": "1",
               "ATTUNE__WORKER__SPARE_PROCESSES": "1"}

# Leaves a daemon in a session of its own that keeps writing into files/.
ESCAPE_SH = r"""#!/usr/bin/env bash
setsid bash -c 'while :; do echo x >> "$0/late.txt"; sleep 0.01; done' \
    "$ATTUNE_ARTIFACTS_DIR" < /dev/null > /dev/null 2>&1 &
escaper=$!
sleep 0.1
printf '{"uid":%d,"pid":%d,"escaper":%d,"alive":%s}\n' "$(id -u)" $$ "$escaper" \
    "$(kill -0 "$escaper" 2> /dev/null && echo true || echo false)"
"""

# Leaves a daemon, says where it is, then waits to be told to end.
LINGER_SH = r"""#!/usr/bin/env bash
setsid sleep 1000 < /dev/null > /dev/null 2>&1 &
echo $! > "$PARAM_PIDFILE.tmp"
mv "$PARAM_PIDFILE.tmp" "$PARAM_PIDFILE"
for _ in $(seq 600); do [ -e "$PARAM_GO" ] && exit 0; sleep 0.05; done
exit 3
"""

# What a later execution finds on its uid, and whether it can write into the
# escaper's files/.
PROBE_SH = r"""#!/usr/bin/env bash
if (echo intruder > "$PARAM_OLD/intruder.txt") 2> /dev/null; then wrote=true; else wrote=false; fi
printf '{"uid":%d,"pids":[%s],"wrote":%s}\n' "$(id -u)" \
    "$(pgrep -u "$(id -u)" | paste -sd, -)" "$wrote"
"""


def alive(pid):
    """Running (a zombie waiting for its parent counts as dead)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


@unittest.skipUnless(os.geteuid() == 0, "the uid sandbox needs the worker to run as root")
class SweepAfterCompletionTest(ServiceTestCase):

    @classmethod
    def setUpData(cls):
        db = cls.db
        write_pack(cls.packs_dir, "swp")
        write_action_file(cls.packs_dir, "swp", "escape.sh", ESCAPE_SH)
        write_action_file(cls.packs_dir, "swp", "probe.sh", PROBE_SH)
        write_action_file(cls.packs_dir, "swp", "linger.sh", LINGER_SH)
        pack = db.insert_pack("swp")
        cls.escape = db.insert_action(pack, "swp", "escape", "escape.sh", output="json")
        cls.probe = db.insert_action(pack, "swp", "probe", "probe.sh",
                                     {"old": {"type": "string"}}, ["old"], output="json")
        text = {"type": "string"}
        cls.linger = db.insert_action(pack, "swp", "linger", "linger.sh",
                                      {"pidfile": text, "go": text}, ["pidfile", "go"])
        # Where the action tells the test about its daemon.
        cls.shared = os.path.join(cls.tmp, "shared")
        os.makedirs(cls.shared)
        os.chmod(cls.shared, 0o1777)

    def run_action(self, w, name, action_id, params=None):
        ref = "swp." + name
        eid = self.db.insert_execution(ref, params=params, action_id=action_id)
        self.broker.dispatch(w.id, eid, ref, params)
        row = self.wait_final(eid, worker=w)
        self.assertEqual(row["status"], "completed", "%s: %r\n%s" % (ref, row, w.describe()))
        return row["result"]

    def test_escaper_of_a_spare_dies_before_its_uid_is_reused(self):
        w = self.start_worker(env=SANDBOX_ENV)
        self.assertTrue(wait_until_value(lambda: spare_pids(w.pid), 10 * SLOW), w.describe())
        spares = spare_pids(w.pid)
        result = self.run_action(w, "escape", self.escape)
        ended = time.monotonic()
        data = result["data"]
        escaper, uid = data["escaper"], data["uid"]
        self.addCleanup(lambda: alive(escaper) and os.kill(escaper, 9))
        self.assertIn(data["pid"], spares, "the execution did not run in a spare")
        self.assertTrue(data["alive"], "the escaper did not start: %r" % data)
        self.assertTrue(wait_until_value(lambda: not alive(escaper), 2),
                        "the setsid escaper %d outlived its execution by 2 s" % escaper)
        self.assertLess(time.monotonic() - ended, 2.5)
        files = os.path.join(result["artifacts_dir"], "files")
        self.assertTrue(os.path.exists(os.path.join(files, "late.txt")))
        st = os.stat(files)
        self.assertEqual((st.st_uid, st.st_mode & 0o777), (0, 0o700),
                         "files/ was not taken back from uid %d" % uid)
        # The uids come round in turn: within a few executions one runs on the
        # escaper's uid again.
        seen = []
        for _ in range(2 * UID_COUNT):
            probe = self.run_action(w, "probe", self.probe, {"old": files})["data"]
            seen.append(probe["uid"])
            self.assertNotIn(escaper, probe["pids"], "the escaper ran beside %r" % probe)
            self.assertFalse(probe["wrote"], "uid %d wrote into the files/ of an execution "
                             "that ran on uid %d" % (probe["uid"], uid))
        self.assertIn(uid, seen, "uid %d was never handed out again (%r)" % (uid, seen))
        self.assertFalse(os.path.exists(os.path.join(files, "intruder.txt")))
        # The homes made ahead wait, the worker's and closed to others, beside
        # the executions' folders, and go with the worker.
        folder = os.path.dirname(result["artifacts_dir"])
        waiting = [n for n in os.listdir(folder) if n.startswith(".home-")]
        self.assertTrue(waiting, os.listdir(folder))
        for name in waiting:
            st = os.stat(os.path.join(folder, name))
            self.assertEqual((st.st_uid, st.st_mode & 0o777), (0, 0o700), name)
        self.stop_worker(w)
        self.assertEqual([n for n in os.listdir(folder) if n.startswith(".home-")], [])

    def worker_backends(self):
        """The database server processes of the worker's connections (the
        class's database is the worker's alone)."""
        return [r["pid"] for r in self.db.rows(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'attune-worker'")]

    def test_escaper_dies_while_the_result_waits_for_the_database(self):
        w = self.start_worker(env=SANDBOX_ENV)
        pidfile, go = os.path.join(self.shared, "linger.pid"), os.path.join(self.shared, "go")
        ref = "swp.linger"
        eid = self.db.insert_execution(ref, params={"pidfile": pidfile, "go": go},
                                       action_id=self.linger)
        self.broker.dispatch(w.id, eid, ref, None)
        self.assertTrue(wait_until_value(lambda: os.path.exists(pidfile), 20 * SLOW),
                        "the action did not start\n" + w.describe())
        with open(pidfile) as f:
            escaper = int(f.read())
        self.addCleanup(lambda: alive(escaper) and os.kill(escaper, 9))
        backends = self.worker_backends()
        self.assertTrue(backends, "the worker's database connection was not found")
        for pid in backends:
            os.kill(pid, signal.SIGSTOP)
            self.addCleanup(os.kill, pid, signal.SIGCONT)
        try:
            open(go, "w").close()
            self.assertTrue(wait_until_value(lambda: not alive(escaper), 2),
                            "the escaper %d waited for the database" % escaper)
            self.assertEqual(self.db.execution(eid)["status"], "running",
                             "the result was recorded: the database did not stall")
        finally:
            for pid in backends:
                os.kill(pid, signal.SIGCONT)
        self.assertEqual(self.wait_final(eid, worker=w)["status"], "completed")


if __name__ == "__main__":
    unittest.main()
