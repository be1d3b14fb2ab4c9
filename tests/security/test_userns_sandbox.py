"""The sandbox's userns mode in run-action, with the worker run as a user that is
not root (nobody, through setpriv): seen from outside, the action gets a fresh
/proc whose PID 1 is attune-sandbox-init (the worker is not in it), cannot read
the worker's configuration file nor another execution's folder or result, has a
private /tmp, a read-only pack folder and a writable files/; a `setsid` daemon
it leaves is gone once its execution ended; exit codes and signals are reported
as without the sandbox; a timeout still ends an action that does not trap
SIGTERM at once; and the example actions of every runtime still work."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

from support import (EXAMPLE_PACKS, SOURCE_DIR, WORKER_BIN, Run, action_argv,  # noqa: E402
                     skip_unless_reachable_by_others, worker_env)

NOBODY = 65534
AS_NOBODY = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups"]
EXAMPLES = os.path.join(SOURCE_DIR, "packs")
MARKER = "userns-config-marker-5e1d"

PACK_YAML = "ref: nsbx\nlabel: nsbx\ndescription: test pack\nversion: 1.0.0\n"

# What the action can see and do, as JSON on stdout.
PROBE_SH = r"""#!/usr/bin/env bash
try_read() { if cat "$1" >/dev/null 2>&1; then echo read; else echo denied; fi; }
config=$(cat "$PARAM_CONFIG" 2>/dev/null | tr -d '\n"\\' | head -c 300)
secrets=$(cat "$PARAM_SECRETS" 2>/dev/null | tr -d '\n"\\' | head -c 300)
pids=$(ls /proc | grep -E '^[0-9]+$' | tr '\n' ' ')
worker_seen=no
for p in $pids; do
  tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q run-action && worker_seen=yes
done
init=$(tr '\0' '\n' < /proc/1/cmdline | head -n 1)
host_tmp=$([ -e "$PARAM_HOST_TMP" ] && echo visible || echo hidden)
echo leak > "/tmp/$PARAM_TOKEN"
pack_write=$(touch "$PWD/w-$PARAM_TOKEN" 2>/dev/null && echo written || echo refused)
shared_write=$(touch "/run/lock/attune-$PARAM_TOKEN" 2>/dev/null && echo written || echo refused)
files=$(echo from-action > "$ATTUNE_ARTIFACTS_DIR/out.txt" 2>/dev/null && echo written || echo refused)
other_result=$(try_read "$PARAM_OTHER/result.json")
configured_root=$(try_read "$PARAM_CFGROOT/old/result.json")
other_log=$(try_read "$PARAM_OTHER/stdout.log")
other_files=$(ls "$PARAM_OTHER/files" >/dev/null 2>&1 && echo listed || echo denied)
setsid sleep "$PARAM_SLEEP" < /dev/null > /dev/null 2>&1 &
printf '{"config":"%s","secrets":"%s","pids":"%s","worker_seen":"%s","init":"%s",' \
  "$config" "$secrets" "$pids" "$worker_seen" "$init"
printf '"host_tmp":"%s","configured_root":"%s","shared_write":"%s",' "$host_tmp" \
  "$configured_root" "$shared_write"
printf '"pack_write":"%s","files":"%s","other_result":"%s","other_log":"%s",' \
  "$pack_write" "$files" "$other_result" "$other_log"
printf '"other_files":"%s","home":"%s","uid":%d}\n' "$other_files" "$HOME" "$(id -u)"
"""
PROBE_PARAMS = ("config", "secrets", "host_tmp", "token", "other", "sleep", "cfgroot")

# Ends the way it is told: an exit code, its own signal, or never (SIGTERM not trapped).
STATUS_SH = r"""#!/usr/bin/env bash
case "$PARAM_HOW" in
  exit7) exit 7 ;;
  usr1) kill -USR1 $$; sleep 5 ;;
  hang) sleep 60 ;;
esac
"""


def write_action(actions, name, code, output, params):
    with open(os.path.join(actions, name + ".sh"), "w") as f:
        f.write(code)
    os.chmod(os.path.join(actions, name + ".sh"), 0o755)
    with open(os.path.join(actions, name + ".yaml"), "w") as f:
        f.write("name: %s\nrunner_type: shell\nentry_point: %s.sh\noutput_format: %s\n"
                "parameters:\n" % (name, name, output))
        for p in params:
            f.write("  %s:\n    type: string\n" % p)


def sleepers(arg):
    """Host pids of `sleep ARG` processes."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    if f.read().split(b"\0")[:2] == [b"sleep", arg.encode()]:
                        found.append(int(pid))
            except OSError:
                pass
    return found


