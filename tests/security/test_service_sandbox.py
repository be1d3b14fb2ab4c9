"""The sandbox's uid mode against the real service (the worker runs as root): an
action runs on a uid of its own, not root's; it cannot open the worker's environ or
memory, signal or ptrace another running execution, or read another execution's
files/ or an earlier result.json; a `setsid` daemon it leaves is gone 5 s after its
execution ended; and shell, Python and Node.js actions still get their parameters
and secrets, write files/ and return a result. With spare processes (the
default) and without."""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

from db_support import ENCRYPTION_KEY  # noqa: E402
from keys_support import insert_key  # noqa: E402
from service_support import (SPARES_OFF, ServiceTestCase, write_action_file,  # noqa: E402
                             write_pack)

UID_FIRST, UID_COUNT = 231000, 64
SANDBOX_ENV = {"ATTUNE__SANDBOX__MODE": "uid",
               "ATTUNE__SANDBOX__UID_RANGE": "%d+%d" % (UID_FIRST, UID_COUNT)}
SECRET = "sbx-secret-7c1f0e"

# What the action is and what it can reach of the worker (its parent).
PROBE_SH = r"""#!/usr/bin/env bash
try() { if (exec 9<"$1") 2>/dev/null; then echo opened; else echo denied; fi; }
echo probe > "$ATTUNE_ARTIFACTS_DIR/probe.txt"
printf '{"uid":%d,"gid":%d,"groups":"%s","parent":%d,"environ":"%s","mem":"%s","home":"%s",' \
  "$(id -u)" "$(id -g)" "$(id -G)" "$PPID" "$(try /proc/$PPID/environ)" \
  "$(try /proc/$PPID/mem)" "$HOME"
printf '"nnp":"%s","files":"%s"}\n' "$(grep NoNewPrivs /proc/self/status | cut -f2)" \
  "$(cat "$ATTUNE_ARTIFACTS_DIR/probe.txt")"
"""

# The victim: leaves a file in its files/, says where it is, waits to be told to end.
VICTIM_SH = r"""#!/usr/bin/env bash
echo "victim-data" > "$ATTUNE_ARTIFACTS_DIR/mine.txt"
printf '{"pid":%d,"files":"%s"}' $$ "$ATTUNE_ARTIFACTS_DIR" > "$PARAM_INFO.tmp"
mv "$PARAM_INFO.tmp" "$PARAM_INFO"
for _ in $(seq 600); do [ -e "$PARAM_GO" ] && exit 0; sleep 0.05; done
exit 3
"""

# The attacker: everything it tries against the victim and an earlier execution.
ATTACK_PY = r"""
import ctypes, errno, json, os

def outcome(fn):
    try:
        fn()
        return "allowed"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))

def read(path):
    with open(path, "rb") as f:
        f.read()

def ptrace(pid):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.ptrace(16, pid, None, None) != 0:  # PTRACE_ATTACH
        raise OSError(ctypes.get_errno(), "ptrace")
    libc.ptrace(17, pid, None, None)  # PTRACE_DETACH

def run(info, earlier, **secrets):
    with open(info) as f:
        victim = json.load(f)
    pid = victim["pid"]
    return {
        "signal": outcome(lambda: os.kill(pid, 0)),
        "ptrace": outcome(lambda: ptrace(pid)),
        "environ": outcome(lambda: read("/proc/%d/environ" % pid)),
        "files": outcome(lambda: read(os.path.join(victim["files"], "mine.txt"))),
        "listing": outcome(lambda: os.listdir(victim["files"])),
        "result": outcome(lambda: read(earlier)),
    }
"""

DAEMON_SH = r"""#!/usr/bin/env bash
setsid sleep 1000 < /dev/null > /dev/null 2>&1 &
echo $! > "$PARAM_PIDFILE.tmp"
mv "$PARAM_PIDFILE.tmp" "$PARAM_PIDFILE"
"""

