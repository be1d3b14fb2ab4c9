"""Looks at running actions from outside for secrets where they must never be:
/proc/PID/environ and /proc/PID/cmdline of the action and of a child it starts,
open file descriptors, files left under the artifacts directory or /tmp, and a
later execution that was not given them; and that a parameter file never
reaches the disk."""
import base64
import json
import os
import secrets as random_secrets
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

from support import (RUNTIMES, Run, WorkerTestCase, action_argv, b64decode,  # noqa: E402
                     open_fds, wait_for_file, worker_env)


def make_secrets():
    """Secret values, each holding a random marker that appears nowhere else."""
    markers = [random_secrets.token_hex(12) for _ in range(3)]
    values = {
        "api_token": "tok-%s" % markers[0],
        "multi_line": "first %s\nsecond line with 'quotes' and $VARS\n" % markers[1],
        "unicode_key": "schlüssel-🔑-%s-`id`" % markers[2],
    }
    return values, markers


def needles(values, markers):
    """Byte strings whose presence anywhere means a secret leaked."""
    out = set()
    for value in values.values():
        raw = value.encode("utf-8")
        out.add(raw)
        out.add(base64.b64encode(raw))
    for marker in markers:
        out.add(marker.encode())
    return out


def find_in_bytes(data, needle_set):
    return sorted(n for n in needle_set if n in data)


def on_device(path, dev):
    try:
        return os.lstat(path).st_dev == dev
    except OSError:
        return False


def scan_files(roots, needle_set, since, exclude=()):
    """[(path, needle)] for regular files under roots changed since `since` that hold a
    needle. Files that cannot be read (another user's, gone meanwhile) are skipped."""
    exclude = {os.path.realpath(p) for p in exclude}
    overlap = max(len(n) for n in needle_set)
    hits = []
    for root in roots:
        root_dev = os.lstat(root).st_dev
        for dirpath, dirnames, filenames in os.walk(root):
            # Stay on the temporary folder's own file system (not a /proc
            # mounted in some chroot below it).
            dirnames[:] = [d for d in dirnames if on_device(os.path.join(dirpath, d), root_dev)]
            for name in filenames:
                path = os.path.join(dirpath, name)
                try:
                    if os.path.realpath(path) in exclude:
                        continue
                    # Without blocking, checked on the descriptor: another test
                    # may swap a file for a FIFO at any moment.
                    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
                    with os.fdopen(fd, "rb") as f:
                        st = os.fstat(fd)
                        if not stat.S_ISREG(st.st_mode) or max(st.st_mtime, st.st_ctime) < since:
                            continue
                        tail = b""
                        while True:
                            chunk = f.read(1 << 20)
                            if not chunk:
                                break
                            window = tail + chunk
                            hits += [(path, n) for n in find_in_bytes(window, needle_set)]
                            tail = window[-overlap:]
                except OSError:
                    continue
    return hits


def temp_roots():
    roots = {"/tmp", tempfile.gettempdir()}
    if os.path.isdir("/dev/shm"):
        roots.add("/dev/shm")
    return sorted(r for r in roots if os.path.isdir(r))


def is_socket(target):
    return target.startswith("socket:")


def node_internal_fds(fds):
    """Descriptors Node.js opens for itself (libuv: epoll, eventfd, signal self-pipes,
    both ends of each pipe held by the process): these are not inherited."""
    pipes = {}
    for target in fds.values():
        if target.startswith("pipe:"):
            pipes[target] = pipes.get(target, 0) + 1
    return {fd for fd, target in fds.items()
            if fd > 3 and (target.startswith("anon_inode:")
                           or (target.startswith("pipe:") and pipes[target] >= 2))}


