"""The python fork server: two executions forked from one zygote cannot see each
other's parameters, secrets, module state or (sandboxed) files; each child's
parent is the worker and its name python3; and after an execution that used a
secret, the zygote's memory, read from outside through /proc/ZYGOTE/maps and
/proc/ZYGOTE/mem, holds neither the secret nor the parameters, though it does
hold a marker known to be there (so the scan is shown to work). Unsandboxed, and
in the uid sandbox as root."""
import os
import unittest
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

from keys_support import insert_key  # noqa: E402
from service_support import (ENCRYPTION_KEY, ServiceTestCase, write_action_file,  # noqa: E402
                             write_pack)
from support import skip_unless_reachable_by_others, zygotes_of  # noqa: E402

UID_FIRST, UID_COUNT = 237500, 16
# A module that does not exist: the zygote fails to import it (logged once) and
# keeps its name in its memory, which the scan must find.
MARKER = "attune_zygote_marker_%s" % uuid.uuid4().hex
PRELOAD = "colorsys, random, " + MARKER

STATE_PY = '''import builtins
import os
import random
import sys

# Before this module imports it: preloaded by the zygote, absent from a cold start.
FORKED = "colorsys" in sys.modules
import colorsys  # noqa: E402

LEFT = {"module": getattr(colorsys, "attune_left", None),
        "builtin": getattr(builtins, "attune_left", None),
        "sys": getattr(sys, "attune_left", None),
        "env": os.environ.get("ATTUNE_LEFT")}


def run(tag, peek="", **keys):
    secret = get_secret("fz_secret")  # noqa: F821
    mine = {"tag": tag, "secret": secret}
    colorsys.attune_left = builtins.attune_left = sys.attune_left = mine
    os.environ["ATTUNE_LEFT"] = tag
    files = os.environ["ATTUNE_ARTIFACTS_DIR"]
    with open(os.path.join(files, "mine.txt"), "w") as f:
        f.write(tag + secret)
    seen = None
    if peek:
        try:
            with open(os.path.join(peek, "mine.txt")) as f:
                seen = f.read()
        except OSError as e:
            seen = "denied: " + type(e).__name__
    with open("/proc/self/comm") as f:
        comm = f.read().strip()
    return {"forked": FORKED, "left": LEFT, "secret": secret[::-1], "files": files,
            "seen": seen, "parent": os.getppid(), "random": random.getrandbits(62), "comm": comm, "uid": os.getuid(),
            "environ": sorted(k for k in os.environ if k.startswith("ATTUNE_LEFT"))}
'''

# Leaves a daemon (a session of its own) that ends a moment after the action.
STRAY_PY = '''import os
import time


def run(**keys):
    middle = os.fork()
    if middle == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(0.3)
        os._exit(0)
    os.waitpid(middle, 0)
    return {}
'''


def zombie_children(pid):
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open("/proc/%s/stat" % entry) as f:
                text = f.read()
        except OSError:
            continue
        state, ppid = text[text.rindex(")") + 2:].split()[:2]
        if state == "Z" and int(ppid) == pid:
            found.append(int(entry))
    return found


def memory_contains(pid, needles):
    """Which of `needles` (bytes) the readable mappings of pid hold."""
    found = set()
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            if not fields[1].startswith("r"):
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            try:
                mem.seek(start)
                data = mem.read(end - start)
            except (OSError, ValueError, OverflowError):
                continue  # [vvar] and the like
            for needle in needles:
                if needle in data:
                    found.add(needle)
    return found


