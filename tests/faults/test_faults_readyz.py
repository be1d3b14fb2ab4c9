"""/readyz follows the servers: it turns 503 (with the reason in a one-line JSON
body) within 2 s of RabbitMQ or PostgreSQL going away, and 200 again once the
worker has reconnected; /healthz answers throughout, since the loop keeps
turning; the reconnect is counted in /metrics."""
import json
import os
import socket
import sys
import threading
import time
import unittest
import urllib.parse

from faults_support import SLOW, FaultTestCase, enforce_consumer_timeout, services

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from observe_support import (free_port, http_get, sample_sum, scrape,  # noqa: E402
                             text_string_to_metric_families)

BOUND_S = 2.0
POLL_S = 0.02


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


class ReadyzTest(FaultTestCase):

    @classmethod
    def setUpClass(cls):
        if text_string_to_metric_families is None:
            raise unittest.SkipTest("python3-prometheus-client is not installed "
                                    "(scripts/install-deps installs it)")
        super().setUpClass()

    def watch_restart(self, command, server_port, reason):
        """Restarts a server while polling /readyz, /healthz and the server's port;
        returns (seconds from the port closing to the first 503, seconds from
        the restart's end to the next 200)."""
        port = free_port()
        w = self.start_worker(env={"ATTUNE__OBSERVABILITY__LISTEN": "127.0.0.1:%d" % port})
        self.assertEqual(http_get(port, "/readyz")[0], 200, w.describe())
        done = threading.Event()
        errors = []

        def restart():
            try:
                services(command)
            except Exception as e:  # reported by the test thread
                errors.append(e)
            done.set()

        began = time.monotonic()
        threading.Thread(target=restart, daemon=True).start()
        port_closed = first_503 = restarted = ready_again = None
        bodies, health = set(), set()
        deadline = began + 120 * SLOW
        while ready_again is None:
            self.assertLess(time.monotonic(), deadline, "no 200 again\n" + w.describe())
            now = time.monotonic()
            status, _, body = http_get(port, "/readyz")
            health.add(http_get(port, "/healthz")[0])
            if port_closed is None and not port_open(server_port):
                port_closed = now
            if status == 503:
                bodies.add(body)
                if first_503 is None:
                    first_503 = now
            if done.is_set() and restarted is None:
                restarted = time.monotonic()
            if restarted is not None and first_503 is not None and status == 200:
                ready_again = now
            time.sleep(POLL_S)
        self.assertEqual(errors, [])
        self.assertIsNotNone(port_closed, "the server's port never closed")
        self.assertEqual(health, {200}, "/healthz during the restart")
        for body in bodies:
            self.assertTrue(body.endswith("\n") and body.count("\n") == 1, repr(body))
            doc = json.loads(body)
            self.assertFalse(doc["ready"])
            self.assertIn(doc["reason"], (reason, "stopping"))
        self.assertIn(json.dumps({"ready": False, "reason": reason}, separators=(",", ":")) +
                      "\n", bodies)
        samples, _ = scrape(port)
        server = "message_queue" if "rabbitmq" in command else "database"
        self.assertGreaterEqual(sample_sum(samples, "attune_worker_reconnects_total",
                                           server=server), 1)
        to_503 = first_503 - port_closed
        print("\n%s: 503 %.2f s after the port closed (%.2f s after the restart began); "
              "200 again %.2f s after the restart returned; bodies %r" % (
                  command, to_503, first_503 - began, ready_again - restarted, sorted(bodies)))
        self.assertLess(to_503, BOUND_S, "503 came too late")
        return w

    def test_broker_restart(self):
        mq_port = urllib.parse.urlparse(self.mq_url).port
        w = self.watch_restart("restart-rabbitmq", mq_port, "message queue disconnected")
        self.fresh_broker()
        enforce_consumer_timeout()
        self.stop_worker(w)

    def test_database_restart(self):
        pg_port = urllib.parse.urlparse(self.db.url).port
        w = self.watch_restart("restart-postgres", pg_port, "database disconnected")
        self.stop_worker(w)


if __name__ == "__main__":
    unittest.main()
