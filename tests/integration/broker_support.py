"""The broker side of the service tests: inbound requests as Attune's executor
publishes them, a publishing connection with confirms, private listeners for
what the worker publishes and for what it dead-letters, and taking a test's own
messages from the shared dead-letter queue."""
import json
import random
import re
import time
import uuid
from datetime import datetime, timezone

import pika
import pika.exceptions

EXCHANGE = "attune.executions"
DLX = "attune.dlx"
DLX_QUEUE = "attune.dlx.queue"
# The arguments Attune's own worker declares its queue with, types included
# (pika sends 300000 as a signed 32-bit int, as Attune does).
WORKER_QUEUE_ARGUMENTS = {"x-dead-letter-exchange": DLX, "x-message-ttl": 300000}


def _params(url):
    params = pika.URLParameters(url)
    params.connection_attempts = 3
    params.retry_delay = 0.5
    params.socket_timeout = 10
    params.blocked_connection_timeout = 30
    # No heartbeats: a blocking connection answers them only while the test
    # calls into pika, and a test busy elsewhere for a minute (hundreds of HTTP
    # requests to a sanitized worker, say) would be cut off by the broker.
    params.heartbeat = 0
    return params


def now_rfc3339():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def request_envelope(execution_id, worker_id, action_ref, config=None,
                     message_type="ExecutionScheduled", trace_id=None, correlation_id=None,
                     message_id=None, release_id=None, release_digest=None):
    """An inbound request as Attune's executor sends it today: CONTRACT.md
    section 2, plus the pinned release when given."""
    headers = {"retry_count": 0, "source_service": "executor"}
    if trace_id is not None:
        headers["trace_id"] = trace_id
    payload = {"execution_id": execution_id, "worker_id": worker_id, "action_ref": action_ref,
               "config": config}
    if release_id is not None or release_digest is not None:
        payload.update(release_id=release_id, release_digest=release_digest)
    return {
        "message_id": message_id or str(uuid.uuid4()),
        "correlation_id": correlation_id or str(uuid.uuid4()),
        "message_type": message_type,
        "version": "1.0",
        "timestamp": now_rfc3339(),
        "headers": headers,
        "payload": payload,
    }


def dispatch_key(worker_id):
    return "execution.dispatch.worker.%d" % worker_id


def worker_queue(worker_id):
    return "worker.%d.executions" % worker_id


