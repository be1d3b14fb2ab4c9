"""The end of a sandboxed execution in uid mode (as root): whatever the action left
behind on its uid dies with it, however it hid (a new session, a user and PID
namespace of its own, a process that is not dumpable and so owns no /proc entry),
and so does a process on that uid that the worker did not start; and a sandboxed
action starts without looking its uid up in the user database."""
import json
import os
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

from support import SOURCE_DIR, WORKER_BIN, WorkerTestCase, worker_env  # noqa: E402

UID_FIRST, UID_COUNT = 233000, 16
SANDBOX_ENV = {"ATTUNE__SANDBOX__MODE": "uid",
               "ATTUNE__SANDBOX__UID_RANGE": "%d+%d" % (UID_FIRST, UID_COUNT)}
PACK_YAML = "ref: sbxsw\nlabel: sbxsw\ndescription: test pack\nversion: 1.0.0\n"
# Each escaper in its own session; the action says which ones were running when
# it ended, so that a check of their death means something.
ESCAPE = r"""#!/usr/bin/env bash
setsid sleep 1000 < /dev/null > /dev/null 2>&1 &
daemon=$!
setsid python3 -c 'import ctypes, time; ctypes.CDLL(None).prctl(4, 0, 0, 0, 0); time.sleep(1000)' \
    < /dev/null > /dev/null 2>&1 &
undumpable=$!
setsid unshare -Urpf sleep 1000 < /dev/null > /dev/null 2>&1 &
namespaced=$!
sleep 0.5
alive() { kill -0 "$1" 2> /dev/null && echo true || echo false; }
printf '{"uid":%d,"daemon":%s,"undumpable":%s,"namespaced":%s}\n' "$(id -u)" \
    "$(alive $daemon)" "$(alive $undumpable)" "$(alive $namespaced)"
"""


def processes_of(uid):
    """Pids whose real uid is uid (read from status: a process that is not
    dumpable has its /proc folder owned by root)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/status" % name) as f:
                for line in f:
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid:
                            found.append(int(name))
                        break
        except OSError:
            pass
    return found


@unittest.skipUnless(os.geteuid() == 0, "the uid sandbox needs the worker to run as root")
class SandboxSweepTest(WorkerTestCase):

    def setUp(self):
        super().setUp()
        os.chmod(self.tmp, 0o755)
        self.packs = self.path("packs")
        actions = os.path.join(self.packs, "sbxsw", "actions")
        os.makedirs(actions)
        with open(os.path.join(self.packs, "sbxsw", "pack.yaml"), "w") as f:
            f.write(PACK_YAML)
        with open(os.path.join(actions, "escape.sh"), "w") as f:
            f.write(ESCAPE)
        os.chmod(os.path.join(actions, "escape.sh"), 0o755)
        with open(os.path.join(actions, "escape.yaml"), "w") as f:
            f.write("name: escape\nrunner_type: shell\nentry_point: escape.sh\n"
                    "output_format: json\n")
        with open(os.path.join(actions, "noop.sh"), "w") as f:
            f.write("#!/usr/bin/env bash\ntrue\n")
        os.chmod(os.path.join(actions, "noop.sh"), 0o755)
        with open(os.path.join(actions, "noop.yaml"), "w") as f:
            f.write("name: noop\nrunner_type: shell\nentry_point: noop.sh\n")

    def test_nothing_of_the_uid_survives(self):
        run = self.run_action("sbxsw.escape", packs_dir=self.packs, env=SANDBOX_ENV)
        data = self.assertRun(run, 0, "completed")["data"]
        self.assertTrue(data["daemon"] and data["undumpable"], data)
        left, deadline = processes_of(data["uid"]), time.monotonic() + 2
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = processes_of(data["uid"])
        for pid in left:
            os.kill(pid, 9)
        self.assertEqual(left, [], "processes of uid %d outlived the execution by 2 s"
                         % data["uid"])
        if not data["namespaced"]:
            self.skipTest("unshare -Urpf does not run here: the escaper in namespaces "
                          "of its own was not tried")

    def test_a_stranger_on_the_uid_dies_too(self):
        """A process on the uid that is no descendant of the worker (what a run-action
        killed mid-execution leaves, say) is counted and killed as well."""
        if not shutil.which("setpriv"):
            self.skipTest("setpriv is not installed")
        uid = UID_FIRST + UID_COUNT
        stranger = subprocess.Popen(["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid,
                                     "--clear-groups", "sleep", "1000"], start_new_session=True)
        self.addCleanup(stranger.wait)
        self.addCleanup(lambda: stranger.poll() is None and stranger.kill())
        deadline = time.monotonic() + 5
        while stranger.pid not in processes_of(uid) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertIn(stranger.pid, processes_of(uid), "the stranger did not start on its uid")
        env = dict(SANDBOX_ENV, ATTUNE__SANDBOX__UID_RANGE="%d+1" % uid,
                   ATTUNE__WORKER__MAX_CONCURRENT_TASKS="1")
        run = self.run_action("sbxsw.noop", packs_dir=self.packs, env=env)
        self.assertRun(run, 0, "completed")
        try:
            stranger.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.fail("a process on uid %d outlived an execution on that uid by 5 s" % uid)
        self.assertEqual(stranger.returncode, -9)

    def test_no_user_database_lookup(self):
        strace = shutil.which("strace")
        if not strace:
            self.skipTest("strace is not installed")
        packs = self.path("bench-packs")
        shutil.copytree(os.path.join(SOURCE_DIR, "bench", "packs"), packs)
        for ref in ("bench.noop_sh", "bench.noop_py", "bench.noop_js"):
            with self.subTest(ref=ref):
                trace = self.path("trace-%s.txt" % ref)
                argv = [strace, "-f", "-qq", "-e", "trace=openat,connect", "-o", trace,
                        WORKER_BIN, "run-action", "--packs-dir", packs, ref,
                        "--artifacts-dir", self.artifacts]
                # LeakSanitizer cannot run under ptrace: off in a sanitized build.
                env = worker_env(dict(SANDBOX_ENV, ASAN_OPTIONS="detect_leaks=0"))
                proc = subprocess.run(argv, env=env, cwd=self.tmp,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      timeout=90)
                self.assertEqual(proc.returncode, 0, proc.stderr.decode(errors="replace"))
                self.assertEqual(json.loads(proc.stdout)["status"], "completed")
                with open(trace) as f:
                    lookups = [line for line in f
                               if any(s in line for s in ("/etc/passwd", "nsswitch.conf",
                                                          "nscd/socket", "userdb"))]
                self.assertEqual(lookups, [], "the action looked its uid up")
