"""1,000 hostile messages interleaved with valid requests (CONTRACT.md section 2):
bodies that are not JSON, wrong types, 10 MB bodies, 10,000-deep nesting,
negative and huge ids, SQL text, invalid UTF-8. Every malformed one is
dead-lettered exactly once and runs nothing; every valid request completes;
valid requests for executions whose action does not exist (an unknown ref, SQL
text as the ref) fail without being dead-lettered; the worker stays up, and its
resident memory at the end is within 2 MB of what it was after the first 100
messages."""
import json
import time
import unittest
import uuid

import pika

from faults_support import (EXCHANGE, SLOW, FaultTestCase, dead_letter_listener, dispatch_key,
                            marker_of, new_marker,
                            read_runs, request_envelope, run_counts, sanitized_build,
                            status_counts, vm_rss_kb, worker_queue)
from service_support import take_from_dead_letter_queue

HOSTILE = 1000
VALID = 200
UNKNOWN_ACTION = 40
SQL_ACTION = 10
FIRST = 100
RSS_SLACK_KB = 2048
SQL = "'; DROP TABLE attune.execution; --"
MB10 = 10 * 1024 * 1024
BIG_LIMIT = 3  # 10 MB bodies in all


def dump(obj):
    return json.dumps(obj).encode("utf-8")


def edit(env, path, value=None, delete=False):
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


def deep_arrays(n):
    return b"[" * n + b"]" * n


def deep_objects(n):
    return b'{"a":' * n + b"1" + b"}" * n


