"""The worker's HTTP endpoint on the real servers: /metrics, read by the Prometheus
client library's parser during a run of 200 executions, agrees with the database;
/healthz and /readyz answer; other paths and methods are refused; 1,000 malformed
requests and 200 idle connections leave the worker serving executions with its
memory bounded."""
import json
import os
import re
import socket
import time
import unittest

from observe_support import (free_port, http_get, sample_sum, scrape,
                             text_string_to_metric_families, vm_rss_kb)
from service_support import SLOW, ServiceTestCase, write_action_file, write_pack
from support import SOURCE_DIR, sanitized_build

# Fails for one n in five, so that two final statuses are counted.
SOMETIMES_SH = """#!/bin/bash
echo "run $PARAM_N"
[ $((PARAM_N % 5)) -ne 0 ]
"""

# 200 as the acceptance asks; fewer under the sanitizers, which make each
# execution several times slower (the optimised pass runs all 200).
RUNS = 60 if sanitized_build() else 200
# Memory figures mean nothing under AddressSanitizer (its quarantine keeps
# freed memory): the bound applies to the optimised build.
RSS_GROWTH_LIMIT_KB = 4096
# 1,000 as the acceptance asks; fewer under the sanitizers, where each costs
# about 0.2 s (the optimised pass sends all 1,000).
MALFORMED_REQUESTS = 200 if sanitized_build() else 1000


