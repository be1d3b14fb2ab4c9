"""Memory and file descriptor hygiene of the service: attune-worker-service runs
under valgrind (memcheck, --track-fds=yes) against the fault tests' servers, takes
about 30 requests of every kind (shell, python, node, secrets, failing, timed
out, unknown action, bad parameters, big output, malformed, duplicate, unknown
execution), then SIGTERM while one action still runs. It must exit 0 (valgrind's
--error-exitcode is 99), lose no memory (definitely and indirectly lost 0 bytes)
and leave no descriptor open but 0, 1 and 2. Skipped in sanitizer builds
(AddressSanitizer and valgrind do not mix)."""
import glob
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from faults_support import (SLOW, FaultTestCase, dispatch_key, new_marker, request_envelope, run_counts,
                            sanitized_build, ss, wait_until_value, worker_queue,
                            write_action_file, write_pack)
from keys_support import insert_key
from service_support import ENCRYPTION_KEY, READY_RE
from support import WORKER_BIN

SERVICE_BIN = os.path.join(os.path.dirname(WORKER_BIN), "attune-worker-service")
VALGRIND = shutil.which("valgrind")
VG_EXIT_ERRORS = 99

PY_RUN = '''"""Returns its parameters, doubled (keys arrive as parameters too)."""


def run(n, text="x", **keys):
    return {"n": n * 2, "text": text * 2}
'''
SECRET_PY = '''"""Returns the length of a secret."""


def run(**keys):
    return {"len": len(get_secret("token"))}  # noqa: F821
'''
NODE_RUN = '''module.exports.run = async (params) => ({ n: params.n + 1 });
'''
FAIL_SH = '''#!/bin/bash
echo "about to fail" >&2
exit 3
'''
SLEEP_SH = '''#!/bin/bash
read -r _ _ _ _ pgid _ </proc/$$/stat
echo "$ATTUNE_EXEC_ID $$ $pgid" >>"$PARAM_RUNLOG"
sleep "$PARAM_SECONDS"
'''
BIG_SH = '''#!/bin/bash
head -c 300000 /dev/zero | tr '\\0' 'a'
'''
SECRET_SH = '''#!/bin/bash
v=$(get_secret token)
echo "${#v}"
'''


def vg_summary(text):
    """The numbers of valgrind's LEAK SUMMARY, {kind: bytes}; {} when valgrind
    says all heap blocks were freed."""
    if re.search(r"All heap blocks were freed -- no leaks are possible", text):
        return {"definitely": 0, "indirectly": 0, "possibly": 0}
    out = {}
    for kind in ("definitely", "indirectly", "possibly"):
        m = re.search(r"%s lost: ([\d,]+) bytes" % kind, text)
        if m:
            out[kind] = int(m.group(1).replace(",", ""))
    return out


def vg_open_fds(text):
    """(count, [(fd, what, inherited)]) from the FILE DESCRIPTORS report at exit,
    or None without one. The count includes 0, 1 and 2, which valgrind 3.19
    does not list one by one ("N open (3 std)")."""
    m = re.search(r"FILE DESCRIPTORS: (\d+) open(?: \(\d+ std\))? at exit\.", text)
    if not m:
        return None
    listed = []
    lines = [re.sub(r"^==\d+== ?", "", l) for l in text[m.end():].splitlines()]
    for i, line in enumerate(lines):
        fd = re.match(r"Open (?:file|AF_\w+ socket|socket) descriptor (\d+):? ?(.*)", line)
        if not fd:
            if re.match(r"(HEAP|LEAK) SUMMARY", line):
                break
            continue
        block = []
        for follow in lines[i + 1:]:
            if not follow.strip() or follow.startswith("Open "):
                break
            block.append(follow.strip())
        listed.append((int(fd.group(1)), fd.group(2).strip(), "<inherited from parent>" in block))
    return int(m.group(1)), listed


