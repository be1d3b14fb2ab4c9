"""200 MB of action output through a 1 MiB cap: the log is capped, the counts are
right, the worker is not slowed down by it and its memory stays small. The
memory figure is asserted only on the optimised build (ctest label `memory`):
AddressSanitizer inflates resident memory."""
import json
import os
import subprocess
import sys
import time
import unittest

from support import (STDOUT_LINE, WorkerTestCase, action_argv, argv_size, read,
                     sanitized_build, worker_env)

TOTAL = 200 * 1000 * 1000
CAP = 1 << 20
MAX_RSS_KIB = 20 * 1024

# argv: USAGE_FILE WORKER ARGS...; writes [exit status, ru_maxrss in KiB] to USAGE_FILE.
INTERMEDIATE = """
import json, os, sys
usage, argv = sys.argv[1], sys.argv[2:]
pid = os.fork()
if pid == 0:
    try:
        os.execv(argv[0], argv)
    finally:
        os._exit(127)
_, status, rusage = os.wait4(pid, 0)
with open(usage, "w") as f:
    json.dump([os.waitstatus_to_exitcode(status), rusage.ru_maxrss], f)
"""


class MemoryTest(WorkerTestCase):

    def spawn_and_wait4(self, argv, env):
        """Runs argv with stdout and stderr in files; returns (status, rusage, stdout, stderr).

        ru_maxrss is taken with os.wait4 by a small intermediate Python that fork()s and
        execs the worker. Spawning the worker from this test process instead would charge
        the test's own memory to it: with posix_spawn (vfork) the kernel records the
        parent's high-water mark as the child's at exec, and a fork copies the test's
        larger heap. The intermediate's small heap is all that is added (an upper bound)."""
        assert argv_size(argv) < (1 << 20)
        out, err, usage = self.path("worker.stdout"), self.path("worker.stderr"), self.path("ru")
        with open(out, "wb") as fout, open(err, "wb") as ferr:
            subprocess.run([sys.executable, "-I", "-S", "-c", INTERMEDIATE, usage] + argv,
                           stdin=subprocess.DEVNULL, stdout=fout, stderr=ferr, env=env,
                           cwd=self.tmp, check=True, timeout=120)  # cwd: no stray config.yaml
        with open(usage) as f:
            status, maxrss = json.load(f)
        return status, maxrss, read(out), read(err)

    def test_200mb_stdout_is_capped_in_bounded_memory(self):
        argv = action_argv("testpack.big_output", p=["bytes=%d" % TOTAL],
                           artifacts_dir=self.artifacts)
        env = worker_env({"ATTUNE__WORKER__MAX_STDOUT_BYTES": str(CAP)})
        start = time.monotonic()
        rc, maxrss, stdout, stderr = self.spawn_and_wait4(argv, env)
        elapsed = time.monotonic() - start
        self.assertEqual(rc, 0, stderr.decode("utf-8", "replace"))
        result = json.loads(stdout)
        self.assertEqual(result["status"], "completed")
        self.assertTrue(result["succeeded"])

        log = read(os.path.join(result["artifacts_dir"], "stdout.log"))
        self.assertLessEqual(len(log), CAP + 256)
        self.assertCappedLog(log, STDOUT_LINE, TOTAL, CAP, result["stdout_truncated"],
                             result["stdout_bytes_truncated"])
        self.assertFalse(result["stderr_truncated"])
        self.assertLessEqual(len(result["stdout"].encode()), CAP + 256)
        self.assertLess(elapsed, 60, "200 MB took %.1f s" % elapsed)

        # ru_maxrss (KiB) covers the worker and every child it waited for (the action).
        print("\nworker peak RSS %.1f MiB, %.2f s for %d MB"
              % (maxrss / 1024, elapsed, TOTAL // 1000000))
        if sanitized_build():
            self.skipTest("sanitized build: resident memory is not representative "
                          "(peak %d KiB); the cap was checked" % maxrss)
        self.assertLess(maxrss, MAX_RSS_KIB,
                        "worker peak resident memory %d KiB" % maxrss)


if __name__ == "__main__":
    unittest.main()
