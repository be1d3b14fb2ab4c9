"""`attunectl run`, `execution get` and `workers` against real PostgreSQL and
RabbitMQ. The worker is played by rows written here and a queue bound here, so
these tests check attunectl's side: the execution row as Attune's API writes it
(flat config, pinned to the pack's active release with its executable
snapshot), the choice of a live worker, the dispatch message as Attune's
scheduler sends it, and --wait's output and exit statuses."""
import datetime
import json
import os
import re
import threading
import time
import unittest

import pika
import psycopg2

from ctl_support import EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT, EXIT_USAGE, CtlTestCase

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


class BrokerMixin:
    """A queue bound like a worker's, on the shared broker, removed afterwards."""

    def bind_worker_queue(self, worker_id):
        conn = pika.BlockingConnection(pika.URLParameters(self.mq_url))
        self.addCleanup(conn.close)
        ch = conn.channel()
        ch.exchange_declare("attune.executions", "topic", durable=True)
        queue = "worker.%d.executions" % worker_id
        ch.queue_declare(queue, durable=True)
        self.addCleanup(lambda: conn.is_open and ch.queue_delete(queue))
        ch.queue_bind(queue, "attune.executions", "execution.dispatch.worker.%d" % worker_id)
        return ch, queue

    def get_message(self, ch, queue):
        method, props, body = ch.basic_get(queue, auto_ack=True)
        self.assertIsNotNone(method, "no message in %s" % queue)
        return method, props, json.loads(body)


