"""Bad input on the worker's queue (CONTRACT.md section 2): 200 malformed messages
of every kind, interleaved with 200 valid requests. Every valid execution
completes; every malformed message is rejected without requeue and so lands in
attune.dlx.queue, none of them runs anything, and the worker stays up and ready."""
import json
import unittest
import uuid

from service_support import (SLOW, ServiceTestCase, dispatch_key, new_marker, marker_of,
                             request_envelope, take_from_dead_letter_queue, worker_queue,
                             write_action_file, write_pack)

NOOP_SH = """#!/bin/bash
echo "ok $PARAM_N"
"""

COUNT = 200


def _dump(obj):
    return json.dumps(obj).encode("utf-8")


def _with(env, path, value, delete=False):
    """A copy of env with the field at path ("payload.execution_id") set or deleted."""
    env = json.loads(json.dumps(env))
    obj = env
    parts = path.split(".")
    for part in parts[:-1]:
        obj = obj[part]
    if delete:
        del obj[parts[-1]]
    else:
        obj[parts[-1]] = value
    return env


# Each kind makes a body from a well-formed envelope (for an execution that
# exists and is waiting to run, so that accepting a bad message would show) and
# a unique marker, carried in the body where the body has room for it.
def _kinds():
    def field(path, value):
        return lambda env, mk: _dump(_with(env, path, value))

    def drop(path):
        return lambda env, mk: _dump(_with(env, path, None, delete=True))

    def deep(env, mk):
        nested = mk
        for _ in range(200):
            nested = [nested]
        return _dump(_with(env, "payload.config", {"n": nested}))

    def duplicate_key(env, mk):
        text = _dump(env).decode()
        return (text[:-1] + ', "payload": {"execution_id": 1}}').encode()

    return [
        ("not json", lambda env, mk: ("this is not JSON %s" % mk).encode()),
        ("empty body", lambda env, mk: b""),
        ("json array", lambda env, mk: _dump([mk, env])),
        ("json string", lambda env, mk: _dump(mk)),
        ("json number", lambda env, mk: b"42"),
        ("json null", lambda env, mk: b"null"),
        ("truncated", lambda env, mk: _dump(env)[:-20]),
        ("trailing garbage", lambda env, mk: _dump(env) + (" garbage %s" % mk).encode()),
        ("invalid utf-8", lambda env, mk: _dump(_with(env, "headers.trace_id", mk))
         .replace(b"\"version\"", b"\"v\xff\xfersion\"")),
        ("nested too deep", deep),
        ("duplicate key", duplicate_key),
        ("over 1 MiB", lambda env, mk: _dump(_with(env, "payload.config",
                                                   {"pad": "x" * (1 << 20)}))),
        ("missing payload", drop("payload")),
        ("payload not an object", field("payload", "%s" % "not an object")),
        ("execution_id string", lambda env, mk: _dump(_with(
            env, "payload.execution_id", str(env["payload"]["execution_id"])))),
        ("execution_id negative", lambda env, mk: _dump(_with(
            env, "payload.execution_id", -env["payload"]["execution_id"]))),
        ("execution_id zero", field("payload.execution_id", 0)),
        ("execution_id float", lambda env, mk: _dump(_with(
            env, "payload.execution_id", env["payload"]["execution_id"] + 0.5))),
        ("execution_id null", field("payload.execution_id", None)),
        ("execution_id bool", field("payload.execution_id", True)),
        ("execution_id object", field("payload.execution_id", {"id": 1})),
        ("execution_id too big", lambda env, mk: _dump(env).replace(
            str(env["payload"]["execution_id"]).encode(), b"99999999999999999999999", 1)),
        ("execution_id missing", drop("payload.execution_id")),
        ("worker_id missing", drop("payload.worker_id")),
        ("worker_id negative", field("payload.worker_id", -1)),
        ("worker_id string", field("payload.worker_id", "1")),
        ("action_ref missing", drop("payload.action_ref")),
        ("action_ref empty", field("payload.action_ref", "")),
        ("action_ref number", field("payload.action_ref", 7)),
        ("action_ref too long", field("payload.action_ref", "bad." + "a" * 400)),
        ("config string", field("payload.config", "n=1")),
        ("config array", field("payload.config", [1, 2])),
        ("message_id not a uuid", lambda env, mk: _dump(_with(env, "message_id", mk))),
        ("message_id missing", drop("message_id")),
        ("correlation_id missing", drop("correlation_id")),
        ("correlation_id number", field("correlation_id", 12345)),
        ("message_type other", field("message_type", "ExecutionCompleted")),
        ("message_type missing", drop("message_type")),
        ("version 2.0", field("version", "2.0")),
        ("version number", field("version", 1.0)),
        ("timestamp missing", drop("timestamp")),
        ("timestamp number", field("timestamp", 1700000000)),
        ("headers missing", drop("headers")),
        ("headers array", field("headers", [])),
        ("trace_id number", field("headers.trace_id", 99)),
        ("unknown execution", None),  # filled in by the test: a valid envelope
    ]