@unittest.skipUnless(os.geteuid() == 0, "runs the worker as nobody, which needs root to switch")
class UsernsRunActionTest(unittest.TestCase):

    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        if not os.access(WORKER_BIN, os.X_OK):
            raise unittest.SkipTest("worker binary not found: %s" % WORKER_BIN)
        if shutil.which("setpriv") is None:
            raise unittest.SkipTest("setpriv (util-linux) is not installed")
        skip_unless_reachable_by_others(WORKER_BIN)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="attune-userns-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        os.chmod(self.tmp, 0o755)
        self.artifacts = os.path.join(self.tmp, "artifacts")
        os.mkdir(self.artifacts, 0o700)
        os.chown(self.artifacts, NOBODY, NOBODY)
        conf_dir = os.path.join(self.tmp, "conf")
        os.mkdir(conf_dir, 0o700)
        os.chown(conf_dir, NOBODY, NOBODY)
        self.config = os.path.join(conf_dir, "config.yaml")
        # The configured artifacts root, with an earlier result: run-action is
        # given another root, and this one must be out of sight as well.
        # Outside /tmp, which the action has its own of.
        self.cfgroot = tempfile.mkdtemp(prefix="attune-userns-root-", dir=self.outside_tmp())
        self.addCleanup(shutil.rmtree, self.cfgroot, True)
        os.chmod(self.cfgroot, 0o700)
        os.makedirs(os.path.join(self.cfgroot, "old"))
        with open(os.path.join(self.cfgroot, "old", "result.json"), "w") as f:
            f.write("{}\n")
        for path in (self.cfgroot, os.path.join(self.cfgroot, "old")):
            os.chown(path, NOBODY, NOBODY)
        with open(self.config, "w") as f:
            f.write("# %s\nsandbox:\n  mode: userns\nworker:\n  artifacts_dir: %s\n"
                    % (MARKER, self.cfgroot))
        os.chown(self.config, NOBODY, NOBODY)
        os.chmod(self.config, 0o600)
        self.packs = os.path.join(self.tmp, "packs")
        actions = os.path.join(self.packs, "nsbx", "actions")
        os.makedirs(actions)
        with open(os.path.join(self.packs, "nsbx", "pack.yaml"), "w") as f:
            f.write(PACK_YAML)
        write_action(actions, "probe", PROBE_SH, "json", PROBE_PARAMS)
        write_action(actions, "status", STATUS_SH, "text", ("how",))
        # Writable by the worker's user: read-only only through the sandbox.
        for folder in (os.path.join(self.packs, "nsbx"), actions):
            os.chown(folder, NOBODY, NOBODY)
        self.run_as_nobody(["check-config"], expect_ok=False)

    def outside_tmp(self):
        """A folder others can reach that is neither /tmp nor /var/tmp (both
        private to the action): the build tree's."""
        folder = os.path.join(os.path.dirname(os.path.abspath(WORKER_BIN)), "userns-test")
        os.makedirs(folder, exist_ok=True)
        os.chmod(folder, 0o755)
        skip_unless_reachable_by_others(folder)
        return folder

    def run_as_nobody(self, extra, expect_ok=True):
        argv = AS_NOBODY + [WORKER_BIN, "-c", self.config] + extra
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=worker_env({"ATTUNE__SANDBOX__MODE": None}), cwd=self.tmp, timeout=60)
        if b"user namespaces, which this host refuses" in proc.stderr:
            raise unittest.SkipTest("user namespaces are refused here: %s"
                                    % proc.stderr.decode(errors="replace").strip())
        if expect_ok:
            self.assertEqual(proc.returncode, 0, proc.stderr)
        return proc

    def run_action(self, ref, params=None, timeout=None, packs_dir=None, secrets_file=None):
        argv = AS_NOBODY + action_argv(ref, params=params, timeout=timeout,
                                       artifacts_dir=self.artifacts,
                                       packs_dir=packs_dir or self.packs, config=self.config,
                                       secrets_file=secrets_file)
        start = time.monotonic()
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=worker_env({"ATTUNE__SANDBOX__MODE": None}), cwd=self.tmp, timeout=90)
        return Run(argv, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)

    def assertRun(self, run, rc, status):
        self.assertEqual(run.rc, rc, run.describe())
        self.assertIsNotNone(run.result, run.describe())
        self.assertEqual(run.result.get("status"), status, run.describe())
        return run.result

    def probe(self, other, sleep_arg, host_tmp):
        token = uuid.uuid4().hex
        # In the pack's folder, which the action sees: only the cover hides it.
        secrets = os.path.join(self.packs, "nsbx", "secrets.json")
        with open(secrets, "w") as f:
            # The name, not the value: values are masked in the output anyway.
            json.dump({"userns_secrets_file_marker": "x" * 12}, f)
        os.chown(secrets, NOBODY, NOBODY)
        os.chmod(secrets, 0o600)
        params = {"config": self.config, "secrets": secrets, "host_tmp": host_tmp,
                  "token": token, "other": other, "sleep": sleep_arg, "cfgroot": self.cfgroot}
        run = self.run_action("nsbx.probe", params=params, secrets_file=secrets)
        return token, self.assertRun(run, 0, "completed")

    def test_isolation_seen_from_outside(self):
        first = self.assertRun(self.run_action("nsbx.status", params={"how": "exit0"}), 0,
                               "completed")
        with open(os.path.join(first["artifacts_dir"], "files", "theirs.txt"), "w") as f:
            f.write("earlier execution's file\n")
        host_tmp = tempfile.NamedTemporaryFile(prefix="attune-userns-host-", dir="/tmp")
        os.chmod(host_tmp.name, 0o644)
        sleep_arg = "%d.%d" % (4000 + os.getpid() % 1000, time.monotonic_ns() % 100000)
        token, result = self.probe(first["artifacts_dir"], sleep_arg, host_tmp.name)
        leak = "/run/lock/attune-" + token
        self.addCleanup(lambda: os.path.exists(leak) and os.unlink(leak))
        data = result["data"]
        self.assertNotIn(MARKER, data["config"], data)
        self.assertNotIn("userns_secrets_file_marker", data["secrets"], data)
        self.assertEqual(data["worker_seen"], "no", data)
        self.assertEqual(data["init"].rsplit("/", 1)[-1], "attune-sandbox-init", data)
        self.assertLess(len(data["pids"].split()), 12, data)
        self.assertEqual(data["host_tmp"], "hidden", data)
        self.assertFalse(os.path.exists("/tmp/" + token), "the action's /tmp is the host's")
        self.assertEqual(data["pack_write"], "refused", data)
        self.assertFalse(os.path.exists(os.path.join(self.packs, "nsbx", "w-" + token)))
        # A folder anyone may write to on the host (where there is one) is read-only.
        if os.path.isdir("/run/lock"):
            self.assertEqual(data["shared_write"], "refused", data)
        self.assertEqual(data["files"], "written", data)
        with open(os.path.join(result["artifacts_dir"], "files", "out.txt")) as f:
            self.assertEqual(f.read(), "from-action\n")
        self.assertEqual(data["other_result"], "denied", data)
        self.assertEqual(data["configured_root"], "denied", data)
        self.assertEqual(data["other_log"], "denied", data)
        self.assertEqual(data["other_files"], "denied", data)
        self.assertEqual(data["uid"], NOBODY, data)
        self.assertTrue(data["home"].startswith(self.artifacts + "/"), data)
        deadline = time.monotonic() + 5
        while sleepers(sleep_arg) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = sleepers(sleep_arg)
        for pid in left:
            os.kill(pid, 9)
        self.assertEqual(left, [], "the setsid daemon outlived its execution by 5 s")

    def test_exit_code_and_signal_reported_as_without_sandbox(self):
        result = self.assertRun(self.run_action("nsbx.status", params={"how": "exit7"}), 1,
                                "failed")
        self.assertEqual(result["exit_code"], 7, result)
        self.assertNotIn("signal", result)
        result = self.assertRun(self.run_action("nsbx.status", params={"how": "usr1"}), 1,
                                "failed")
        self.assertEqual(result.get("signal"), 10, result)

    def test_timeout_ends_an_action_that_does_not_trap_sigterm(self):
        run = self.run_action("nsbx.status", params={"how": "hang"}, timeout=2)
        result = self.assertRun(run, 124, "timeout")
        self.assertEqual(result.get("signal"), 15, result)
        # The kill grace is 5 s: SIGKILL would come at 7 s.
        self.assertLess(run.elapsed, 5.5, run.describe())

    def test_examples_of_every_runtime(self):
        skip_unless_reachable_by_others(EXAMPLE_PACKS)
        secrets = os.path.join(self.tmp, "secrets.json")
        with open(secrets, "w") as f:
            json.dump({"api_token": "tok-0123456789"}, f)
        os.chown(secrets, NOBODY, NOBODY)
        cases = [("examples.hello", {"name": "Ada"}, None, "Ada"),
                 ("examples.greet", {"name": "Ada"}, None, "Ada"),
                 ("examples.list_files", None, None, "actions"),
                 ("examples.secret_demo", None, secrets, "14")]
        for ref, params, secrets_file, needle in cases:
            with self.subTest(ref=ref):
                run = self.run_action(ref, params=params, packs_dir=EXAMPLES,
                                      secrets_file=secrets_file)
                result = self.assertRun(run, 0, "completed")
                self.assertEqual(result["stderr"], "", json.dumps(result))
                self.assertIn(needle, json.dumps(result), json.dumps(result))

    def test_refused_without_the_init(self):
        # A copy of the program alone: no attune-sandbox-init beside it, and
        # none installed (a build tree's test run).
        for prefix in ("/usr", "/usr/local"):
            if os.path.exists(prefix + "/libexec/attune-worker/attune-sandbox-init"):
                raise unittest.SkipTest("an installed attune-sandbox-init would be found")
        lone = os.path.join(self.tmp, "lone")
        os.mkdir(lone, 0o755)
        shutil.copy2(WORKER_BIN, lone)
        argv = AS_NOBODY + [os.path.join(lone, os.path.basename(WORKER_BIN)), "-c", self.config,
                            "check-config"]
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=worker_env({"ATTUNE__SANDBOX__MODE": None}), cwd=self.tmp, timeout=60)
        self.assertEqual(proc.returncode, 78, proc.stderr)
        self.assertIn(b"needs attune-sandbox-init", proc.stderr)

    def test_check_config_and_none_warn(self):
        proc = self.run_as_nobody(["check-config"])
        self.assertNotIn(b"SANDBOX OFF", proc.stderr)
        with open(self.config, "w") as f:
            f.write("sandbox:\n  mode: none\n")
        proc = self.run_as_nobody(["check-config"])
        self.assertIn(b"SANDBOX OFF", proc.stderr)