def unexpected_fds(report, vg_log):
    """Descriptors open at exit other than 0, 1, 2 and valgrind's own log file
    (opened by valgrind before the program started, so it reports it as
    inherited from the parent)."""
    count, listed = report
    extra = [(fd, what) for fd, what, inherited in listed
             if fd > 2 and not (what == vg_log and inherited)]
    expected_count = 3 + sum(1 for fd, what, inherited in listed
                             if fd > 2 and what == vg_log and inherited)
    return extra, count == expected_count + len(extra)


@unittest.skipIf(sanitized_build(), "sanitizer build: valgrind runs in the optimised pass")
@unittest.skipIf(VALGRIND is None, "valgrind is not installed (scripts/install-deps)")
class ValgrindServiceTest(FaultTestCase):

    @classmethod
    def setUpData(cls):
        super().setUpData()
        p = "vg"
        write_pack(cls.packs_dir, p)
        files = {"run.py": PY_RUN, "secret.py": SECRET_PY, "run.js": NODE_RUN,
                 "fail.sh": FAIL_SH, "sleep.sh": SLEEP_SH, "big.sh": BIG_SH,
                 "secret.sh": SECRET_SH}
        for name, text in files.items():
            write_action_file(cls.packs_dir, p, name, text)
        pid = cls.db.insert_pack(p)
        cls.db.insert_action(pid, p, "py", "run.py", params={"n": {"type": "integer"},
                                                             "text": {"type": "string"}},
                             required=["n"], output="json")
        cls.db.insert_action(pid, p, "pysecret", "secret.py")
        cls.db.insert_action(pid, p, "js", "run.js", params={"n": {"type": "integer"}})
        cls.db.insert_action(pid, p, "fail", "fail.sh")
        cls.db.insert_action(pid, p, "sleep", "sleep.sh",
                             params={"runlog": {"type": "string"},
                                     "seconds": {"type": "number"}}, required=["runlog"])
        cls.db.insert_action(pid, p, "big", "big.sh")
        cls.db.insert_action(pid, p, "shsecret", "secret.sh", fmt="dotenv")
        insert_key(cls.db, "token", "s3cr3t-\u00e9\n-value", encrypted=True,
                   key_string=ENCRYPTION_KEY)
        cls.has_node = shutil.which("node") is not None

    def start_valgrind(self, name):
        vgdir = tempfile.mkdtemp(prefix="vg-", dir=self.tmp)
        config = os.path.join(vgdir, "config.yaml")
        with open(config, "w") as f:
            f.write("database:\n  url: %s\n  connect_timeout: 10\n"
                    "message_queue:\n  url: %s\n"
                    "security:\n  encryption_key: %s\n"
                    "packs_base_dir: %s\n"
                    "worker:\n  name: %s\n  artifacts_dir: %s\n  max_concurrent_tasks: 4\n"
                    "  heartbeat_interval: 1\n  max_stdout_bytes: 100000\n"
                    "  shutdown_timeout: 60\n"
                    # Unsandboxed: valgrind runs the sandbox's CLONE_VM helpers
                    # as forks, each reporting the worker's descriptors as its own.
                    "sandbox:\n  mode: none\n"
                    "log:\n  level: debug\n" % (
                        self.db.url, self.mq_url, self.encryption_key, self.packs_dir, name,
                        self.artifacts_dir))
        argv = [VALGRIND, "--leak-check=full", "--show-leak-kinds=definite,indirect",
                "--errors-for-leak-kinds=definite,indirect",
                "--error-exitcode=%d" % VG_EXIT_ERRORS, "--track-fds=yes",
                "--trace-children=no", "--num-callers=30",
                "--log-file=%s/vg.%%p" % vgdir, SERVICE_BIN, "-c", config]
        log = open(os.path.join(vgdir, "worker.log"), "wb")
        out = open(os.path.join(vgdir, "worker.out"), "wb")
        env = ss.clean_env({})
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=log,
                                env=env, cwd=vgdir)
        log.close()
        out.close()
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
        return proc, vgdir

    def valgrind_problems(self, path, text, who):
        """What is wrong in one process's valgrind log: errors, leaks, descriptors."""
        problems = []
        if not re.search(r"ERROR SUMMARY: 0 errors", text):
            problems.append("%s: valgrind reports errors" % who)
        leaks = vg_summary(text)
        if (leaks.get("definitely"), leaks.get("indirectly")) != (0, 0):
            problems.append("%s: leaks (bytes) %r" % (who, leaks))
        fds = vg_open_fds(text)
        if fds is None:
            problems.append("%s: no FILE DESCRIPTORS report" % who)
        else:
            extra, consistent = unexpected_fds(fds, path)
            if extra or not consistent:
                problems.append("%s: descriptors open at exit beyond 0, 1, 2 and valgrind's "
                                "log: %r (valgrind counts %d open)" % (who, extra, fds[0]))
        return problems

    def test_no_leak_no_fd_leak(self):
        name = "vg-%s" % new_marker()[3:15]
        began = time.monotonic()
        proc, vgdir = self.start_valgrind(name)
        log_path = os.path.join(vgdir, "worker.log")

        def log():
            with open(log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")

        main_log = os.path.join(vgdir, "vg.%d" % proc.pid)

        def vg_text():
            try:
                with open(main_log, errors="replace") as f:
                    return f.read()
            except FileNotFoundError:
                return ""

        def describe():
            vg = "\n".join(l for l in vg_text().splitlines() if not l.startswith("--"))[-8000:]
            return "exit %r\nworker log:\n%s\nvalgrind:\n%s" % (
                proc.poll(), "\n".join(log().splitlines()[-40:]), vg)

        self.assertTrue(wait_until_value(lambda: READY_RE.search(log()) or
                                         proc.poll() is not None, 120, 0.2),
                        "not ready under valgrind\n" + describe())
        m = READY_RE.search(log())
        self.assertIsNotNone(m, describe())
        wid = int(m.group(2))
        ready_after = time.monotonic() - began
        self.assertTrue(wait_until_value(lambda: (self.broker.queue_state(worker_queue(wid))
                                                  or (0, 0))[1] >= 1, 60))

        def req(ref, params=None, **kw):
            eid = self.db.insert_execution(ref, params, **kw)
            return eid

        plan = []  # (execution id, action ref, expected final status)
        for i in range(8):
            plan.append((req("flt.rec", {"runlog": self.runlog, "seconds": 0}), "flt.rec",
                         "completed"))
        for i in range(5):
            plan.append((req("vg.py", {"n": i, "text": "\u00e9"}), "vg.py", "completed"))
        plan.append((req("vg.pysecret", {}), "vg.pysecret", "completed"))
        plan.append((req("vg.shsecret", {}), "vg.shsecret", "completed"))
        if self.has_node:
            for i in range(2):
                plan.append((req("vg.js", {"n": i}), "vg.js", "completed"))
        for i in range(3):
            plan.append((req("vg.fail", {}), "vg.fail", "failed"))
        for i in range(2):
            plan.append((req("vg.sleep", {"runlog": self.runlog, "seconds": 20}, timeout=1),
                         "vg.sleep", "timeout"))
        plan.append((req("vg.big", {}), "vg.big", "completed"))
        plan.append((req("vg.py", {"text": "no n"}), "vg.py", "failed"))  # required missing
        plan.append((req("vg.nosuch", {}, action_id=None), "vg.nosuch", "failed"))
        for eid, ref, _ in plan:
            self.broker.dispatch(wid, eid, ref, None)
        # Malformed ones, a request for an execution that does not exist, and a
        # duplicate of one already sent.
        bad = [b"not json at all", b"[" * 5000,
               b'{"message_id": "x", "payload": {"execution_id": -1}}']
        for body in bad:
            self.broker.publish_body(dispatch_key(wid), body, message_id=new_marker())
        missing_id = self.db.value("SELECT max(id) FROM attune.execution") + 1000
        self.broker.publish_request(wid, request_envelope(missing_id, wid, "flt.rec", None))
        self.broker.dispatch(wid, plan[0][0], plan[0][1], None)

        ids = [eid for eid, _, _ in plan]
        statuses = self.wait_all_final(ids, 180 * SLOW)
        # Collected, not raised at once: the valgrind report is wanted anyway.
        problems = []
        wrong = {eid: (ref, statuses[eid], want) for eid, ref, want in plan
                 if statuses[eid] != want}
        if wrong:
            errors = {r["error"] for r in self.db.rows(
                "SELECT result->>'error' AS error FROM attune.execution WHERE id = ANY(%s)",
                (list(wrong),))}
            problems.append("executions that did not end as expected {id: (ref, got, "
                            "expected)}: %r; their errors: %r" % (wrong, sorted(errors)[:5]))
        self.assertTrue(wait_until_value(
            lambda: log().count("rejected to the dead-letter queue") >= len(bad) + 1, 60),
            describe())
        self.assertTrue(wait_until_value(lambda: re.search(
            r"execution %d is already \w+; acknowledged, not run again" % plan[0][0], log()), 60),
            describe())

        # One still running when SIGTERM comes: the drain path, then exit.
        last = req("vg.sleep", {"runlog": self.runlog, "seconds": 2})
        self.broker.dispatch(wid, last, "vg.sleep", None)
        if not wait_until_value(lambda: last in run_counts(self.runlog) or
                                self.db.execution(last)["status"] not in ("scheduled",
                                                                          "running"), 60):
            problems.append("the last action never started")
        elif last not in run_counts(self.runlog):
            problems.append("the last action never started (%s)" %
                            self.db.execution(last)["status"])
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(180)
        except subprocess.TimeoutExpired:
            proc.kill()
            self.fail("no exit within 180 s of SIGTERM\n" + describe())
        last_status = self.db.execution(last)["status"]
        if last_status != "completed":
            problems.append("the execution running at SIGTERM ended %s" % last_status)
        if rc != 0:
            problems.append("exit status %r%s" % (rc, " (valgrind found errors)" if
                                                   rc == VG_EXIT_ERRORS else ""))

        text = vg_text()
        report = "\n".join(l for l in text.splitlines() if not l.startswith("--"))
        problems += self.valgrind_problems(main_log, text, "the service")
        if "LEAK SUMMARY" not in text and "All heap blocks were freed" not in text:
            problems.append("valgrind's log of the service has no leak summary")
        # The guardian is forked, so valgrind follows it to its end too; the
        # actions are spawned and exec'd, so their logs stop at the exec.
        others = [p for p in glob.glob(os.path.join(vgdir, "vg.*")) if p != main_log]
        finished = 0
        for path in others:
            with open(path, errors="replace") as f:
                other = f.read()
            if "LEAK SUMMARY" in other or "All heap blocks were freed" in other:
                finished += 1
                problems += self.valgrind_problems(path, other, "forked process %s" %
                                                   os.path.basename(path))
                report += "\n" + "\n".join(l for l in other.splitlines()
                                            if not l.startswith("--"))
        if problems:
            self.fail("\n".join(problems) + "\n\nworker log:\n" +
                      "\n".join(log().splitlines()[-30:]) + "\n\nvalgrind:\n" +
                      report[-12000:])
        leaks = vg_summary(text)
        print("\nvalgrind: ready after %.1f s, whole run %.1f s, %d executions; service: %s, "
              "%d descriptors open at exit (%r); %d forked process(es) checked too" % (
                  ready_after, time.monotonic() - began, len(plan) + 1,
                  ", ".join("%s lost %d" % kv for kv in sorted(leaks.items())),
                  vg_open_fds(text)[0], vg_open_fds(text)[1], finished))


if __name__ == "__main__":
    unittest.main()
