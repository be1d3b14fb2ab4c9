"""The peer bench/e2e measures the worker against: a Celery prefork worker on the
same RabbitMQ, running the same action script as a subprocess (`bash noop.sh`, the
way the raw-limit loop runs it) and the same trivial Python function in-process.
A task's completion is seen through Celery's rpc:// result backend: the worker
publishes each result to the client's reply queue, one message, as the attune
worker publishes execution.completed.

This file is both the Celery application (`celery -A celery_peer worker`) and the
client that bench/e2e drives it with."""
import os
import subprocess
import sys
import time

sys.path.insert(0, "/usr/lib/python3/dist-packages")
from celery import Celery  # noqa: E402
from celery.result import ResultSet  # noqa: E402

QUEUE = "bench.celery"
# What the raw-limit loop and the attune worker give the script.
SCRIPT_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/", "LANG": "C.UTF-8"}
# Debian's interpreter, the one python3-celery is installed for.
CELERY_PYTHON = "/usr/bin/python3"

app = Celery("celery_peer", broker=os.environ.get("BENCH_CELERY_BROKER", "amqp://"),
             backend="rpc://")
app.conf.update(task_default_queue=QUEUE, task_serializer="json", result_serializer="json",
                accept_content=["json"], worker_hijack_root_logger=False)


@app.task(name="bench.noop_sh")
def run_script():
    """The action script as a subprocess, as the raw-limit loop runs it: in a
    session of its own (see e2e_support.RAW_ENV)."""
    subprocess.run(["/usr/bin/bash", os.environ["BENCH_CELERY_SCRIPT"]],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env=SCRIPT_ENV, check=True,
                   start_new_session=True)


@app.task(name="bench.noop_py")
def run_function():
    """The bench pack's trivial Python action, called in the worker process."""
    import noop  # bench/packs/bench/actions/noop.py, on the worker's PYTHONPATH
    return noop.run()


class CeleryPeer:
    """A Celery prefork worker of `concurrency` processes on the broker at
    broker_url, and the client that publishes to it and waits for results."""

    def __init__(self, broker_url, concurrency, script, actions_dir, workdir):
        self.concurrency = concurrency
        env = dict(os.environ, BENCH_CELERY_BROKER=broker_url, BENCH_CELERY_SCRIPT=script,
                   PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.abspath(__file__)),
                                               actions_dir]),
                   C_FORCE_ROOT="1")
        self.logf = open(os.path.join(workdir, "celery.log"), "w+")
        self.proc = subprocess.Popen(
            [CELERY_PYTHON, "-m", "celery", "-A", "celery_peer", "worker", "--pool", "prefork",
             "--concurrency", str(concurrency), "--queues", QUEUE, "--loglevel", "WARNING",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            env=env, stdout=self.logf, stderr=self.logf, cwd=workdir, start_new_session=True)
        app.conf.broker_url = broker_url
        self.tasks = {"script": run_script, "function": run_function}
        self._wait_ready()

    def _wait_ready(self):
        """Ready once a task of each kind has run on every process."""
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.logf.seek(0)
                sys.exit("bench: the Celery worker exited with %s\n%s" % (
                    self.proc.returncode, self.logf.read()[-2000:]))
            try:
                for task in self.tasks.values():
                    ResultSet([task.delay() for _ in range(2 * self.concurrency)]).get(timeout=5)
                return
            except Exception:  # noqa: BLE001 - not up yet: the broker queue waits for it
                time.sleep(0.2)
        sys.exit("bench: the Celery worker did not become ready")

    def latency(self, kind, runs):
        """Publish -> result received, one at a time, ms."""
        task, latencies = self.tasks[kind], []
        for _ in range(runs):
            sent = time.perf_counter()
            task.delay().get(timeout=30)
            latencies.append((time.perf_counter() - sent) * 1000)
        return latencies

    def throughput(self, kind, count):
        """count tasks published at once; completions per second."""
        task = self.tasks[kind]
        start = time.perf_counter()
        results = ResultSet([task.delay() for _ in range(count)])
        results.get(timeout=600)
        return count / (time.perf_counter() - start)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.logf.close()
