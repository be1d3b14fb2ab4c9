"""What bench/e2e drives a worker service with: executions created in the database and
published on the broker, completions received, latencies and rates; the raw spawn
limits the service is compared with; memory and CPU of processes from /proc."""
import datetime
import json
import os
import sys
import time
import uuid

sys.path.insert(0, "/usr/lib/python3/dist-packages")
import pika  # noqa: E402
import pika.exceptions  # noqa: E402

# What the raw-limit loops give the command: what the worker gives an action.
RAW_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/", "LANG": "C.UTF-8"}
# Every process measured starts a session of its own, as the worker starts each action:
# with autogroup scheduling (kernel.sched_autogroup_enabled) each session is one share
# of the CPU against other programs, so ten children in one session would get a tenth
# of what ten actions get on a busy machine.
ZYGOTE_COMM = "attune-zygote"
ACTION_REF = "bench.noop_sh"
PY_REF = "bench.noop_py"
YAML_REF = "bench.noop_yaml"
# worker.max_concurrent_tasks of every worker, and the Celery peer's concurrency.
SLOTS = 10


def log(msg):
    print(msg, flush=True)


def percentile(values, p):
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(p / 100.0 * len(ordered) + 0.5)) - 1))
    return ordered[k]


def memory_kb(pid):
    fields = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0])
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Pss", "Private_Clean", "Private_Dirty"):
                fields[key] = int(value.split()[0])
    fields["USS"] = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return fields


def stat_fields(pid):
    """comm and the fields after it of /proc/PID/stat (state first)."""
    with open("/proc/%d/stat" % pid) as f:
        text = f.read()
    comm = text[text.index("(") + 1:text.rindex(")")]
    return comm, text.rsplit(")", 1)[1].split()


def descendant_named(pid, comm):
    """The first process named comm below pid (its child, or deeper), or None."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            name, fields = stat_fields(int(entry))
        except (OSError, ValueError):
            continue
        children.setdefault(int(fields[1]), []).append((int(entry), name))
    below = list(children.get(pid, ()))
    while below:
        child, name = below.pop(0)
        if name == comm:
            return child
        below += children.get(child, ())
    return None


def zygote_memory_kb(worker_pid):
    """Memory of the worker's Python fork server, or None when it runs none."""
    pid = descendant_named(worker_pid, ZYGOTE_COMM)
    try:
        return memory_kb(pid) if pid else None
    except OSError:
        return None


def cpu_seconds(pid):
    """User and system CPU time a process has used."""
    fields = stat_fields(pid)[1]
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Broker:
    """Publishes executions to one worker's queue and receives execution.completed."""

    def __init__(self, mq_url, worker_id):
        self.conn = pika.BlockingConnection(pika.URLParameters(mq_url))
        self.worker_id = worker_id
        self.completed = {}
        self.results = {}
        self.worker_queue = "worker.%d.executions" % worker_id
        # The worker's row turns active before it has declared the exchange
        # on a fresh broker: its queue's consumer says the topology is there.
        while self.consumers() < 1:
            time.sleep(0.002)
        self.ch = self.conn.channel()
        self.queue = self.ch.queue_declare("", exclusive=True).method.queue
        self.ch.queue_bind(self.queue, "attune.executions", "execution.completed")
        self.ch.basic_consume(self.queue, self.on_message, auto_ack=True)

    def consumers(self):
        """Consumers of the worker's queue; 0 until the worker has declared it."""
        ch = self.conn.channel()
        try:
            return ch.queue_declare(self.worker_queue, passive=True).method.consumer_count
        except pika.exceptions.ChannelClosedByBroker:
            return 0
        finally:
            if ch.is_open:
                ch.close()

    def on_message(self, ch, method, properties, body):
        now = time.perf_counter()
        payload = json.loads(body)["payload"]
        self.completed[payload["execution_id"]] = (now, payload["status"])
        self.results[payload["execution_id"]] = payload.get("result")

    def publish(self, execution_id, action_ref):
        body = json.dumps({
            "message_id": str(uuid.uuid4()), "correlation_id": str(uuid.uuid4()),
            "message_type": "ExecutionScheduled", "version": "1.0",
            "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "headers": {"retry_count": 0, "source_service": "bench"},
            "payload": {"execution_id": execution_id, "worker_id": self.worker_id,
                        "action_ref": action_ref, "config": {}}})
        self.ch.basic_publish("attune.executions", "execution.dispatch.worker.%d" % self.worker_id,
                              body, pika.BasicProperties(content_type="application/json",
                                                         delivery_mode=2))

    def collect(self, ids, timeout, slice_s=0.0005):
        """Until every one of ids has completed, or timeout seconds."""
        deadline = time.time() + timeout
        while any(i not in self.completed for i in ids) and time.time() < deadline:
            self.conn.process_data_events(time_limit=slice_s)