class RunningActionTest(WorkerTestCase):
    """For each runtime: an action that fetched its secrets and started a child
    (`sleep`), inspected while it waits."""

    def setUp(self):
        super().setUp()
        self.since = time.time() - 1
        self.values, self.markers = make_secrets()
        self.needles = needles(self.values, self.markers)
        self.secrets_path = self.secrets_file(self.values)

    def start_waiter(self, short):
        pidfile, gofile = self.path("pids.json"), self.path("go")
        argv = action_argv("testpack.waiter_" + short, artifacts_dir=self.artifacts,
                           secrets_file=self.secrets_path,
                           params={"pidfile": pidfile, "gofile": gofile,
                                   "secret_names": " ".join(sorted(self.values))})
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=worker_env(), cwd=self.tmp)

        def stop():
            open(gofile, "w").close()
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
        self.addCleanup(stop)
        if not wait_for_file(pidfile, 30, proc):
            proc.kill()
            out, err = proc.communicate()
            self.fail("the action did not start\n" + Run(argv, proc.returncode, out, err, 0).describe())
        with open(pidfile) as f:
            pids = json.load(f)
        return argv, proc, pids, gofile

    def finish(self, argv, proc, gofile):
        open(gofile, "w").close()
        start = time.monotonic()
        out, err = proc.communicate(timeout=60)
        run = Run(argv, proc.returncode, out, err, time.monotonic() - start)
        result = self.assertRun(run, 0, "completed")
        return run, result

    def check_proc_files(self, pid, what):
        for kind in ("environ", "cmdline"):
            try:
                with open("/proc/%d/%s" % (pid, kind), "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                self.fail("%s (pid %d) is gone before it could be inspected" % (what, pid))
            self.assertEqual(find_in_bytes(data, self.needles), [],
                             "secret found in /proc/%d/%s of the %s" % (pid, kind, what))

    def check_runtime(self, runtime, short):
        argv, proc, pids, gofile = self.start_waiter(short)
        action, child = pids["pid"], pids["child"]

        self.check_proc_files(action, "action")
        self.check_proc_files(child, "action's child")
        self.check_proc_files(proc.pid, "worker")

        fds = open_fds(action)
        if runtime == "node":
            extra = set(fds) - {0, 1, 2, 3} - node_internal_fds(fds)
        else:
            extra = set(fds) - {0, 1, 2, 3}
        self.assertEqual(extra, set(), "unexpected descriptors in the %s action: %r"
                         % (runtime, {fd: fds[fd] for fd in extra}))
        for fd in (0, 1, 2):
            self.assertIn(fd, fds)
        if runtime == "shell":
            self.assertNotIn(3, fds, "a shell action holds only 0, 1 and 2: %r" % fds)
        else:
            self.assertIn(3, fds, "the %s action has no control socket on fd 3" % runtime)
            self.assertTrue(is_socket(fds[3]), "fd 3 is not a socket: %s" % fds[3])
        # The child may still be starting (the loader and setlocale hold a file
        # open for an instant); an inherited descriptor stays for its whole life.
        child_fds = open_fds(child)
        deadline = time.monotonic() + 5
        while set(child_fds) != {0, 1, 2} and time.monotonic() < deadline:
            time.sleep(0.05)
            child_fds = open_fds(child)
        self.assertEqual(set(child_fds), {0, 1, 2},
                         "the action's child inherited descriptors: %r" % child_fds)

        run, result = self.finish(argv, proc, gofile)
        held = result.get("data", {}).get("held") if runtime != "shell" else \
            int(result["stdout"].split()[-1])
        self.assertEqual(held, len(self.values), "the action did not get its secrets")

        leaks = scan_files([self.artifacts], self.needles, 0)
        self.assertEqual(leaks, [], "secret in the artifacts")
        self.assertEqual(find_in_bytes(run.stdout + run.stderr, self.needles), [],
                         "secret in run-action's output")
        leaks = scan_files(temp_roots(), self.needles, self.since, exclude=[self.secrets_path])
        self.assertEqual(leaks, [], "secret in a file under a temporary directory")


def _running_test(runtime, short):
    def test(self):
        self.check_runtime(runtime, short)
    test.__doc__ = "%s action and its child, inspected from outside" % runtime
    return test


for _runtime, _short in RUNTIMES:
    setattr(RunningActionTest, "test_%s" % _runtime, _running_test(_runtime, _short))


class ParameterFileTest(WorkerTestCase):
    """File delivery: the parameter file lives in memory only."""

    def setUp(self):
        super().setUp()
        self.since = time.time() - 1

    def test_parameter_file_never_reaches_disk(self):
        marker = random_secrets.token_hex(16)
        needle = {marker.encode()}
        pidfile, gofile = self.path("pids.json"), self.path("go")
        argv = action_argv("testpack.waiter_file_sh", artifacts_dir=self.artifacts,
                           params={"pidfile": pidfile, "gofile": gofile, "marker": marker})
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=worker_env(), cwd=self.tmp)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        if not wait_for_file(pidfile, 30, proc):
            proc.kill()
            self.fail("the action did not start: %r" % (proc.communicate(),))
        with open(pidfile) as f:
            action = json.load(f)["pid"]
        with open("/proc/%d/environ" % action, "rb") as f:
            env = dict(e.split(b"=", 1) for e in f.read().split(b"\0") if b"=" in e)
        self.assertEqual(env[b"ATTUNE_PARAMETER_FILE"], b"/proc/self/fd/4")
        target = os.readlink("/proc/%d/fd/4" % action)
        self.assertTrue(target.startswith("/memfd:attune-parameters"), target)
        with open("/proc/%d/fd/4" % action, "rb") as f:
            self.assertIn(marker.encode(), f.read(), "the parameters are not in the file")
        self.assertEqual(stat.S_IMODE(os.stat("/proc/%d/fd/4" % action).st_mode), 0o400)
        while_running = scan_files([self.artifacts] + temp_roots(), needle, self.since)
        open(gofile, "w").close()
        out, err = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 0, err)
        after = scan_files([self.artifacts] + temp_roots(), needle, self.since)
        self.assertEqual(while_running + after, [], "parameters found on disk")