@unittest.skipUnless(os.geteuid() == 0, "needs root to make a user namespace with a limit")
class UsernsRefusedTest(unittest.TestCase):
    """Where user namespaces are refused (here: a user namespace whose
    user.max_user_namespaces allows none below the one the worker runs in, as
    an ordinary user), auto and userns refuse to start with exit 78 and say what
    to configure; only an explicit none runs, loudly."""

    def setUp(self):
        if shutil.which("unshare") is None:
            raise unittest.SkipTest("unshare (util-linux) is not installed")
        skip_unless_reachable_by_others(WORKER_BIN, EXAMPLE_PACKS)
        self.tmp = tempfile.mkdtemp(prefix="attune-userns-refused-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        os.chmod(self.tmp, 0o777)

    def run_limited(self, mode, extra):
        config = os.path.join(self.tmp, "config-%s.yaml" % mode)
        with open(config, "w") as f:
            f.write("sandbox:\n  mode: %s\n" % mode)
        os.chmod(config, 0o644)
        inner = " ".join([WORKER_BIN, "-c", config] + extra)
        script = ("echo 1 > /proc/sys/user/max_user_namespaces && "
                  "exec unshare -U --map-user=%d --map-group=%d %s" % (NOBODY, NOBODY, inner))
        return subprocess.run(["unshare", "-U", "-r", "--fork", "sh", "-c", script],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=worker_env({"ATTUNE__SANDBOX__MODE": None}), cwd=self.tmp, timeout=60)

    def test_auto_and_userns_refuse_none_warns(self):
        artifacts = os.path.join(self.tmp, "artifacts")
        os.mkdir(artifacts, 0o777)
        run = ["run-action", "--packs-dir", EXAMPLES, "--artifacts-dir", artifacts,
               "examples.hello"]
        for mode in ("auto", "userns"):
            for extra in (["check-config"], run):
                with self.subTest(mode=mode, command=extra[0]):
                    proc = self.run_limited(mode, extra)
                    self.assertEqual(proc.returncode, 78, proc.stderr)
                    self.assertIn(b"needs user namespaces, which this host refuses",
                                  proc.stderr)
                    self.assertIn(b"sandbox.mode: none", proc.stderr)
        proc = self.run_limited("none", run)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn(b"SANDBOX OFF", proc.stderr)
        self.assertIn(b"Hello", proc.stdout)


if __name__ == "__main__":
    unittest.main()