NORMAL = {
    "shell": ("normal.sh", r"""#!/usr/bin/env bash
echo "$PARAM_WORD" > "$ATTUNE_ARTIFACTS_DIR/out.txt"
echo "x" > "$HOME/.dotfile"
printf '{"word":"%s","secret":"%s","uid":%d}\n' "$PARAM_WORD" "$(get_secret sbx_token | rev)" \
  "$(id -u)"
"""),
    "python": ("normal.py", r"""
import os
def run(word, **secrets):
    with open(os.path.join(os.environ["ATTUNE_ARTIFACTS_DIR"], "out.txt"), "w") as f:
        f.write(word + "\n")
    with open(os.path.join(os.environ["HOME"], ".dotfile"), "w") as f:
        f.write("x")
    return {"word": word, "secret": get_secret("sbx_token")[::-1], "uid": os.getuid()}
"""),
    "node": ("normal.js", r"""
const fs = require("fs"), path = require("path");
module.exports.run = async ({ word }) => {
  fs.writeFileSync(path.join(process.env.ATTUNE_ARTIFACTS_DIR, "out.txt"), word + "\n");
  fs.writeFileSync(path.join(process.env.HOME, ".dotfile"), "x");
  return { word, secret: [...(await getSecret("sbx_token"))].reverse().join(""), uid: process.getuid() };
};
"""),
}