def create_executions(conn, count, action_ref, parameters=None):
    """The config of an execution is its parameter map itself, as Attune stores it."""
    cur = conn.cursor()
    cur.execute("INSERT INTO attune.execution (action_ref, config, status) SELECT %s, "
                "%s, 'scheduled' FROM generate_series(1, %s) RETURNING id",
                (action_ref, json.dumps(parameters or {}), count))
    return [r[0] for r in cur.fetchall()]


def run_one(conn, broker, action_ref, parameters):
    """One execution to its end: its status and result object."""
    (eid,) = create_executions(conn, 1, action_ref, parameters)
    broker.publish(eid, action_ref)
    broker.collect((eid,), 60)
    if eid not in broker.completed:
        sys.exit("bench: %s did not complete within 60 s" % action_ref)
    return broker.completed[eid][1], broker.results.get(eid)


def measure_latency(conn, broker, runs, action_ref, gap_s=0.0):
    """Executions one at a time: each published once the one before has
    completed, and gap_s after it (0: at once)."""
    ids = create_executions(conn, runs, action_ref)
    latencies = []
    for eid in ids:
        if gap_s:
            time.sleep(gap_s)
        sent = time.perf_counter()
        broker.publish(eid, action_ref)
        broker.collect((eid,), 30)
        latencies.append((broker.completed[eid][0] - sent) * 1000)
    return latencies


def measure_throughput(conn, broker, count, worker_pid, action_ref):
    ids = create_executions(conn, count, action_ref)
    sent = {}
    start = time.perf_counter()
    for eid in ids:
        sent[eid] = time.perf_counter()
        broker.publish(eid, action_ref)
    peak = 0
    deadline = time.time() + 600
    while any(i not in broker.completed for i in ids) and time.time() < deadline:
        broker.collect(ids, 0.2, 0.01)
        peak = max(peak, memory_kb(worker_pid)["VmRSS"])
    elapsed = time.perf_counter() - start
    done = [eid for eid in ids if eid in broker.completed]
    failed = [eid for eid in done if broker.completed[eid][1] != "Completed"]
    latencies = [(broker.completed[eid][0] - sent[eid]) * 1000 for eid in done]
    return len(done) / elapsed, latencies, len(done), len(failed), peak


def spawn_directly(argv, count, concurrency):
    """Spawns argv count times, `concurrency` at a time: seconds taken."""
    devnull = [(os.POSIX_SPAWN_OPEN, fd, "/dev/null", os.O_RDWR, 0) for fd in (0, 1, 2)]
    running = 0
    started = 0
    start = time.perf_counter()
    while started < count or running:
        while running < concurrency and started < count:
            os.posix_spawn(argv[0], argv, RAW_ENV, file_actions=devnull, setsid=True)
            running += 1
            started += 1
        os.wait()
        running -= 1
    return time.perf_counter() - start


def raw_limit_around(argv, count, measure, concurrency=SLOTS):
    """The raw limit of argv (executions per second, spawned directly) in two
    halves, one before measure() runs and one after: the load of the machine,
    which other programs change, weighs on it as on what measure() measures."""
    elapsed = spawn_directly(argv, count // 2, concurrency)
    measure()
    elapsed += spawn_directly(argv, count - count // 2, concurrency)
    return count / elapsed