class ServiceMetricsTest(ServiceTestCase):

    @classmethod
    def setUpClass(cls):
        if text_string_to_metric_families is None:
            raise unittest.SkipTest("python3-prometheus-client is not installed "
                                    "(scripts/install-deps installs it)")
        super().setUpClass()

    @classmethod
    def setUpData(cls):
        write_pack(cls.packs_dir, "obs")
        write_action_file(cls.packs_dir, "obs", "sometimes.sh", SOMETIMES_SH)
        cls.pack_id = cls.db.insert_pack("obs")
        cls.db.insert_action(cls.pack_id, "obs", "sometimes", "sometimes.sh",
                             params={"n": {"type": "integer"}}, required=["n"])

    def start_observed(self, slots=10):
        port = free_port()
        w = self.start_worker(env={"ATTUNE__OBSERVABILITY__LISTEN": "127.0.0.1:%d" % port,
                                   "ATTUNE__WORKER__MAX_CONCURRENT_TASKS": str(slots)})
        self.assertIn("serving /metrics", w.log(), w.describe())
        return w, port

    def run_executions(self, w, n, port=None):
        """Dispatches n executions; scrapes /metrics while they run when port is
        given. Returns ({id: status}, scrapes taken while running)."""
        ids = [self.db.insert_execution("obs.sometimes", {"n": i}) for i in range(n)]
        for i, eid in enumerate(ids):
            self.broker.dispatch(w.id, eid, "obs.sometimes", {"n": i})
        scrapes = 0
        deadline = time.monotonic() + 120 * SLOW
        while True:
            st = self.db.statuses(ids)
            if all(s in ("completed", "failed") for s in st.values()) and len(st) == n:
                return st, scrapes
            self.assertLess(time.monotonic(), deadline, w.describe())
            if port is not None:
                scrape(port)  # parses, or raises
                scrapes += 1
            time.sleep(0.05)

    def test_metrics_match_the_database(self):
        w, port = self.start_observed()
        before, _ = scrape(port)
        self.assertEqual(sample_sum(before, "attune_worker_executions_finished_total"), 0)
        statuses, scrapes = self.run_executions(w, RUNS, port)
        self.assertGreater(scrapes, 0, "no scrape while the executions ran")
        want = {}
        for s in statuses.values():
            want[s] = want.get(s, 0) + 1
        self.assertEqual(want, {"completed": RUNS - RUNS // 5, "failed": RUNS // 5})
        # The counters follow the database's rows, which are written first.
        deadline = time.monotonic() + 5 * SLOW
        while True:
            samples, families = scrape(port)
            got = {s: sample_sum(samples, "attune_worker_executions_finished_total", status=s)
                   for s in want}
            if got == want or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(got, want, "finished counters against the database")
        runtimes = {dict(ls)["runtime"] for (n, ls) in samples
                    if n == "attune_worker_executions_finished_total"}
        # The action's runner_type (the test's action row names none: "local").
        self.assertEqual(len(runtimes), 1, runtimes)
        self.assertFalse(runtimes & {"none", "other"}, runtimes)
        self.assertEqual(samples[("attune_worker_executions_started_total", frozenset())], RUNS)
        self.assertGreaterEqual(
            samples[("attune_worker_messages_received_total", frozenset())], RUNS)
        self.assertEqual(samples[("attune_worker_messages_dead_lettered_total", frozenset())], 0)
        for h in ("attune_worker_execution_duration_seconds",
                  "attune_worker_execution_queue_wait_seconds"):
            self.assertEqual(families[h].type, "histogram")
            self.assertEqual(samples[(h + "_count", frozenset())], RUNS, h)
            self.assertEqual(samples[(h + "_bucket", frozenset({("le", "+Inf")}))], RUNS, h)
            self.assertGreater(samples[(h + "_sum", frozenset())], 0, h)
        self.assertEqual(samples[("attune_worker_slots_running", frozenset())], 0)
        self.assertEqual(samples[("attune_worker_slots_free", frozenset())], 10)
        for server in ("database", "message_queue"):
            self.assertEqual(samples[("attune_worker_server_connected",
                                      frozenset({("server", server)}))], 1)
            self.assertEqual(samples[("attune_worker_reconnects_total",
                                      frozenset({("server", server)}))],
                             len(re.findall("%s connection restored" % (
                                 "database" if server == "database" else "broker"), w.log())),
                             server + "\n" + w.describe())
        self.assertEqual(sample_sum(samples, "attune_worker_build_info"), 1)
        # The harness runs actions unsandboxed: no uid pool, no sweep, no limit.
        self.assertEqual({dict(ls)["mode"]: v for (n, ls), v in samples.items()
                          if n == "attune_worker_sandbox_mode"},
                         {"none": 1, "uid": 0, "userns": 0})
        self.assertFalse({n for n, _ in samples if n.startswith("attune_worker_sandbox_uids")
                          or n.startswith("attune_worker_sandbox_sweep")})
        self.assertEqual(sample_sum(samples, "attune_worker_sandbox_limit_exceeded_total"), 0)
        # Every metric the dashboard queries is one the worker serves.
        with open(os.path.join(SOURCE_DIR, "packaging", "grafana-attune-worker.json")) as f:
            exprs = [t["expr"] for p in json.load(f)["panels"] for t in p["targets"]]
        served = {n for n, _ in samples} | set(families)
        queried = {m for e in exprs for m in re.findall(r"attune_worker_[a-z_]+", e)}
        self.assertTrue(queried)
        # Served in sandbox.mode uid only (tests/security/test_sandbox_limits.py).
        uid_mode_only = {"attune_worker_sandbox_uids_in_use", "attune_worker_sandbox_uids_free",
                         "attune_worker_sandbox_sweeps_killed_total",
                         "attune_worker_sandbox_sweep_survivors_total"}
        # Served only by a worker that keeps spare processes: not under ATTUNE_TEST_COLD.
        spares_only = {"attune_worker_spare_starts_total", "attune_worker_spares_idle"} \
            if os.environ.get("ATTUNE_TEST_COLD") == "1" else set()
        self.assertEqual(queried - served - uid_mode_only - spares_only, set(),
                         "dashboard metrics the worker does not serve")
        print("\n%d scrapes during %d executions" % (scrapes, RUNS))

    def test_health_readiness_and_refusals(self):
        w, port = self.start_observed()
        self.assertEqual(http_get(port, "/healthz")[0], 200)
        status, headers, body = http_get(port, "/readyz")
        self.assertEqual((status, body), (200, '{"ready":true}\n'))
        self.assertEqual(headers.get("Content-Type"), "application/json")
        self.assertEqual(http_get(port, "/nothing")[0], 404)
        self.assertEqual(http_get(port, "/metrics/")[0], 404)
        self.assertEqual(http_get(port, "/healthz?x=1")[0], 200)
        reply = raw_request(port, b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                                  b"\r\nhi")
        self.assertTrue(reply.startswith(b"HTTP/1.1 405"), reply[:200])
        self.assertIn(b"Allow: GET", reply)
        reply = raw_request(port, b"DELETE /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(reply.startswith(b"HTTP/1.1 405"), reply[:200])
        # Stopping: the endpoint goes with the worker.
        self.stop_worker(w)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()

    def test_endpoint_off(self):
        port = free_port()
        w = self.start_worker(env={"ATTUNE__OBSERVABILITY__LISTEN": ""})
        self.assertNotIn("serving /metrics", w.log())
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()

    def test_port_taken_leaves_the_worker_running(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            port = taken.getsockname()[1]
            w = self.start_worker(env={"ATTUNE__OBSERVABILITY__LISTEN": "127.0.0.1:%d" % port})
            self.assertRegex(w.log(), r"observability.listen 127.0.0.1:%d: cannot listen" % port)
            statuses, _ = self.run_executions(w, 3)
            self.assertEqual(len(statuses), 3)

    def test_hostile_clients(self):
        w, port = self.start_observed()
        self.run_executions(w, 10)  # warm: the first executions allocate what they keep
        for _ in range(20):
            scrape(port)
        rss_before = vm_rss_kb(w.pid)
        answered = {}
        for i in range(MALFORMED_REQUESTS):
            reply = raw_request(port, MALFORMED[i % len(MALFORMED)](i))
            code = reply[9:12].decode("latin-1") if reply.startswith(b"HTTP/1.") else "closed"
            answered[code] = answered.get(code, 0) + 1
        self.assertNotIn("200", answered, "a malformed request was served: %r" % answered)
        idle = []
        try:
            for _ in range(200):
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", port))
                idle.append(s)
            # Executions run while the idle connections are held (the endpoint
            # serves 16 at a time, each for 5 s at most; the rest wait in the
            # kernel's accept queue, not in the worker).
            statuses, _ = self.run_executions(w, 20)
            self.assertEqual(len(statuses), 20)
            self.assertTrue(w.alive(), w.describe())
            rss_held = vm_rss_kb(w.pid)
        finally:
            for s in idle:
                s.close()
        # Once the idle clients are gone the endpoint answers at once, or
        # within the idle timeout of the 16 it holds.
        t0 = time.monotonic()
        deadline = t0 + 10 * SLOW
        while True:
            try:
                if http_get(port, "/healthz", timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            self.assertLess(time.monotonic(), deadline, "the endpoint stopped answering")
            time.sleep(0.2)
        served_after = time.monotonic() - t0
        rss_after = vm_rss_kb(w.pid)
        growth = max(rss_held, rss_after) - rss_before
        print("\nmalformed requests answered: %r; /healthz answered %.1f s after 200 idle "
              "connections closed; VmRSS %d kB before, %d kB with them open, %d kB after "
              "(%+d kB)" % (answered, served_after, rss_before, rss_held, rss_after, growth))
        if not sanitized_build():
            self.assertLess(growth, RSS_GROWTH_LIMIT_KB, "VmRSS grew by %d kB" % growth)
        self.assertEqual(http_get(port, "/readyz")[0], 200)
        statuses, _ = self.run_executions(w, 5)
        self.assertEqual(len(statuses), 5)


def raw_request(port, data, timeout=2.0):
    """Sends data, then reads until the server closes or is silent for timeout."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        out = b""
        try:
            while len(out) < 65536:
                chunk = s.recv(4096)
                if not chunk:
                    break
                out += chunk
        except OSError:
            pass
        return out


MALFORMED = [
    lambda i: b"GARBAGE\r\n\r\n",
    lambda i: b"GET\r\n\r\n",
    lambda i: b"GET /metrics HTTP/9.9\r\nHost: x\r\n\r\n",
    lambda i: b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n",
    lambda i: b"GET /" + b"m" * 10000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    lambda i: os.urandom(64 + i % 512),
    lambda i: b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000,
    lambda i: b"GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    lambda i: b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    lambda i: b"GET /metrics HTTP/1.1\r\n" + b"H: v\r\n" * 3000 + b"\r\n",
    lambda i: b"\x00\xff\r\n\r\n",
    lambda i: b"GET /readyz HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
]


if __name__ == "__main__":
    unittest.main()
