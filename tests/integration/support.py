"""Shared helpers for the black-box tests: run `attune-worker run-action`, read its
result and artifacts, look at processes in /proc. Standard library only."""
import base64
import hashlib
import json
import os
import re
import resource
import shutil
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.abspath(os.environ.get("ATTUNE_SOURCE_DIR") or os.path.join(HERE, "..", ".."))
WORKER_BIN = os.path.abspath(
    os.environ.get("ATTUNE_WORKER_BIN") or os.path.join(SOURCE_DIR, "build", "attune-worker"))
FIXTURE_PACKS = os.path.join(SOURCE_DIR, "tests", "fixtures", "packs")
TESTPACK_DIR = os.path.join(FIXTURE_PACKS, "testpack")
EXAMPLE_PACKS = os.path.join(SOURCE_DIR, "packs")


def skip_unless_reachable_by_others(*paths):
    """Skips the calling test when a user other than root cannot reach one of
    `paths` (a folder above it without o+x, or itself without o+r): tests that
    run the worker or an action under another uid need the build and the
    packs where that uid can open them (a checkout under /root is not)."""
    import stat as stat_mod
    import unittest as unittest_mod
    for path in paths:
        folder = os.path.dirname(os.path.abspath(path))
        while folder != os.path.dirname(folder):
            if not os.stat(folder).st_mode & stat_mod.S_IXOTH:
                raise unittest_mod.SkipTest(
                    "%s is not reachable by other users (%s lacks o+x)" % (path, folder))
            folder = os.path.dirname(folder)
        if not os.stat(path).st_mode & stat_mod.S_IROTH:
            raise unittest_mod.SkipTest("%s is not readable by other users" % path)
WORKER_NAME = "wtest"

EXIT_COMPLETED, EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT = 0, 1, 2, 124
EXEC_ID_RE = re.compile(r"^local-[0-9]+-[0-9]+$")

# The three runtimes, with the name part used by the fixture action files.
RUNTIMES = (("shell", "sh"), ("python", "py"), ("node", "js"))


def sanitized_build():
    return os.environ.get("ATTUNE_SANITIZED", "").strip().upper() in ("1", "ON", "TRUE", "YES")


# ATTUNE_TEST_COLD=1 in the test runner's environment: every worker a test
# starts runs each action cold (no Python fork server, no spare processes)
# unless the test sets those itself, so the suites can be run in both ways.
COLD_STARTS = {"ATTUNE__RUNTIMES__PYTHON__FORK_SERVER": "false",
               "ATTUNE__WORKER__SPARE_PROCESSES": "0"}


def cold_starts_default(extra):
    """extra with COLD_STARTS added where it sets neither, under ATTUNE_TEST_COLD=1."""
    if os.environ.get("ATTUNE_TEST_COLD") != "1":
        return extra
    return dict(COLD_STARTS, **(extra or {}))


def worker_env(extra=None):
    """The environment for the worker: ours without any ATTUNE_* setting that could
    change its behaviour (a developer's ATTUNE_CONFIG, say), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("ATTUNE_")}
    env["ATTUNE__WORKER__NAME"] = WORKER_NAME
    # Unsandboxed unless a test asks (the security tests do): the suite's
    # temporary folders are private to root, out of a sandbox user's reach.
    env["ATTUNE__SANDBOX__MODE"] = "none"
    for key, value in (cold_starts_default(extra) or {}).items():
        if value is None:
            env.pop(key, None)  # None removes a variable
        else:
            env[key] = value
    return env


class Run:
    """One finished run-action: exit status, raw output, parsed result."""

    def __init__(self, argv, rc, stdout, stderr, elapsed):
        self.argv = argv
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.elapsed = elapsed
        try:
            self.result = json.loads(stdout.decode("utf-8"))
        except ValueError:
            self.result = None

    @property
    def data(self):
        return (self.result or {}).get("data")

    def describe(self):
        return "argv: %r\nexit: %r\nstdout: %s\nstderr: %s" % (
            self.argv, self.rc, self.stdout[:3000].decode("utf-8", "replace"),
            self.stderr[-3000:].decode("utf-8", "replace"))


def write_secrets_file(directory, secrets, fmt="json", ensure_ascii=False):
    fd, path = tempfile.mkstemp(prefix="secrets-", suffix="." + fmt, dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        if fmt == "json":
            json.dump(secrets, f, ensure_ascii=ensure_ascii)
        else:
            f.write(secrets)  # YAML text, written by the caller
    return path


def action_argv(ref, params=None, p=(), secrets_file=None, timeout=None, artifacts_dir=None,
                packs_dir=FIXTURE_PACKS, config=None, extra_args=()):
    argv = [WORKER_BIN]
    if config:
        argv += ["-c", config]
    argv += ["run-action"]
    if packs_dir:
        argv += ["--packs-dir", packs_dir]
    argv.append(ref)
    for assignment in p:
        argv += ["-p", assignment]
    if params is not None:
        argv += ["--params-json", json.dumps(params, ensure_ascii=False)]
    if secrets_file:
        argv += ["--secrets-file", secrets_file]
    if timeout is not None:
        argv += ["--timeout", str(timeout)]
    if artifacts_dir:
        argv += ["--artifacts-dir", artifacts_dir]
    argv += list(extra_args)
    return argv


def argv_size(argv):
    return sum(len(a.encode()) + 1 for a in argv)


def big_argv_limits():
    """In the child before exec: ARG_MAX is a quarter of the stack limit, so raise it
    for command lines of several MiB (each single argument stays below 128 KiB)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    want = 256 << 20
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_STACK, (want, hard))