class ForkServerIsolationTest(ServiceTestCase):
    """Unsandboxed (sandbox.mode none): what two forked executions share is their
    interpreter's image, nothing of each other."""

    extra_env = {"ATTUNE__RUNTIMES__PYTHON__PRELOAD": PRELOAD,
                 "ATTUNE__RUNTIMES__PYTHON__FORK_SERVER": "true"}
    sandboxed = False

    @classmethod
    def setUpData(cls):
        db = cls.db
        write_pack(cls.packs_dir, "fz")
        write_action_file(cls.packs_dir, "fz", "state.py", STATE_PY, 0o644)
        pack = db.insert_pack("fz")
        text = {"type": "string"}
        cls.secrets = {}
        for name in ("a", "b"):
            action = db.insert_action(pack, "fz", name, "state.py", {"tag": text, "peek": text},
                                      ["tag"])
            cls.secrets[name] = "fz-secret-%s-%s" % (name, uuid.uuid4().hex)
            insert_key(db, "fz_secret", cls.secrets[name], "action", action=(action, "fz." + name),
                       encrypted=True, key_string=ENCRYPTION_KEY)
            setattr(cls, "action_" + name, action)
        # A pack that asks for cold starts in its pack.yaml.
        write_pack(cls.packs_dir, "fzcold")
        with open(os.path.join(cls.packs_dir, "fzcold", "pack.yaml"), "a") as f:
            f.write("python:\n  fork_server: false\n")
        write_action_file(cls.packs_dir, "fzcold", "state.py", STATE_PY, 0o644)
        cold = db.insert_pack("fzcold")
        cls.action_cold = db.insert_action(cold, "fzcold", "cold", "state.py",
                                           {"tag": text, "peek": text}, ["tag"])
        insert_key(db, "fz_secret", "fz-cold-secret", "pack", pack=(cold, "fzcold"),
                   encrypted=True, key_string=ENCRYPTION_KEY)
        write_action_file(cls.packs_dir, "fz", "stray.py", STRAY_PY, 0o644)
        cls.action_stray = db.insert_action(pack, "fz", "stray", "stray.py")

    def setUp(self):
        super().setUp()
        if self.sandboxed:
            skip_unless_reachable_by_others(
                os.path.join(self.packs_dir, "fz", "actions", "state.py"))

    def run_state(self, w, name, params, pack="fz"):
        ref = "%s.%s" % (pack, name)
        eid = self.db.insert_execution(ref, params, action_id=getattr(self, "action_" + name))
        self.broker.dispatch(w.id, eid, ref, params)
        row = self.wait_final(eid, worker=w)
        self.assertEqual(row["status"], "completed", "%s: %r\n%s" % (ref, row, w.describe()))
        return row["result"]["data"]

    def test_forked_executions_are_isolated_and_the_zygote_holds_no_secret(self):
        w = self.start_worker(env=self.extra_env)
        self.assertTrue(w.wait_log(r"python fork server ready", 10), w.describe())
        self.assertIn("cannot preload %s" % MARKER, w.log(), "a failed preload is not logged")
        zygotes = zygotes_of(w.pid)
        self.assertEqual(len(zygotes), 1, "no single zygote under the worker\n" + w.describe())
        tag_a = "param-a-%s" % uuid.uuid4().hex
        a = self.run_state(w, "a", {"tag": tag_a})
        tag_b = "param-b-%s" % uuid.uuid4().hex
        b = self.run_state(w, "b", {"tag": tag_b, "peek": a["files"]})
        self.assertEqual(zygotes_of(w.pid), zygotes, "the zygote changed between the two")

        for name, data in (("a", a), ("b", b)):
            self.assertTrue(data["forked"], "%s was not forked from the zygote: %r" % (name, data))
            self.assertEqual(data["parent"], w.pid, "the worker is not the child's parent")
            self.assertEqual(data["comm"], "python3")
            self.assertEqual(data["secret"], self.secrets[name][::-1], "its own secret")
            self.assertEqual(data["left"], {"module": None, "builtin": None, "sys": None,
                                            "env": None},
                             "%s saw what an earlier execution left: %r" % (name, data["left"]))
        # random is preloaded: each child must have been reseeded at its fork.
        self.assertNotEqual(a["random"], b["random"], "two children share the random state")
        if self.sandboxed:
            self.assertTrue(UID_FIRST <= b["uid"] < UID_FIRST + UID_COUNT, b)
            self.assertTrue(str(b["seen"]).startswith("denied"),
                            "b read a's files: %r" % b["seen"])

        # The zygote, read from outside: none of the executions' data, but the marker.
        secret = self.secrets["a"].encode()
        needles = [MARKER.encode(), secret, self.secrets["b"].encode(), tag_a.encode(),
                   tag_b.encode()]
        found = memory_contains(zygotes[0], needles)
        self.assertIn(MARKER.encode(), found, "the scan did not find the marker: it proves nothing")
        leaked = [n.decode() for n in needles[1:] if n in found]
        self.assertEqual(leaked, [], "the zygote's memory holds an execution's data")
        self.assertNotIn(self.secrets["a"], w.log())

    def test_a_pack_can_ask_for_cold_starts(self):
        w = self.start_worker(env=self.extra_env)
        self.assertTrue(w.wait_log(r"python fork server ready", 10), w.describe())
        cold = self.run_state(w, "cold", {"tag": "cold"}, pack="fzcold")
        self.assertFalse(cold["forked"], "pack.yaml says python.fork_server: false")
        self.assertEqual(cold["comm"], "python3")
        warm = self.run_state(w, "a", {"tag": "warm"})
        self.assertTrue(warm["forked"])

    def test_strays_are_reaped(self):
        """The worker is a child subreaper (in none mode for the fork server): what
        an action leaves is re-parented to it and reaped once it has exited."""
        w = self.start_worker(env=self.extra_env)
        self.assertTrue(w.wait_log(r"python fork server ready", 10), w.describe())
        self.run_state(w, "stray", {})
        time.sleep(1)  # the stray has ended, a zombie of the worker
        self.run_state(w, "a", {"tag": "after the stray"})
        self.assertEqual(zombie_children(w.pid), [], "the worker left zombies\n" + w.describe())


@unittest.skipUnless(os.geteuid() == 0, "the uid sandbox needs the worker to run as root")
class ForkServerUidIsolationTest(ForkServerIsolationTest):
    """The same in the uid sandbox: each child also on a uid of its own."""

    extra_env = {"ATTUNE__RUNTIMES__PYTHON__PRELOAD": PRELOAD, "ATTUNE__SANDBOX__MODE": "uid",
                 "ATTUNE__RUNTIMES__PYTHON__FORK_SERVER": "true",
                 "ATTUNE__SANDBOX__UID_RANGE": "%d+%d" % (UID_FIRST, UID_COUNT)}
    sandboxed = True


if __name__ == "__main__":
    unittest.main()