class Broker:
    """A publishing connection (with publisher confirms, so that a publish has
    reached its queue when the call returns) and passive queue inspection."""

    def __init__(self, url):
        self.url = url
        self.conn = pika.BlockingConnection(_params(url))
        self.ch = self.conn.channel()
        self.ch.confirm_delivery()

    def close(self):
        try:
            if self.conn.is_open:
                self.conn.close()
        except pika.exceptions.AMQPError:
            pass

    def publish_body(self, routing_key, body, message_id=None, correlation_id=None,
                     headers=None, mandatory=True):
        """Publishes raw bytes (or a dict, as JSON) to attune.executions. With
        `mandatory`, an unroutable message (no such worker queue) raises."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode("utf-8")
        elif isinstance(body, str):
            body = body.encode("utf-8")
        props = pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                     message_id=message_id, correlation_id=correlation_id,
                                     timestamp=int(time.time()), headers=headers)
        self.ch.basic_publish(EXCHANGE, routing_key, body, props, mandatory=mandatory)

    def publish_request(self, worker_id, envelope, routing_worker_id=None):
        """Publishes an envelope (from request_envelope) the way the executor does."""
        self.publish_body(dispatch_key(routing_worker_id or worker_id), envelope,
                          message_id=envelope.get("message_id"),
                          correlation_id=envelope.get("correlation_id"))
        return envelope

    def dispatch(self, worker_id, execution_id, action_ref, config=None, **kwargs):
        env = request_envelope(execution_id, worker_id, action_ref, config, **kwargs)
        return self.publish_request(worker_id, env)

    def queue_state(self, queue):
        """(ready messages, consumers) of a queue, or None if it does not exist."""
        ch = self.conn.channel()
        try:
            ok = ch.queue_declare(queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker:
            return None
        ch.close()
        return ok.method.message_count, ok.method.consumer_count

    def queue_arguments_ok(self, queue):
        """True if declaring `queue` durable with the arguments of Attune's own
        worker agrees with the queue on the broker (the broker refuses a mismatch)."""
        ch = self.conn.channel()
        try:
            ch.queue_declare(queue, durable=True, arguments=WORKER_QUEUE_ARGUMENTS)
        except pika.exceptions.ChannelClosedByBroker:
            return False
        ch.close()
        return True

    def delete_queue(self, queue):
        ch = self.conn.channel()
        try:
            ch.queue_delete(queue)
            ch.close()
        except pika.exceptions.ChannelClosedByBroker:
            pass


class Listener:
    """A private exclusive, auto-delete queue bound to `bindings` [(exchange,
    routing key)], consumed in the background of the calls to pump()."""

    def __init__(self, url, bindings):
        self.conn = pika.BlockingConnection(_params(url))
        self.ch = self.conn.channel()
        ok = self.ch.queue_declare("", exclusive=True, auto_delete=True)
        self.queue = ok.method.queue
        for exchange, key in bindings:
            self.ch.queue_bind(self.queue, exchange, routing_key=key)
        self.messages = []  # (method, properties, raw body, parsed body or None)
        self.ch.basic_consume(self.queue, self._on_message, auto_ack=True)

    def _on_message(self, ch, method, props, body):
        try:
            parsed = json.loads(body.decode("utf-8"))
        except ValueError:
            parsed = None
        self.messages.append((method, props, body, parsed))

    def pump(self, seconds=0.0):
        self.conn.process_data_events(time_limit=seconds)

    def wait_for(self, predicate, timeout):
        """Pumps until predicate(self.messages) is true; returns whether it is."""
        deadline = time.monotonic() + timeout
        while True:
            self.pump(0.05)
            if predicate(self.messages):
                return True
            if time.monotonic() >= deadline:
                return False

    def close(self):
        try:
            if self.conn.is_open:
                self.conn.close()
        except pika.exceptions.AMQPError:
            pass


class EventListener(Listener):
    """The worker's reports on attune.executions: status changes and completions.
    Dispatch keys are not bound, so that this queue never makes an unroutable
    dispatch (another test's worker without a queue) look routed."""

    def __init__(self, url):
        super().__init__(url, [(EXCHANGE, "execution.status.changed"),
                               (EXCHANGE, "execution.completed")])

    def events(self, execution_id, message_type=None):
        """(properties, envelope) of the messages about one execution."""
        out = []
        for method, props, body, env in self.messages:
            if not isinstance(env, dict) or not isinstance(env.get("payload"), dict):
                continue
            if env["payload"].get("execution_id") != execution_id:
                continue
            if env.get("message_type") in ("ExecutionRequested", "ExecutionScheduled"):
                continue  # our own requests, heard on execution.dispatch.*
            if message_type and env.get("message_type") != message_type:
                continue
            out.append((method, props, env))
        return out

    def completed(self, execution_id):
        return self.events(execution_id, "ExecutionCompleted")


class DeadLetterListener(Listener):
    """A copy of every message the queues of `worker_ids` dead-letter to
    attune.dlx, so that a test can count its own without taking from the shared
    queue. attune.dlx is a direct exchange: a dead-lettered message keeps the
    routing key it was published with, the worker's dispatch key."""

    def __init__(self, url, worker_ids):
        super().__init__(url, [(DLX, dispatch_key(i)) for i in worker_ids])


def marker_of(props, body, markers):
    """Which of `markers` a message carries: its message id, an AMQP header
    x-test-marker, or anywhere in the body."""
    if props.message_id in markers:
        return props.message_id
    headers = props.headers or {}
    value = headers.get("x-test-marker")
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if value in markers:
        return value
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    for m in re.findall(r"mk-[0-9a-f]{32}", text):
        if m in markers:
            return m
    return None


def take_from_dead_letter_queue(url, markers, timeout):
    """Takes (acknowledges) the messages in attune.dlx.queue that carry one of
    `markers`. The queue is shared: messages of others are held unacknowledged
    only until one pass over the queue ends, then given back, so that two tests
    looking at once cannot hold each other's messages for long. Returns
    {marker: count}."""
    found = {}
    conn = pika.BlockingConnection(_params(url))
    try:
        ch = conn.channel()
        deadline = time.monotonic() + timeout
        while sum(found.values()) < len(markers) and time.monotonic() < deadline:
            held = []
            try:
                while sum(found.values()) < len(markers):
                    method, props, body = ch.basic_get(DLX_QUEUE, auto_ack=False)
                    if method is None:
                        break
                    m = marker_of(props, body, markers)
                    if m is None:
                        held.append(method.delivery_tag)
                    else:
                        found[m] = found.get(m, 0) + 1
                        ch.basic_ack(method.delivery_tag)
            finally:
                for tag in held:
                    ch.basic_nack(tag, requeue=True)
            if sum(found.values()) < len(markers):
                conn.process_data_events(time_limit=0.1 + random.random() * 0.2)
        ch.close()
    finally:
        conn.close()
    return found


def new_marker():
    return "mk-" + uuid.uuid4().hex
