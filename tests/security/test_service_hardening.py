"""The service seen from outside and from one of its actions: its environment no
longer holds the encryption key or the passwords it was given there, it can
write no core file, and an action running as the worker's own user can open
neither its memory nor its environment (the worker is not dumpable)."""
import os
import shutil
import sys
import unittest
from urllib.parse import urlsplit

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

from service_support import ServiceTestCase, write_action_file, write_pack  # noqa: E402
from support import WORKER_BIN, skip_unless_reachable_by_others  # noqa: E402

# Tries what an attacker's action would: the worker is its parent.
PROBE_SH = r"""#!/usr/bin/env bash
try() {
  if (exec 9<"$1") 2>/dev/null; then echo opened; else echo denied; fi
}
printf '{"parent":%d,"environ":"%s","mem":"%s","maps":"%s","core_hard":"%s"}\n' \
  "$PPID" "$(try /proc/$PPID/environ)" "$(try /proc/$PPID/mem)" "$(try /proc/$PPID/maps)" \
  "$(ulimit -Hc)"
"""

NOBODY = 65534
SECRET_VARS = ("ATTUNE__SECURITY__ENCRYPTION_KEY", "ATTUNE__DATABASE__URL",
               "ATTUNE__MESSAGE_QUEUE__URL")


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def core_limit(pid):
    for line in read_bytes("/proc/%d/limits" % pid).decode().splitlines():
        if line.startswith("Max core file size"):
            return line.split()[4:6]
    raise AssertionError("no core line in /proc/%d/limits" % pid)


def children(pid):
    try:
        text = read_bytes("/proc/%d/task/%d/children" % (pid, pid)).decode()
    except OSError:
        return []
    return [int(c) for c in text.split()]


class ServiceHardeningTest(ServiceTestCase):

    @classmethod
    def setUpData(cls):
        write_pack(cls.packs_dir, "hard")
        write_action_file(cls.packs_dir, "hard", "probe.sh", PROBE_SH)
        pack = cls.db.insert_pack("hard")
        cls.probe = (cls.db.insert_action(pack, "hard", "probe", "probe.sh", output="json"),
                     "hard.probe")

    def needles(self, name):
        """What must not be in the worker's environment: each secret variable's value,
        and the passwords inside the URLs."""
        env = self.worker_env(name)
        out = {env[var].encode() for var in SECRET_VARS}
        for var in ("ATTUNE__DATABASE__URL", "ATTUNE__MESSAGE_QUEUE__URL"):
            password = urlsplit(env[var]).password
            if password:
                out.add(password.encode())
        return out

    def check_environ(self, pid, needles, what):
        environ = read_bytes("/proc/%d/environ" % pid)
        found = sorted(n for n in needles if n in environ)
        self.assertEqual(found, [], "secret in /proc/%d/environ of the %s" % (pid, what))
        return environ

    def test_environment_holds_no_secret(self):
        w = self.start_worker()
        needles = self.needles(w.name)
        environ = self.check_environ(w.pid, needles, "worker")
        # The variables are gone; the others are still there.
        variables = [e.split(b"=", 1)[0] for e in environ.split(b"\0") if b"=" in e]
        self.assertIn(b"ATTUNE__WORKER__NAME", variables)
        for kid in children(w.pid):  # the guardian, forked after the wipe
            self.check_environ(kid, needles, "guardian")

    def test_no_core_file_possible(self):
        w = self.start_worker()
        self.assertEqual(core_limit(w.pid), ["0", "0"])
        for kid in children(w.pid):
            self.assertEqual(core_limit(kid), ["0", "0"])

    def test_action_cannot_read_the_worker(self):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root to run the worker as another user")
        skip_unless_reachable_by_others(WORKER_BIN)
        setpriv = shutil.which("setpriv")
        if not setpriv:
            raise unittest.SkipTest("setpriv not found")
        artifacts = os.path.join(self.tmp, "artifacts-%s" % self._testMethodName)
        os.makedirs(artifacts, exist_ok=True)
        os.chown(artifacts, NOBODY, NOBODY)
        prefix = [setpriv, "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups"]
        w = self.start_worker(env={"ATTUNE__WORKER__ARTIFACTS_DIR": artifacts}, prefix=prefix)
        # Not dumpable: its private /proc files belong to root while it runs as nobody.
        for name in ("environ", "mem"):
            st = os.stat("/proc/%d/%s" % (w.pid, name))
            self.assertEqual(st.st_uid, 0, "/proc/PID/%s is the worker's user's: dumpable" % name)
        eid = self.db.insert_execution(self.probe[1], action_id=self.probe[0])
        self.broker.dispatch(w.id, eid, self.probe[1], None)
        row = self.wait_final(eid, worker=w)
        self.assertEqual(row["status"], "completed", "%r\n%s" % (row, w.describe()))
        data = row["result"]["data"]
        self.assertEqual(data["parent"], w.pid, "the action's parent is not the worker")
        self.assertEqual(data["environ"], "denied", "the action opened the worker's environ")
        self.assertEqual(data["mem"], "denied", "the action opened the worker's memory")
        self.assertEqual(data["maps"], "denied", "the action opened the worker's maps")
        self.assertEqual(data["core_hard"], "0")


if __name__ == "__main__":
    unittest.main()