def chunked_params(prefix, total, chunk=100000, char="p"):
    """Parameters of `total` bytes in all, as {prefix0: ..., prefix1: ...}: the kernel
    limits one argument to 128 KiB and run-action takes parameters only as arguments."""
    out = {}
    i = 0
    while total > 0:
        n = min(chunk, total)
        out["%s%d" % (prefix, i)] = (char * n) if len(char) == 1 else (char * (n // len(char) + 1))[:n]
        total -= n
        i += 1
    return out


class WorkerTestCase(unittest.TestCase):
    """Gives each test a private temporary directory and a way to run actions."""

    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        if not os.access(WORKER_BIN, os.X_OK):
            raise unittest.SkipTest("worker binary not found: %s" % WORKER_BIN)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="attune-test-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.artifacts = os.path.join(self.tmp, "artifacts")
        os.mkdir(self.artifacts, 0o700)

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def secrets_file(self, secrets, fmt="json", ensure_ascii=False):
        return write_secrets_file(self.tmp, secrets, fmt, ensure_ascii)

    def run_action(self, ref, params=None, p=(), secrets=None, secrets_file=None, timeout=None,
                   env=None, config=None, packs_dir=FIXTURE_PACKS, extra_args=(), stdin=b"",
                   wall_timeout=90, artifacts_dir=None):
        if secrets is not None:
            secrets_file = self.secrets_file(secrets)
        if artifacts_dir is None:
            artifacts_dir = self.artifacts
        # artifacts_dir=False and packs_dir=None leave the option out
        argv = action_argv(ref, params=params, p=p, secrets_file=secrets_file, timeout=timeout,
                           artifacts_dir=artifacts_dir, packs_dir=packs_dir,
                           config=config, extra_args=extra_args)
        start = time.monotonic()
        # cwd: a directory without a config.yaml, so that none is picked up by accident
        proc = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=worker_env(env), cwd=self.tmp, timeout=wall_timeout,
                              preexec_fn=big_argv_limits if argv_size(argv) > (1 << 20) else None)
        return Run(argv, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)

    def assertRun(self, run, rc, status=None):
        """Checks the exit status (and the result's status) with a useful message."""
        self.assertEqual(run.rc, rc, run.describe())
        if status is not None:
            self.assertIsNotNone(run.result, "stdout is not one JSON document\n" + run.describe())
            self.assertEqual(run.result.get("status"), status, run.describe())
        return run.result

    def run_ok(self, ref, **kwargs):
        run = self.run_action(ref, **kwargs)
        self.assertRun(run, EXIT_COMPLETED, "completed")
        self.assertTrue(run.result["succeeded"], run.describe())
        return run

    def assertOneLineError(self, run, *needles):
        """A usage or definition error: exit 2, one line on stderr naming the problem."""
        self.assertEqual(run.rc, EXIT_USAGE, run.describe())
        text = run.stderr.decode("utf-8", "replace").strip()
        self.assertTrue(text, "stderr is empty\n" + run.describe())
        self.assertNotIn("\n", text, "stderr has more than one line\n" + run.describe())
        for needle in needles:
            self.assertIn(needle, text, run.describe())


    def assertCappedLog(self, log, line, total, cap, truncated, bytes_truncated):
        """log holds the start of `total` bytes of `line` repeated, cut near `cap`, then a
        last line starting [OUTPUT TRUNCATED; the counts account for every byte."""
        self.assertIs(truncated, True)
        idx = log.rfind(b"\n" + NOTICE)
        self.assertGreaterEqual(idx, 0, "no [OUTPUT TRUNCATED line at the end: %r" % log[-200:])
        self.assertNotIn(b"\n", log[idx + 1:].rstrip(b"\n"), "the notice must be the last line")
        # idx bytes of output were kept, or idx + 1 if the newline before the notice is
        # the output's own.
        self.assertEqual(log[:idx], pattern(line, total)[:idx], "the kept start differs")
        self.assertLessEqual(idx, cap)
        self.assertGreater(idx, cap - 4096, "far less than the cap was kept")
        self.assertIn(bytes_truncated, (total - idx, total - idx - 1),
                      "bytes_truncated does not account for the dropped bytes")


# --- output ----------------------------------------------------------------

STDOUT_LINE = b"abcdefghijklmnopqrstuvwxyz0123456789\n"  # what big_output.sh repeats
STDERR_LINE = b"ERR-abcdefghijklmnopqrstuvwxyz\n"
NOTICE = b"[OUTPUT TRUNCATED"


def pattern(line, n):
    return (line * (n // len(line) + 1))[:n]


def read(path):
    with open(path, "rb") as f:
        return f.read()


# --- secrets ---------------------------------------------------------------

def awkward_secrets():
    """Secret values that break naive quoting, encoding or line handling."""
    big = "".join(chr(32 + (i * 7919) % 95) + ("\n" if i % 61 == 60 else "")
                  for i in range(70000)).encode()[:65536].decode()
    assert len(big.encode()) == 65536
    return {
        "multiline": "first line\nsecond line\n\nlast line with trailing newline\n",
        "quotes": "it's \"double\" and 'single' \\ back\\\\slash \\n not-a-newline",
        "dollar": "$HOME ${PATH} $(id -u) $$ $1 %s %d %n",
        "backtick": "`id` `echo pwned`; rm -rf /nonexistent",
        "unicode": "pässwörd – 秘密 🔑 Ωmega",
        "dashes": "-n",
        "escapes": "-e \\x41 \t\ttab \r carriage \x01\x1b[31m ctrl",
        "spaces": "  leading and trailing  ",
        "empty": "",
        "big64k": big,
    }


def describe_secret(value):
    data = value.encode("utf-8")
    return hashlib.sha256(data).hexdigest(), len(data)


def b64decode(text):
    return base64.b64decode(text.encode("ascii"))


# --- parameters ------------------------------------------------------------

def parse_dotenv(text):
    """Parses key='value' lines as a POSIX shell would read the quoting ('\\'' for ')."""
    out = {}
    i, n = 0, len(text)
    while i < n:
        if text[i] == "\n":
            i += 1
            continue
        eq = text.index("=", i)
        key = text[i:eq]
        if "\n" in key:
            raise ValueError("bad dotenv line near %r" % text[i:i + 40])
        i = eq + 1
        value = []
        while i < n and text[i] != "\n":
            if text[i] == "'":
                close = text.index("'", i + 1)
                value.append(text[i + 1:close])
                i = close + 1
            elif text.startswith("\\'", i):
                value.append("'")
                i += 2
            else:
                raise ValueError("unquoted dotenv value for %r near %r" % (key, text[i:i + 40]))
        if key in out:
            raise ValueError("duplicate dotenv key %r" % key)
        out[key] = "".join(value)
    return out


def dotenv_expected(params, prefix=""):
    """What the dotenv delivery should write for params (arrays stay JSON text)."""
    out = {}
    for key, value in params.items():
        name = prefix + key
        if isinstance(value, dict):
            out.update(dotenv_expected(value, name + "."))
        elif isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif value is None:
            out[name] = ""
        elif isinstance(value, list):
            out[name] = value  # compared after json.loads
        else:
            out[name] = str(value)
    return out


def param_env_name(name):
    return "PARAM_" + re.sub(r"[^A-Z0-9_]", "_", name.upper())


# --- artifacts -------------------------------------------------------------

def mode_of(path):
    return os.lstat(path).st_mode & 0o7777


# --- processes -------------------------------------------------------------

def proc_stat(pid):
    """(state, pgrp, session) of a process, or None once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[2]), int(fields[3])


def _zygote_named(entry, worker_pid):
    try:
        with open("/proc/%s/stat" % entry) as f:
            text = f.read()
    except OSError:
        return False
    comm = text[text.index("(") + 1:text.rindex(")")]
    ppid = int(text[text.rindex(")") + 2:].split()[1])
    return comm == "attune-zygote" and ppid == worker_pid


def zygotes_of(worker_pid):
    """Pids of the worker's children named attune-zygote (its python fork servers).
    A child the zygote has just forked bears its name until it renames itself,
    a moment later: a pid counts only if it still does 0.2 s on."""
    found = [int(e) for e in os.listdir("/proc") if e.isdigit() and _zygote_named(e, worker_pid)]
    if found:
        time.sleep(0.2)
    return [pid for pid in found if _zygote_named(str(pid), worker_pid)]


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def live_members_of_group(pgid):
    """Pids of processes (not zombies) in process group pgid."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st and st[1] == pgid and st[0] not in ("Z", "X"):
                found.append(int(entry))
    return found


def open_fds(pid):
    """{fd: link target} of a process."""
    base = "/proc/%d/fd" % pid
    out = {}
    for name in os.listdir(base):
        try:
            out[int(name)] = os.readlink(os.path.join(base, name))
        except FileNotFoundError:
            pass
    return out


def wait_for_file(path, timeout, proc=None):
    """Waits until path exists; gives up early if proc (a Popen) has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        if proc is not None and proc.poll() is not None:
            return os.path.exists(path)
        time.sleep(0.02)
    return False


def wait_until(predicate, timeout, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