class ServiceMalformedTest(ServiceTestCase):

    @classmethod
    def setUpData(cls):
        write_pack(cls.packs_dir, "bad")
        write_action_file(cls.packs_dir, "bad", "noop.sh", NOOP_SH)
        cls.pack_id = cls.db.insert_pack("bad")
        cls.db.insert_action(cls.pack_id, "bad", "noop", "noop.sh",
                             params={"n": {"type": "integer"}})

    def test_malformed_messages_are_dead_lettered_and_valid_ones_run(self):
        w = self.start_worker(env={"ATTUNE__WORKER__MAX_CONCURRENT_TASKS": "10"})
        dead = self.dead_letter_listener(w.id)
        valid = [self.db.insert_execution("bad.noop", {"n": i}) for i in range(COUNT)]
        # The executions the malformed messages name: they must never run.
        decoys = [self.db.insert_execution("bad.noop", {"n": -i}) for i in range(COUNT)]
        unknown_base = self.db.value("SELECT MAX(id) FROM attune.execution") + 100000

        kinds = _kinds()
        sent = {}  # marker -> kind
        for i in range(COUNT):
            self.broker.dispatch(w.id, valid[i], "bad.noop", {"n": i},
                                 trace_id="valid-%d" % i)
            kind, make = kinds[i % len(kinds)]
            marker = new_marker()
            if make is None:
                env = request_envelope(unknown_base + i, w.id, "bad.noop",
                                       {"n": i}, trace_id=marker)
                body = _dump(env)
            else:
                env = request_envelope(decoys[i], w.id, "bad.noop", {"n": i},
                                       trace_id="decoy-%d" % i)
                body = make(env, marker)
            sent[marker] = kind
            self.broker.publish_body(dispatch_key(w.id), body, message_id=marker,
                                     correlation_id=str(uuid.uuid4()),
                                     headers={"x-test-marker": marker})

        statuses = self.wait_all_final(valid, 60 * SLOW, w)
        not_completed = {i: s for i, s in statuses.items() if s != "completed"}
        self.assertEqual(not_completed, {}, "valid executions that did not complete\n" +
                         w.describe())
        self.assertEqual({r["worker"] for r in self.db.rows(
            "SELECT worker FROM attune.execution WHERE id = ANY(%s)", (valid,))}, {w.id})

        markers = set(sent)

        def all_dead(messages):
            return len({marker_of(p, b, markers) for _, p, b, _ in messages} - {None}) >= COUNT
        dead.wait_for(all_dead, 30 * SLOW)
        copies = {}
        for _, props, body, _ in dead.messages:
            m = marker_of(props, body, markers)
            if m:
                copies[m] = copies.get(m, 0) + 1
        missing = sorted({sent[m] for m in markers if m not in copies})
        self.assertEqual(missing, [], "kinds of malformed messages never dead-lettered\n" +
                         w.describe())
        twice = sorted({sent[m] for m, n in copies.items() if n != 1})
        self.assertEqual(twice, [], "dead-lettered more than once")

        taken = take_from_dead_letter_queue(self.mq_url, markers, 30 * SLOW)
        self.assertEqual(sorted({sent[m] for m in markers if taken.get(m) != 1}), [],
                         "malformed messages not found once in attune.dlx.queue")

        decoy_status = self.db.statuses(decoys)
        ran = {i: s for i, s in decoy_status.items() if s != "scheduled"}
        self.assertEqual(ran, {}, "executions named by malformed messages were touched: %r" %
                         {i: sent_kind for i, sent_kind in ran.items()})
        self.assertEqual(self.db.value(
            "SELECT count(*) FROM attune.execution WHERE id >= %s", (unknown_base,)), 0)

        log = w.log()
        self.assertGreaterEqual(log.count("rejected to the dead-letter queue"), COUNT,
                                "each rejection is logged with its reason")
        self.assertTrue(w.alive(), w.describe())
        self.assertEqual(self.broker.queue_state(worker_queue(w.id)), (0, 1))

        # Still ready: one more request runs.
        last = self.db.insert_execution("bad.noop", {"n": 1000})
        self.broker.dispatch(w.id, last, "bad.noop", {"n": 1000})
        row = self.wait_final(last, worker=w)
        self.assertEqual(row["status"], "completed", w.describe())
        self.assertEqual(row["result"]["stdout"], "ok 1000\n")


if __name__ == "__main__":
    unittest.main()
