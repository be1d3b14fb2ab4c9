"""The broker topology next to Attune's own services: what the worker declares
agrees with what they declare (so neither side's declaration fails), and a worker
that finds an older topology (attune.dlx as a fanout exchange, its queue without
the message TTL) warns, uses it as it is and works."""
import subprocess
import unittest
import uuid
from urllib.parse import quote

import pika
import pika.exceptions

from service_support import (DLX, DLX_QUEUE, EXCHANGE, SERVICES, SLOW, WORKER_QUEUE_ARGUMENTS,
                             Broker, ServiceTestCase, _params, dispatch_key, new_marker,
                             request_envelope, take_from_dead_letter_queue, wait_until_value,
                             worker_queue, write_action_file, write_pack)

NOOP_SH = """#!/bin/bash
echo "noop $PARAM_N"
"""

# The exchanges Attune's services declare at start (durable, no arguments).
ATTUNE_EXCHANGES = {
    "attune.events": "topic",
    "attune.executions": "topic",
    "attune.notifications": "fanout",
    "attune.metadata": "topic",
    "attune.dlx": "direct",
}


def rabbitmqctl(*args):
    proc = subprocess.run([SERVICES, "rabbitmqctl"] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError("rabbitmqctl %s failed:\n%s%s" % (" ".join(args), proc.stdout,
                                                             proc.stderr))


def declare_as_attune(url, queue):
    """Declares, non-passively, what Attune's worker declares; returns the
    declarations the broker refused, with its reason."""
    refused = {}
    conn = pika.BlockingConnection(_params(url))
    try:
        steps = [("exchange " + name, lambda ch, n=name, t=kind: ch.exchange_declare(
            n, exchange_type=t, durable=True, auto_delete=False, arguments=None))
            for name, kind in ATTUNE_EXCHANGES.items()]
        steps.append(("queue " + DLX_QUEUE, lambda ch: ch.queue_declare(
            DLX_QUEUE, durable=True, exclusive=False, auto_delete=False, arguments=None)))
        steps.append(("queue " + queue, lambda ch: ch.queue_declare(
            queue, durable=True, exclusive=False, auto_delete=False,
            arguments=WORKER_QUEUE_ARGUMENTS)))
        for what, step in steps:
            ch = conn.channel()  # a refusal closes the channel: one each
            try:
                step(ch)
                ch.close()
            except pika.exceptions.ChannelClosedByBroker as e:
                refused[what] = "%s %s" % (e.reply_code, e.reply_text)
    finally:
        conn.close()
    return refused


class ServiceTopologyTest(ServiceTestCase):

    @classmethod
    def setUpData(cls):
        write_pack(cls.packs_dir, "topo")
        write_action_file(cls.packs_dir, "topo", "noop.sh", NOOP_SH)
        cls.pack_id = cls.db.insert_pack("topo")
        cls.db.insert_action(cls.pack_id, "topo", "noop", "noop.sh",
                             params={"n": {"type": "integer"}})

    def test_attune_declares_the_same_after_the_worker(self):
        w = self.start_worker()
        self.assertEqual(declare_as_attune(self.mq_url, worker_queue(w.id)), {},
                         "declarations of Attune's services the broker refuses after the "
                         "worker's\n" + w.describe())
        self.assertNotIn("other settings", w.log())
        # And the worker still takes work on the queue Attune would declare.
        eid = self.db.insert_execution("topo.noop", {"n": 1})
        self.broker.dispatch(w.id, eid, "topo.noop", {"n": 1})
        self.assertEqual(self.wait_final(eid, worker=w)["status"], "completed", w.describe())

    def private_vhost(self):
        """A vhost of this test's own, so that what it leaves on the broker
        (an old fanout attune.dlx) meets no other test. Returns its URL."""
        vhost = "topo-" + uuid.uuid4().hex[:10]
        rabbitmqctl("add_vhost", vhost)
        self.addCleanup(rabbitmqctl, "delete_vhost", vhost)
        user = pika.URLParameters(self.mq_url).credentials.username
        rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
        return self.mq_url.rsplit("/", 1)[0] + "/" + quote(vhost, safe="")

    def test_older_topology_is_used_as_it_is_with_a_warning(self):
        url = self.private_vhost()
        # The worker's row exists, so its queue name is known before it starts.
        name = "w-old-topo-" + uuid.uuid4().hex[:8]
        wid = self.db.value("INSERT INTO attune.worker (name, worker_role, status) VALUES "
                            "(%s, 'action', 'inactive') RETURNING id", (name,))
        queue = worker_queue(wid)
        conn = pika.BlockingConnection(_params(url))
        ch = conn.channel()
        # What the original contract had: a fanout dead-letter exchange, and the
        # worker queue with the dead-letter exchange but no TTL.
        ch.exchange_declare(DLX, exchange_type="fanout", durable=True)
        ch.exchange_declare(EXCHANGE, exchange_type="topic", durable=True)
        ch.queue_declare(queue, durable=True, arguments={"x-dead-letter-exchange": DLX})
        conn.close()

        w = self.start_worker(name, env={"ATTUNE__MESSAGE_QUEUE__URL": url}, wait=False)
        w.wait_ready()
        self.assertEqual(w.id, wid)
        broker = Broker(url)
        self.addCleanup(broker.close)
        self.assertTrue(wait_until_value(lambda: (broker.queue_state(queue) or (0, 0))[1] >= 1,
                                         10 * SLOW), "no consumer on %s\n%s" % (queue,
                                                                                w.describe()))
        log = w.log()
        for kind, obj, differs in (("exchange", DLX, "type"),
                                   ("queue", queue, "x-message-ttl")):
            lines = [line for line in log.splitlines()
                     if "%s %s already exists with other settings" % (kind, obj) in line]
            self.assertEqual(len(lines), 1, "one warning about %s %s\n%s" % (kind, obj,
                                                                             w.describe()))
            self.assertIn(differs, lines[0])

        # It works: a request runs and is reported...
        eid = self.db.insert_execution("topo.noop", {"n": 5})
        broker.dispatch(wid, eid, "topo.noop", {"n": 5})
        row = self.wait_final(eid, worker=w)
        self.assertEqual(row["status"], "completed", w.describe())
        self.assertEqual(row["result"]["stdout"], "noop 5\n")
        # ... and a malformed one still lands in attune.dlx.queue.
        marker = new_marker()
        env = request_envelope(eid + 1000, wid, "topo.noop", trace_id=marker)
        env["version"] = "2.0"
        broker.publish_body(dispatch_key(wid), env, message_id=marker)
        self.assertEqual(take_from_dead_letter_queue(url, {marker}, 10 * SLOW), {marker: 1},
                         w.describe())
        self.assertTrue(w.alive(), w.describe())
        self.stop_worker(w)


if __name__ == "__main__":
    unittest.main()