class SecretIsolationTest(WorkerTestCase):

    def setUp(self):
        super().setUp()
        self.values, self.markers = make_secrets()
        self.needles = needles(self.values, self.markers)

    REFS = (("shell", "testpack.echo_sh_stdin_json"), ("python", "testpack.echo_run_py_stdin"),
            ("node", "testpack.echo_run_js_stdin"))

    def got(self, runtime, entry):
        if runtime == "shell":
            return entry["status"] == 0
        return entry["type"] in ("str", "string")

    def test_second_execution_cannot_see_first_ones_secrets(self):
        names = " ".join(sorted(self.values))
        other = self.secrets_file({"unrelated": "nothing to see"})
        for runtime, ref in self.REFS:
            with self.subTest(runtime=runtime):
                first = self.run_ok(ref, params={"secret_names": names}, secrets=self.values)
                for name in self.values:
                    self.assertTrue(self.got(runtime, first.data["secrets"][name]), name)
                for label, kwargs in (("no secrets file", {}),
                                      ("another secrets file", {"secrets_file": other})):
                    second = self.run_ok(ref, params={"secret_names": names}, **kwargs)
                    for name in self.values:
                        self.assertFalse(self.got(runtime, second.data["secrets"][name]),
                                         "%s: %s still visible (%s)" % (runtime, name, label))

    def test_secrets_are_not_parameters_or_environment(self):
        names = " ".join(sorted(self.values))
        for short in ("sh", "py", "js"):
            for delivery in ("stdin", "file"):
                ref = "testpack.echo_%s_%s_json" % (short, delivery)
                with self.subTest(ref=ref):
                    run = self.run_ok(ref, params={"secret_names": names}, secrets=self.values)
                    report = run.data
                    raw = b64decode(report["input"])
                    self.assertEqual(find_in_bytes(raw, self.needles), [], "secret in parameters")
                    if short == "sh":
                        env = b"\0".join(b64decode(v) for v in report["env"].values())
                        for name in self.values:
                            self.assertEqual(report["secrets"][name]["status"], 0)
                    else:
                        env = json.dumps(report["environ"], ensure_ascii=False).encode()
                        for name in self.values:
                            self.assertIn(report["secrets"][name]["type"], ("str", "string"))
                    self.assertEqual(find_in_bytes(env, self.needles), [], "secret in environment")


if __name__ == "__main__":
    unittest.main()