def alive(pid):
    """Running, or a zombie nobody reaped."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            f.read()
        return True
    except OSError:
        return False


@unittest.skipUnless(os.geteuid() == 0, "the uid sandbox needs the worker to run as root")
class SandboxUidTest(ServiceTestCase):

    @classmethod
    def setUpData(cls):
        db = cls.db
        write_pack(cls.packs_dir, "sbx")
        write_action_file(cls.packs_dir, "sbx", "probe.sh", PROBE_SH)
        write_action_file(cls.packs_dir, "sbx", "victim.sh", VICTIM_SH)
        write_action_file(cls.packs_dir, "sbx", "attack.py", ATTACK_PY, 0o644)
        write_action_file(cls.packs_dir, "sbx", "daemon.sh", DAEMON_SH)
        pack = db.insert_pack("sbx")
        text = {"type": "string"}
        cls.probe = db.insert_action(pack, "sbx", "probe", "probe.sh", output="json")
        cls.victim = db.insert_action(pack, "sbx", "victim", "victim.sh",
                                      {"info": text, "go": text}, ["info", "go"])
        cls.attack = db.insert_action(pack, "sbx", "attack", "attack.py",
                                      {"info": text, "earlier": text}, ["info", "earlier"])
        cls.daemon = db.insert_action(pack, "sbx", "daemon", "daemon.sh", {"pidfile": text},
                                      ["pidfile"])
        cls.normal = {}
        for runtime, (entry, code) in NORMAL.items():
            write_action_file(cls.packs_dir, "sbx", entry, code, 0o644)
            name = "normal_" + runtime
            output = "json" if runtime == "shell" else "text"
            cls.normal[runtime] = db.insert_action(pack, "sbx", name, entry, {"word": text},
                                                   ["word"], output=output)
        insert_key(db, "sbx_token", SECRET, encrypted=True, key_string=ENCRYPTION_KEY)
        # Where the victim and the daemon tell the test (and the attacker) about themselves.
        cls.shared = os.path.join(cls.tmp, "shared")
        os.makedirs(cls.shared)
        os.chmod(cls.shared, 0o1777)

    def run_action(self, w, ref, action_id, params=None, wait=True):
        eid = self.db.insert_execution(ref, params=params, action_id=action_id)
        self.broker.dispatch(w.id, eid, ref, None)
        if not wait:
            return eid
        row = self.wait_final(eid, worker=w)
        self.assertEqual(row["status"], "completed", "%s: %r\n%s" % (ref, row, w.describe()))
        return row

    def start_sandboxed(self):
        return self.start_worker(env=SANDBOX_ENV)

    def test_own_uid_and_worker_unreachable(self):
        w = self.start_sandboxed()
        data = self.run_action(w, "sbx.probe", self.probe)["result"]["data"]
        self.assertTrue(UID_FIRST <= data["uid"] < UID_FIRST + UID_COUNT, data)
        self.assertEqual(data["gid"], data["uid"])
        self.assertEqual(data["groups"], str(data["uid"]))
        self.assertEqual(data["parent"], w.pid)
        self.assertEqual(data["environ"], "denied", "the action opened the worker's environ")
        self.assertEqual(data["mem"], "denied", "the action opened the worker's memory")
        self.assertEqual(data["nnp"], "1")
        self.assertEqual(data["files"], "probe")
        self.assertNotIn(data["home"], ("", "/", "/root"))

    def test_executions_cannot_reach_each_other(self):
        w = self.start_sandboxed()
        earlier = self.run_action(w, "sbx.probe", self.probe)
        earlier_result = os.path.join(earlier["result"]["artifacts_dir"], "result.json")
        self.assertTrue(os.path.exists(earlier_result))
        info, go = os.path.join(self.shared, "victim.json"), os.path.join(self.shared, "go")
        victim = self.run_action(w, "sbx.victim", self.victim, {"info": info, "go": go},
                                 wait=False)
        deadline = time.monotonic() + 30
        while not os.path.exists(info):
            self.assertLess(time.monotonic(), deadline, "the victim did not start\n" +
                            w.describe())
            time.sleep(0.05)
        try:
            row = self.run_action(w, "sbx.attack", self.attack,
                                  {"info": info, "earlier": earlier_result})
        finally:
            open(go, "w").close()
        self.assertEqual(self.wait_final(victim, worker=w)["status"], "completed")
        got = row["result"]["data"]
        self.assertEqual(got, {"signal": "EPERM", "ptrace": "EPERM", "environ": "EACCES",
                               "files": "EACCES", "listing": "EACCES", "result": "EACCES"})

    def test_setsid_daemon_is_gone_after_the_execution(self):
        w = self.start_sandboxed()
        pidfile = os.path.join(self.shared, "daemon.pid")
        self.run_action(w, "sbx.daemon", self.daemon, {"pidfile": pidfile})
        with open(pidfile) as f:
            pid = int(f.read())
        deadline = time.monotonic() + 5
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive(pid):
            os.kill(pid, 9)
            self.fail("the setsid daemon %d outlived its execution by 5 s" % pid)

    def test_normal_actions_of_every_runtime(self):
        w = self.start_sandboxed()
        self.assert_python_route(w)
        for runtime, action_id in self.normal.items():
            with self.subTest(runtime=runtime):
                row = self.run_action(w, "sbx.normal_" + runtime, action_id,
                                      {"word": "hi-" + runtime})
                result = row["result"]
                data = result["data"]
                self.assertEqual(data["word"], "hi-" + runtime)
                # Reversed: the result masks the secret itself.
                self.assertEqual(data["secret"], SECRET[::-1])
                self.assertTrue(UID_FIRST <= data["uid"] < UID_FIRST + UID_COUNT, data)
                out = os.path.join(result["artifacts_dir"], "files", "out.txt")
                with open(out) as f:
                    self.assertEqual(f.read(), "hi-%s\n" % runtime)

    def test_userns_is_refused_at_start(self):
        w = self.start_worker(env={"ATTUNE__SANDBOX__MODE": "userns"}, wait=False)
        self.assertEqual(w.wait(30), 78, w.describe())
        self.assertIn("sandbox.mode: userns is for a worker that is not root", w.log())


class SandboxUidColdTest(SandboxUidTest):
    """The same tests with every interpreter started cold: python without the fork
    server (runtimes.python.fork_server: false), shell and node without spare
    processes (worker.spare_processes: 0)."""

    python_fork_server = "false"
    worker_defaults = SPARES_OFF


if __name__ == "__main__":
    unittest.main()