def hostile_kinds():
    """[(name, make(env, mk) -> body)]: each turns a well-formed request for a
    waiting execution (a decoy that must never run) into something malformed."""
    def field(path, value):
        return lambda env, mk: dump(edit(env, path, value))

    def drop(path):
        return lambda env, mk: dump(edit(env, path, delete=True))

    def raw_id(text):
        """execution_id written as raw JSON text (numbers Python would not write)."""
        def make(env, mk):
            body = dump(edit(env, "payload.execution_id", 777000777))
            return body.replace(b"777000777", text)
        return make

    def utf8(bad):
        """Invalid UTF-8 bytes inside a string of an otherwise good envelope."""
        def make(env, mk):
            body = dump(edit(env, "headers.trace_id", "X" + mk + "X"))
            return body.replace(("X" + mk + "X").encode(), mk.encode() + bad)
        return make

    def padded(n):
        return lambda env, mk: dump(edit(env, "payload.config",
                                         {"pad": "x" * n}))

    def nested_in_config(env, mk):
        body = dump(edit(env, "payload.config", "NEST"))
        return body.replace(b'"NEST"', deep_objects(10000))

    def duplicate_key(env, mk):
        text = dump(env)
        return text[:-1] + b', "payload": {"execution_id": 1}}'

    return [
        ("not json", lambda env, mk: ("this is not JSON %s" % mk).encode()),
        ("empty body", lambda env, mk: b""),
        ("whitespace", lambda env, mk: b" \n\t "),
        ("json array", lambda env, mk: dump([mk, env])),
        ("json string", lambda env, mk: dump(mk)),
        ("json number", lambda env, mk: b"42"),
        ("json null", lambda env, mk: b"null"),
        ("json true", lambda env, mk: b"true"),
        ("truncated", lambda env, mk: dump(env)[:-7]),
        ("trailing garbage", lambda env, mk: dump(env) + (" garbage %s" % mk).encode()),
        ("two documents", lambda env, mk: dump(env) + dump(env)),
        ("duplicate key", duplicate_key),
        ("nul byte", lambda env, mk: dump(env).replace(b'"1.0"', b'"1.\x000"')),
        ("escaped nul", lambda env, mk: dump(env).replace(b'"1.0"', b'"1.\\u00000"')),
        ("lone surrogate escape", lambda env, mk: dump(edit(env, "headers.trace_id", "T"))
         .replace(b'"T"', b'"\\ud800"')),
        ("10,000-deep arrays", lambda env, mk: deep_arrays(10000)),
        ("10,000-deep objects in config", nested_in_config),
        ("10,000 opening brackets", lambda env, mk: b"[" * 10000),
        ("1 MiB + 1", lambda env, mk: dump(env) + b" " * ((1 << 20) + 1 - len(dump(env)))),
        ("10 MB envelope", padded(MB10)),
        ("10 MB not json", lambda env, mk: (mk.encode() + b"\x01") * (MB10 // 36)),
        ("execution_id -1", field("payload.execution_id", -1)),
        ("execution_id 0", field("payload.execution_id", 0)),
        ("execution_id 2**63", field("payload.execution_id", 2 ** 63)),
        ("execution_id 2**64", field("payload.execution_id", 2 ** 64)),
        ("execution_id 10**30", field("payload.execution_id", 10 ** 30)),
        ("execution_id -2**63", field("payload.execution_id", -2 ** 63)),
        ("execution_id -2**63-1", field("payload.execution_id", -2 ** 63 - 1)),
        ("execution_id 2**63-1 (no such row)", field("payload.execution_id", 2 ** 63 - 1)),
        ("execution_id 1e400", raw_id(b"1e400")),
        ("execution_id -0", raw_id(b"-0")),
        ("execution_id 1.5", field("payload.execution_id", 1.5)),
        ("execution_id 1e3", raw_id(b"1e3")),
        ("execution_id string", lambda env, mk: dump(edit(
            env, "payload.execution_id", str(env["payload"]["execution_id"])))),
        ("execution_id SQL", field("payload.execution_id", "1; " + SQL)),
        ("execution_id true", field("payload.execution_id", True)),
        ("execution_id null", field("payload.execution_id", None)),
        ("execution_id object", field("payload.execution_id", {"id": 1})),
        ("execution_id array", field("payload.execution_id", [1])),
        ("execution_id missing", drop("payload.execution_id")),
        ("worker_id -1", field("payload.worker_id", -1)),
        ("worker_id 2**64", field("payload.worker_id", 2 ** 64)),
        ("worker_id string", field("payload.worker_id", "1")),
        ("action_ref number", field("payload.action_ref", 7)),
        ("action_ref null", field("payload.action_ref", None)),
        ("action_ref array", field("payload.action_ref", [SQL])),
        ("action_ref empty", field("payload.action_ref", "")),
        ("action_ref 300 chars", field("payload.action_ref", "x." + SQL * 9)),
        ("action_ref missing", drop("payload.action_ref")),
        ("config string", field("payload.config", SQL)),
        ("config number", field("payload.config", 3)),
        ("config array", field("payload.config", [SQL])),
        ("payload array", field("payload", [1])),
        ("payload string", field("payload", SQL)),
        ("payload null", field("payload", None)),
        ("payload missing", drop("payload")),
        ("message_id SQL", field("message_id", SQL)),
        ("message_id number", field("message_id", 12345)),
        ("message_id missing", drop("message_id")),
        ("correlation_id number", field("correlation_id", 1)),
        ("correlation_id missing", drop("correlation_id")),
        ("message_type other", field("message_type", "ExecutionCompleted")),
        ("message_type SQL", field("message_type", SQL)),
        ("message_type missing", drop("message_type")),
        ("version 2.0", field("version", "2.0")),
        ("version number", field("version", 1.0)),
        ("timestamp number", field("timestamp", 1700000000)),
        ("timestamp missing", drop("timestamp")),
        ("headers array", field("headers", [])),
        ("headers string", field("headers", SQL)),
        ("headers missing", drop("headers")),
        ("trace_id number", field("headers.trace_id", 99)),
        ("trace_id too long", field("headers.trace_id", SQL * 4)),
        ("invalid utf-8 ff fe", utf8(b"\xff\xfe")),
        ("invalid utf-8 overlong", utf8(b"\xc0\xaf")),
        ("invalid utf-8 surrogate", utf8(b"\xed\xa0\x80")),
        ("invalid utf-8 truncated", utf8(b"\xe2\x82")),
        ("invalid utf-8 in a key", lambda env, mk: dump(env).replace(b'"version"',
                                                                     b'"v\xff\xfersion"')),
        ("latin-1 body", lambda env, mk: dump(edit(env, "headers.trace_id", "caf\u00e9 " + mk))
         .replace(b"caf\\u00e9", b"caf\xe9")),
    ]


class HostileMessagesTest(FaultTestCase):

    def publish_all(self, worker_id, messages):
        """Publishes (body, marker) pairs without confirms, then a synchronous call
        on the same channel: the broker has routed them all when it returns."""
        ch = self.broker.conn.channel()
        try:
            for body, marker in messages:
                props = pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                             message_id=marker,
                                             correlation_id=str(uuid.uuid4()),
                                             timestamp=int(time.time()),
                                             headers={"x-test-marker": marker})
                ch.basic_publish(EXCHANGE, dispatch_key(worker_id), body, props)
            ch.queue_declare(worker_queue(worker_id), passive=True)
        finally:
            ch.close()

    def test_hostile_messages_among_valid_ones(self):
        w = self.start_worker(env={"ATTUNE__WORKER__MAX_CONCURRENT_TASKS": "10"})
        dead = dead_letter_listener(self.mq_url, w.id)
        self.listeners.append(dead)
        completions = self.collector()

        valid = self.new_recordings(VALID, 0)
        valid_ids = [e for e, _ in valid]
        decoys = self.new_recordings(HOSTILE, 0)  # named by malformed messages; never run
        decoy_ids = [e for e, _ in decoys]
        unknown = [self.db.insert_execution("nosuch.action_%d" % i, {"runlog": self.runlog},
                                            action_id=None) for i in range(UNKNOWN_ACTION)]
        sql_rows = [self.db.insert_execution(SQL, {"note": SQL}, action_id=None)
                    for _ in range(SQL_ACTION)]
        failing_ids = unknown + sql_rows

        # The good ones: SQL text and non-ASCII text where the envelope allows it.
        goods = []
        for n, (eid, params) in enumerate(valid):
            trace = [None, SQL, "\u00e9t\u00e9 \u79d8\u5bc6 \U0001f511", "x" * 127][n % 4]
            env = request_envelope(eid, w.id, "flt.rec",
                                   dict(params, context={"sql": SQL}),
                                   trace_id=trace)
            goods.append((dump(env), new_marker(), "valid"))
        for eid in unknown:
            ref = self.db.execution(eid)["action_ref"]
            goods.append((dump(request_envelope(eid, w.id, ref, None)), new_marker(),
                          "unknown action"))
        for eid in sql_rows:
            goods.append((dump(request_envelope(eid, w.id, SQL, {"q": SQL},
                                                trace_id=SQL)), new_marker(), "sql action"))
        # Spread the failing ones among the valid ones.
        goods = [goods[i] for i in sorted(range(len(goods)), key=lambda i: (i * 7919) % 251)]

        kinds = hostile_kinds()
        bads = []
        big = 0
        k = 0
        while len(bads) < HOSTILE:
            name, make = kinds[k % len(kinds)]
            k += 1
            if name.startswith("10 MB"):
                if big >= BIG_LIMIT:
                    continue
                big += 1
            decoy = decoy_ids[len(bads)]
            env = request_envelope(decoy, w.id, "flt.rec", decoys[len(bads)][1])
            marker = new_marker()
            bads.append((make(env, marker), marker, name))

        # Interleaved: four hostile, then one good, and so on.
        sequence = []
        gi = 0
        for i, bad in enumerate(bads):
            sequence.append(bad)
            if i % 4 == 3 and gi < len(goods):
                sequence.append(goods[gi])
                gi += 1
        sequence.extend(goods[gi:])
        kind_of = {mk: name for _, mk, name in sequence}
        bad_markers = {mk for _, mk, _ in bads}
        self.assertEqual(len(bad_markers), HOSTILE)
        self.assertTrue(any(name.startswith("10 MB") for _, _, name in sequence[:FIRST]))

        def dead_markers():
            return {marker_of(p, b, bad_markers) for _, p, b, _ in dead.messages} - {None}

        def wait_through(upto, timeout):
            """Waits until the first `upto` messages of the sequence are dealt with."""
            want_dead = {mk for _, mk, name in sequence[:upto] if mk in bad_markers}
            good_ids = [json.loads(b)["payload"]["execution_id"] for b, mk, _ in sequence[:upto]
                        if mk not in bad_markers]
            deadline = time.monotonic() + timeout
            while True:
                dead.pump(0.1)
                completions.pump(0.05)
                got_dead = want_dead <= dead_markers()
                statuses = self.db.statuses(good_ids)
                done = all(s in ("completed", "failed") for s in statuses.values())
                if got_dead and done:
                    return
                if time.monotonic() >= deadline:
                    missing = sorted({kind_of[m] for m in want_dead - dead_markers()})
                    self.fail("after %ss: malformed kinds not dead-lettered %r; statuses of "
                              "good ones %r\n%s" % (timeout, missing, status_counts(statuses),
                                                    w.describe()))

        began = time.monotonic()
        self.publish_all(w.id, [(b, mk) for b, mk, _ in sequence[:FIRST]])
        wait_through(FIRST, 60 * SLOW)
        time.sleep(0.5)
        rss_first = vm_rss_kb(w.pid)
        self.publish_all(w.id, [(b, mk) for b, mk, _ in sequence[FIRST:]])
        wait_through(len(sequence), 180 * SLOW)
        time.sleep(0.5)
        rss_end = vm_rss_kb(w.pid)
        took = time.monotonic() - began

        # Valid ones: completed, once each. Unrunnable ones: failed, not dead-lettered.
        statuses = self.db.statuses(valid_ids)
        self.assertEqual(status_counts(statuses), {"completed": VALID}, w.describe())
        self.assert_ran_once(valid_ids)
        failed = self.db.rows("SELECT id, status::text AS status, result->>'error' AS error "
                              "FROM attune.execution WHERE id = ANY(%s)", (failing_ids,))
        self.assertEqual({r["status"] for r in failed}, {"failed"}, failed[:3])
        for r in failed:
            self.assertIn("is not registered", r["error"], r)
        self.assertEqual(completions.wait_ids(valid_ids + failing_ids, 30 * SLOW), set())

        # Malformed ones: each dead-lettered once; none ran or touched a row.
        copies = {}
        for _, props, body, _ in dead.messages:
            m = marker_of(props, body, set(kind_of))
            if m:
                copies[m] = copies.get(m, 0) + 1
        not_dead = sorted({kind_of[m] for m in bad_markers if m not in copies})
        self.assertEqual(not_dead, [], "malformed kinds never dead-lettered\n" + w.describe())
        twice = sorted({kind_of[m] for m, n in copies.items() if n != 1})
        self.assertEqual(twice, [], "dead-lettered more than once")
        wrongly_dead = sorted({kind_of[m] for m in copies if m not in bad_markers})
        self.assertEqual(wrongly_dead, [], "good requests dead-lettered")
        taken = take_from_dead_letter_queue(self.mq_url, bad_markers, 60 * SLOW)
        self.assertEqual(sorted({kind_of[m] for m in bad_markers if taken.get(m) != 1}), [],
                         "malformed messages not found once in attune.dlx.queue")
        self.assertEqual(status_counts(self.db.statuses(decoy_ids)), {"scheduled": HOSTILE},
                         "executions named by malformed messages were touched")
        self.assertEqual(set(run_counts(self.runlog)) - set(valid_ids), set(),
                         "something ran that was not a valid request")
        self.assertGreaterEqual(w.log().count("rejected to the dead-letter queue"), HOSTILE)

        self.assertTrue(w.alive(), w.describe())
        self.assertEqual(self.broker.queue_state(worker_queue(w.id)), (0, 1))
        more = self.new_recordings(1, 0)
        self.dispatch_all(w.id, more)
        self.assertEqual(self.wait_final(more[0][0], 30 * SLOW, w)["status"], "completed")

        print("\n%d messages in %.1f s; VmRSS after the first %d: %d kB, at the end: %d kB "
              "(%+d kB)" % (len(sequence), took, FIRST, rss_first, rss_end,
                            rss_end - rss_first))
        if not sanitized_build():
            self.assertLessEqual(rss_end - rss_first, RSS_SLACK_KB,
                                 "resident memory grew by %d kB after the first %d messages "
                                 "(%d kB then, %d kB at the end)" % (
                                     rss_end - rss_first, FIRST, rss_first, rss_end))
        pgids = {pgid for _, _, pgid in read_runs(self.runlog)}
        self.assertTrue(pgids)
        self.stop_worker(w)


if __name__ == "__main__":
    unittest.main()