class RunTest(BrokerMixin, CtlTestCase):

    def setUp(self):
        super().setUp()
        self.migrate()
        self.load_examples()

    def executions(self):
        return self.rows("SELECT * FROM attune.execution ORDER BY id")

    def assertPinned(self, e):
        """e is pinned to the active release of its action's pack; returns its
        executable snapshot."""
        release = self.row("SELECT r.* FROM attune.pack_release r JOIN attune.pack p ON "
                           "p.active_release = r.id JOIN attune.action a ON a.pack = p.id "
                           "WHERE a.ref = %s", (e["action_ref"],))
        self.assertEqual((e["pack_release"], e["pack_release_digest"]),
                         (release["id"], release["digest"]))
        snap = e["executable_snapshot"]
        self.assertEqual(snap["release"], {"id": release["id"], "digest": release["digest"],
                                           "content_path": release["content_path"]})
        self.assertEqual(snap["executable"]["action"]["id"], e["action"])
        return snap

    def test_no_live_worker(self):
        self.insert_worker("stale", heartbeat_age=3600)
        self.insert_worker("never", heartbeat_age=None)
        self.insert_worker("stopped", status="inactive")
        # Live, but Attune never schedules actions on these.
        self.execute("UPDATE attune.worker SET cordoned = true, cordon_reason = 'maintenance' "
                     "WHERE id = %s", (self.insert_worker("cordoned"),))
        self.execute("UPDATE attune.worker SET worker_role = 'sensor' WHERE id = %s",
                     (self.insert_worker("sensor"),))
        proc = self.ctl("run", "examples.hello", "-p", "name=Ada")
        self.assertOneLineError(proc, EXIT_FAILED, "no live worker",
                                "start attune-worker first", "requested")
        (e,) = self.executions()
        self.assertEqual((e["status"], e["action_ref"], e["worker"]),
                         ("requested", "examples.hello", None))
        self.assertEqual(e["config"], {"name": "Ada"})
        self.assertPinned(e)
        self.assertIn("execution %d" % e["id"], proc.stderr)

    def test_params_from_a_file_or_standard_input(self):
        worker_id = self.insert_worker("w-live")
        self.bind_worker_queue(worker_id)
        secret = "file-only-greeting-7f3a9c"
        path = os.path.join(self.tmp, "params.json")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            json.dump({"name": "Ada", "greeting": secret}, f)
        self.assertExit(self.ctl("run", "examples.greet", "--params-json", "@" + path), EXIT_OK)
        self.assertExit(self.ctl("run", "examples.greet", "-p", "name=Bo", "--params-json", "-",
                                 stdin=json.dumps({"greeting": secret})), EXIT_OK)
        configs = [e["config"] for e in self.executions()]
        self.assertEqual(configs, [{"name": "Ada", "greeting": secret},
                                   {"name": "Bo", "greeting": secret}])
        proc = self.ctl("run", "examples.greet", "--params-json", "@" + path + ".missing")
        self.assertOneLineError(proc, EXIT_USAGE, "--params-json", "params.json.missing")
        proc = self.ctl("run", "examples.greet", "-p", "name=x", "-p", "NAME=y")
        self.assertOneLineError(proc, EXIT_USAGE, "parameters 'name' and 'NAME' map to the same "
                                                  "name PARAM_NAME")

    def test_scheduled_message(self):
        worker_id = self.insert_worker("w-live")
        ch, queue = self.bind_worker_queue(worker_id)
        proc = self.assertExit(self.ctl("run", "examples.greet", "-p", "name=Ada", "--params-json",
                                        '{"greeting": "Hi", "extra": [1, 2]}', "--timeout", "30"),
                               EXIT_OK)
        (e,) = self.executions()
        self.assertEqual(proc.stdout, "execution %d scheduled on worker %d (w-live)\n"
                         % (e["id"], worker_id))
        action_id = self.value("SELECT id FROM attune.action WHERE ref = 'examples.greet'")
        params = {"name": "Ada", "greeting": "Hi", "extra": [1, 2]}
        self.assertEqual((e["status"], e["action"], e["action_ref"], e["timeout_seconds"]),
                         ("scheduled", action_id, "examples.greet", 30))
        self.assertEqual(e["config"], params)
        self.assertPinned(e)
        self.assertIsNone(e["worker"], "the worker sets it when it starts the execution")
        method, props, body = self.get_message(ch, queue)
        self.assertEqual(method.exchange, "attune.executions")
        self.assertEqual(method.routing_key, "execution.dispatch.worker.%d" % worker_id)
        self.assertEqual(props.content_type, "application/json")
        self.assertEqual(props.delivery_mode, 2)
        self.assertEqual(props.message_id, body["message_id"])
        self.assertEqual(props.correlation_id, body["correlation_id"])
        self.assertAlmostEqual(props.timestamp, time.time(), delta=60)
        self.assertRegex(body["message_id"], UUID_RE)
        self.assertRegex(body["correlation_id"], UUID_RE)
        self.assertEqual((body["message_type"], body["version"]), ("ExecutionRequested", "1.0"))
        self.assertRegex(body["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
        self.assertEqual(body["headers"]["retry_count"], 0)
        self.assertIsInstance(body["headers"]["source_service"], str)
        updated = body["payload"].pop("scheduled_attempt_updated_at")
        self.assertEqual(datetime.datetime.strptime(updated, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc), e["updated"])
        self.assertEqual(body["payload"], {"execution_id": e["id"], "worker_id": worker_id,
                                           "action_ref": "examples.greet", "config": params,
                                           "release_id": e["pack_release"],
                                           "release_digest": e["pack_release_digest"]})

    def test_defaults_are_filled_in(self):
        worker_id = self.insert_worker("w-live")
        ch, queue = self.bind_worker_queue(worker_id)
        self.assertExit(self.ctl("run", "examples.greet", "-p", "name=Bo"), EXIT_OK)
        (e,) = self.executions()
        self.assertEqual(e["config"], {"name": "Bo", "greeting": "Hello"})
        self.assertIsNone(e["timeout_seconds"])
        self.assertEqual(self.get_message(ch, queue)[2]["payload"]["config"], e["config"])

    def test_no_parameters_and_the_actions_timeout(self):
        # As Attune's API: an empty parameter map is stored as NULL, and the
        # action's timeout is the execution's unless --timeout is given.
        worker_id = self.insert_worker("w-live")
        ch, queue = self.bind_worker_queue(worker_id)
        self.assertExit(self.ctl("run", "examples.slow"), EXIT_OK)
        (e,) = self.executions()
        self.assertEqual((e["config"], e["timeout_seconds"]), (None, 2))
        self.assertPinned(e)
        self.assertIsNone(self.get_message(ch, queue)[2]["payload"]["config"])

    def test_executable_snapshot(self):
        action = self.row("SELECT * FROM attune.action WHERE ref = 'examples.greet'")
        runtime = self.row("SELECT * FROM attune.runtime WHERE id = %s", (action["runtime"],))
        for version in ("3.12.1", "3.11.0"):
            self.execute("INSERT INTO attune.runtime_version (runtime, runtime_ref, version, "
                         "version_major, execution_config) VALUES (%s, %s, %s, 3, %s)",
                         (runtime["id"], runtime["ref"], version,
                          json.dumps({"interpreter": {"binary": "python" + version[:4]}})))
        self.insert_worker("w-live")
        self.ctl("run", "examples.greet", "-p", "name=Ada")
        (e,) = self.executions()
        snap = self.assertPinned(e)
        self.assertEqual(set(snap), {"release", "executable", "pack_executables"})
        self.assertEqual(snap["pack_executables"], {})
        ex = snap["executable"]
        self.assertEqual(set(ex), {"action", "runtime", "runtime_versions", "workflow_definition"})
        self.assertIsNone(ex["workflow_definition"])
        a = ex["action"]
        for key in ("id", "ref", "pack", "pack_ref", "label", "description", "entrypoint",
                    "runtime", "enabled", "is_adhoc", "parameter_delivery", "parameter_format",
                    "output_format", "timeout_seconds", "param_schema", "out_schema"):
            self.assertEqual(a[key], action[key], key)
        # Every field of Attune's Action model, those this schema lacks at
        # their defaults, so that Attune's own worker can read the snapshot.
        self.assertEqual({k: a[k] for k in (
            "runtime_version_constraint", "enabled_override", "workflow_def", "accesses_mcp",
            "required_worker_runtimes", "worker_selector", "worker_tolerations",
            "worker_affinity", "default_execution_permission_set_refs", "reference_visibility",
            "reference_allowed_pack_refs", "log_retention_policy", "log_retention_limit",
            "artifact_retention_policy", "artifact_retention_limit", "retired_at")}, {
            "runtime_version_constraint": None, "enabled_override": None, "workflow_def": None,
            "accesses_mcp": False, "required_worker_runtimes": {}, "worker_selector": {},
            "worker_tolerations": [], "worker_affinity": {},
            "default_execution_permission_set_refs": [], "reference_visibility": "public",
            "reference_allowed_pack_refs": [], "log_retention_policy": None,
            "log_retention_limit": None, "artifact_retention_policy": None,
            "artifact_retention_limit": None, "retired_at": None})
        self.assertEqual(len(a), 34, sorted(a))
        for key in ("created", "updated"):
            self.assertEqual(datetime.datetime.fromisoformat(a[key]), action[key])
        r = ex["runtime"]
        for key in ("id", "ref", "pack", "pack_ref", "description", "name", "aliases",
                    "distributions", "installation", "execution_config"):
            self.assertEqual(r[key], runtime[key], key)
        self.assertEqual((r["installers"], r["auto_detected"], r["detection_config"],
                          r["retired_at"]), ({}, False, {}, None))
        self.assertEqual(len(r), 16, sorted(r))
        self.assertNotIn("runtime_type", r, "not a field of Attune's Runtime")
        self.assertEqual([v["version"] for v in ex["runtime_versions"]], ["3.11.0", "3.12.1"])
        v = ex["runtime_versions"][1]
        self.assertEqual((v["runtime"], v["runtime_ref"], v["version_major"],
                          v["execution_config"], v["is_default"], v["available"]),
                         (runtime["id"], runtime["ref"], 3,
                          {"interpreter": {"binary": "python3.12"}}, False, True))
        self.assertEqual(len(v), 16, sorted(v))

    def test_action_without_runtime_has_a_null_runtime(self):
        self.execute("UPDATE attune.action SET runtime = NULL WHERE ref = 'examples.hello'")
        self.insert_worker("w-live")
        self.ctl("run", "examples.hello")
        (e,) = self.executions()
        ex = self.assertPinned(e)["executable"]
        self.assertEqual((ex["runtime"], ex["runtime_versions"]), (None, []))

    def test_pack_without_active_release_or_disabled_action(self):
        # As Attune's API: no execution for an action whose pack has no
        # release, nor for a disabled action.
        self.insert_worker("w-live")
        self.execute("UPDATE attune.action SET enabled = false WHERE ref = 'examples.fail'")
        proc = self.ctl("run", "examples.fail")
        self.assertOneLineError(proc, EXIT_USAGE, "examples.fail", "disabled")
        self.execute("UPDATE attune.pack SET active_release = NULL")
        proc = self.ctl("run", "examples.hello")
        self.assertOneLineError(proc, EXIT_USAGE, "examples.hello", "active release",
                                "attunectl pack load")
        self.assertEqual(self.executions(), [])

    def test_least_busy_live_worker_is_chosen(self):
        busy = self.insert_worker("w-busy")
        idle = self.insert_worker("w-idle")
        self.insert_worker("w-dead", heartbeat_age=3600)
        for _ in range(2):
            self.execute("INSERT INTO attune.execution (action_ref, status, worker) "
                         "VALUES ('examples.hello', 'running', %s)", (busy,))
        ch, queue = self.bind_worker_queue(idle)
        for _ in range(3):
            proc = self.assertExit(self.ctl("run", "examples.hello"), EXIT_OK)
            self.assertIn("on worker %d (w-idle)" % idle, proc.stdout)
            self.get_message(ch, queue)

    def test_unbound_queue_is_an_error(self):
        worker_id = self.insert_worker("w-noqueue")
        proc = self.ctl("run", "examples.hello")
        self.assertOneLineError(proc, EXIT_FAILED, "worker %d" % worker_id,
                                "no queue is bound", "left as requested")
        (e,) = self.executions()
        self.assertEqual(e["status"], "requested")

    def test_invalid_parameters_create_nothing(self):
        self.insert_worker("w-live")
        for argv, needle in (
                (["run", "examples.greet"], "name"),
                (["run", "examples.greet", "--params-json", "[1]"], "JSON object"),
                (["run", "examples.greet", "--params-json", "{bad"], "JSON object"),
                (["run", "examples.greet", "-p", "name"], "name"),
                (["run", "examples.greet", "--params-json", '{"name": 5}'], "name"),
                (["run", "examples.nope"], "not registered"),
                (["run", "examples.hello", "--timeout", "0"], "--timeout")):
            with self.subTest(argv=argv):
                proc = self.ctl(*argv)
                self.assertEqual(proc.returncode, EXIT_USAGE, self.describe(proc))
                self.assertIn(needle, proc.stderr)
        self.assertEqual(self.executions(), [])

    def finish_later(self, status, result, delay=0.5):
        """Plays the worker in a thread, on its own connection: once the execution
        is scheduled, moves it to running, then to status with result."""
        conn = psycopg2.connect(self.db_url)
        conn.autocommit = True
        self.addCleanup(conn.close)

        def work():
            with conn.cursor() as cur:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    cur.execute("SELECT id FROM attune.execution WHERE status = 'scheduled'")
                    found = cur.fetchone()
                    if found:
                        break
                    time.sleep(0.02)
                else:
                    return
                cur.execute("UPDATE attune.execution SET status = 'running', started_at = NOW() "
                            "WHERE id = %s", found)
                time.sleep(delay)
                cur.execute("UPDATE attune.execution SET status = %s, result = %s WHERE id = %s",
                            (status, json.dumps(result) if result is not None else None,
                             found[0]))

        thread = threading.Thread(target=work)
        thread.start()
        return thread

    def run_wait(self, status, result):
        worker_id = self.insert_worker("w-live")
        self.bind_worker_queue(worker_id)
        thread = self.finish_later(status, result)
        try:
            return self.ctl("run", "examples.hello", "--wait", timeout=60)
        finally:
            thread.join()

    def test_wait_completed(self):
        result = {"succeeded": True, "exit_code": 0, "stdout": "Hello, world!\n", "stderr": ""}
        proc = self.run_wait("completed", result)
        self.assertExit(proc, EXIT_OK)
        self.assertEqual(json.loads(proc.stdout), dict(result, status="completed"))
        self.assertRegex(proc.stderr, r"^execution \d+ scheduled on worker \d+ \(w-live\)\n$")

    def test_wait_failed(self):
        result = {"succeeded": False, "exit_code": 3, "error": "exited with code 3"}
        proc = self.run_wait("failed", result)
        self.assertExit(proc, EXIT_FAILED)
        self.assertEqual(json.loads(proc.stdout), dict(result, status="failed"))

    def test_wait_timeout(self):
        result = {"succeeded": False, "exit_code": None, "error": "timed out after 1 seconds"}
        proc = self.run_wait("timeout", result)
        self.assertExit(proc, EXIT_TIMEOUT)
        self.assertEqual(json.loads(proc.stdout)["status"], "timeout")

    def test_wait_cancelled_without_result(self):
        proc = self.run_wait("cancelled", None)
        self.assertExit(proc, EXIT_FAILED)
        self.assertEqual(json.loads(proc.stdout), {"status": "cancelled"})

    def test_wait_gives_up_when_the_worker_stops_heartbeating(self):
        worker_id = self.insert_worker("w-dying")
        self.bind_worker_queue(worker_id)
        start = time.monotonic()
        proc = self.ctl("run", "examples.hello", "--wait",
                        env={"ATTUNE__WORKER__HEARTBEAT_INTERVAL": "1"}, timeout=60)
        self.assertExit(proc, EXIT_FAILED)
        self.assertIn("w-dying", proc.stderr)
        self.assertIn("stopped sending heartbeats", proc.stderr)
        self.assertIn("still scheduled", proc.stderr)
        self.assertEqual(proc.stdout, "")
        self.assertLess(time.monotonic() - start, 30)


class ExecutionGetTest(CtlTestCase):

    def setUp(self):
        super().setUp()
        self.migrate()

    def test_get(self):
        worker_id = self.insert_worker("w1")
        exec_id = self.value(
            "INSERT INTO attune.execution (action_ref, config, status, worker, started_at, "
            "result, timeout_seconds) VALUES ('examples.hello', %s, 'completed', %s, NOW(), %s, 9) "
            "RETURNING id",
            (json.dumps({"name": "Ada"}), worker_id,
             json.dumps({"succeeded": True, "exit_code": 0, "stdout": "hi\n"})))
        proc = self.assertExit(self.ctl("execution", "get", str(exec_id)), EXIT_OK)
        got = json.loads(proc.stdout)
        for key in ("id", "action_ref", "status", "worker", "started_at", "created", "updated",
                    "config", "result", "pack_release", "pack_release_digest"):
            self.assertIn(key, got)
        self.assertEqual((got["id"], got["action_ref"], got["status"], got["worker"]),
                         (exec_id, "examples.hello", "completed", worker_id))
        self.assertEqual(got["config"], {"name": "Ada"})
        self.assertEqual(got["result"], {"succeeded": True, "exit_code": 0, "stdout": "hi\n"})
        self.assertEqual(got["timeout_seconds"], 9)
        for key in ("started_at", "created", "updated"):
            self.assertRegex(got[key], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")

    def test_get_fresh_execution_has_nulls(self):
        exec_id = self.value("INSERT INTO attune.execution (action_ref) VALUES ('a.b') "
                             "RETURNING id")
        got = json.loads(self.assertExit(self.ctl("execution", "get", str(exec_id)),
                                         EXIT_OK).stdout)
        self.assertEqual(got["status"], "requested")
        for key in ("worker", "started_at", "config", "result", "action", "pack_release",
                    "pack_release_digest"):
            self.assertIsNone(got[key], key)

    def test_not_found(self):
        proc = self.ctl("execution", "get", "424242")
        self.assertOneLineError(proc, EXIT_FAILED, "execution 424242 not found")
        self.assertEqual(proc.stdout, "")

    def test_bad_id(self):
        for bad in ("abc", "0", "-3", "1.5"):
            with self.subTest(id=bad):
                proc = self.ctl("execution", "get", "--", bad)
                self.assertEqual(proc.returncode, EXIT_USAGE, self.describe(proc))


class WorkersTest(CtlTestCase):

    def setUp(self):
        super().setUp()
        self.migrate()

    def test_table(self):
        a = self.insert_worker("worker-a", runtimes=("shell", "python", "node"), heartbeat_age=5)
        b = self.insert_worker("worker-b", status="inactive", heartbeat_age=None, runtimes=())
        proc = self.assertExit(self.ctl("workers"), EXIT_OK)
        lines = proc.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["ID", "NAME", "STATUS", "TYPE", "HOST", "HEARTBEAT",
                                            "RUNTIMES"])
        rows = {int(line.split()[0]): line.split() for line in lines[1:]}
        self.assertEqual(set(rows), {a, b})
        self.assertEqual(rows[a][1:5], ["worker-a", "active", "local", "testhost"])
        self.assertIn(rows[a][5], ("5s", "6s", "7s"))
        self.assertEqual(rows[a][6], "shell,python,node")
        self.assertEqual(rows[b][1:], ["worker-b", "inactive", "local", "testhost", "-", "-"])

    def test_empty(self):
        proc = self.assertExit(self.ctl("workers"), EXIT_OK)
        self.assertEqual(len(proc.stdout.splitlines()), 1)


if __name__ == "__main__":
    unittest.main()
