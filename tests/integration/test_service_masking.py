"""Secret masking in service mode: a key-store secret that a shell action prints
slowly, a few bytes at a time (raw, base64, base64url, URL-encoded, hex), on
stdout and stderr, and that a Python action returns in its result, is nowhere in
stdout.log, stderr.log, result.json, execution.result or the published
ExecutionCompleted: `********` is there instead. A secret output field
(out_schema) is sealed with its real value and masked where the data repeats it."""
import base64
import binascii
import json
import os
import urllib.parse
import unittest

import psycopg2.extras

from keys_support import decrypt_json, insert_key
from service_support import ENCRYPTION_KEY, ServiceTestCase, write_action_file, write_pack

SECRET = "Sup3r/S3cret+Value?&= \u00e9nd"
SECRET_B = SECRET.encode()
FORMS = {
    "raw": SECRET,
    "base64": base64.b64encode(SECRET_B).decode(),
    "base64url": base64.urlsafe_b64encode(SECRET_B).decode().rstrip("="),
    "url": urllib.parse.quote(SECRET, safe=""),
    "url_plus": urllib.parse.quote_plus(SECRET),
    "hex": binascii.hexlify(SECRET_B).decode(),
    "HEX": binascii.hexlify(SECRET_B).decode().upper(),
}

# Each form in pieces of three bytes, a pause between pieces, so that pipe
# reads split the values anywhere; the forms themselves come from Python.
PRINT_SH = r'''#!/bin/bash
s="$(get_secret token)"
forms="$(printf %s "$s" | python3 -c '
import base64, binascii, sys, urllib.parse
v = sys.stdin.buffer.read()
print(v.decode())
print(base64.b64encode(v).decode())
print(base64.urlsafe_b64encode(v).decode().rstrip("="))
print(urllib.parse.quote(v, safe=""))
print(urllib.parse.quote_plus(v))
print(binascii.hexlify(v).decode())
print(binascii.hexlify(v).decode().upper())
')"
while IFS= read -r f; do
  for ((i = 0; i < ${#f}; i += 3)); do
    printf %s "${f:i:3}"
    printf %s "${f:i:3}" >&2
    sleep 0.005
  done
  printf ' <- form\n'
  printf ' <- form\n' >&2
done <<< "$forms"
'''

RETURN_PY = '''"""Returns the secret in its result, in several places."""


def run(**params):
    s = get_secret("token")  # noqa: F821
    return {"value": s, "nested": {"list": ["x " + s + " y"]}, s: "as a key"}
'''

JSON_SH = r'''#!/bin/bash
get_secret token | python3 -c '
import json, sys
s = sys.stdin.read().rstrip("\n")
print(json.dumps({"password": s, "note": "the password is " + s}))
'
'''


class ServiceMaskingTest(ServiceTestCase):

    @classmethod
    def setUpData(cls):
        db = cls.db
        write_pack(cls.packs_dir, "mask")
        write_action_file(cls.packs_dir, "mask", "print.sh", PRINT_SH)
        write_action_file(cls.packs_dir, "mask", "ret.py", RETURN_PY, 0o644)
        write_action_file(cls.packs_dir, "mask", "json.sh", JSON_SH)
        pack = db.insert_pack("mask")
        cls.printer = (db.insert_action(pack, "mask", "print", "print.sh"), "mask.print")
        cls.returner = (db.insert_action(pack, "mask", "ret", "ret.py"), "mask.ret")
        cls.jsonout = (db.insert_action(pack, "mask", "json", "json.sh", output="json"),
                       "mask.json")
        db.execute("UPDATE attune.action SET out_schema = %s WHERE id = %s",
                   (psycopg2.extras.Json({"password": {"type": "string", "secret": True},
                                          "note": {"type": "string"}}), cls.jsonout[0]))
        insert_key(db, "token", SECRET, "pack", pack=(pack, "mask"), encrypted=True,
                   key_string=ENCRYPTION_KEY)

    def run_action(self, w, events, action):
        eid = self.db.insert_execution(action[1], {}, action_id=action[0])
        self.broker.dispatch(w.id, eid, action[1], {})
        row = self.wait_final(eid, worker=w)
        self.assertTrue(events.wait_for(lambda _: events.completed(eid), 10),
                        "no ExecutionCompleted for %d" % eid)
        return row, events.completed(eid)[0][2]

    def places(self, row, completed):
        """Every stored or published text of the execution, by name."""
        result = row["result"]
        out = {"execution.result": json.dumps(result, ensure_ascii=False),
               "ExecutionCompleted": json.dumps(completed, ensure_ascii=False)}
        for name in ("stdout.log", "stderr.log", "result.json"):
            with open(os.path.join(result["artifacts_dir"], name), encoding="utf-8",
                      errors="replace") as f:
                out[name] = f.read()
        return out

    def assert_masked(self, places, w):
        for where, text in places.items():
            for form, value in FORMS.items():
                self.assertNotIn(value, text, "%s form of the secret in %s" % (form, where))
        self.assertNotIn(SECRET, w.log(), "the secret is in the worker's log")

    def test_printed_slowly_in_pieces(self):
        w = self.start_worker()
        events = self.event_listener()
        row, completed = self.run_action(w, events, self.printer)
        self.assertEqual(row["status"], "completed", "%r\n%s" % (row, w.describe()))
        places = self.places(row, completed)
        self.assert_masked(places, w)
        for name in ("stdout.log", "stderr.log"):
            self.assertEqual(places[name].count("******** <- form\n"), len(FORMS), places[name])
        self.assertIn("********", row["result"]["stdout"])
        self.assertIn("********", row["result"]["stderr"])

    def test_returned_in_the_result(self):
        w = self.start_worker()
        events = self.event_listener()
        row, completed = self.run_action(w, events, self.returner)
        self.assertEqual(row["status"], "completed", "%r\n%s" % (row, w.describe()))
        self.assert_masked(self.places(row, completed), w)
        data = row["result"]["data"]
        self.assertEqual(data["value"], "********")
        self.assertEqual(data["nested"], {"list": ["x ******** y"]})
        self.assertEqual(data["********"], "as a key")
        self.assertEqual(completed["payload"]["result"]["data"], data)

    def test_secret_output_field_sealed_with_its_value(self):
        w = self.start_worker()
        events = self.event_listener()
        row, completed = self.run_action(w, events, self.jsonout)
        self.assertEqual(row["status"], "completed", "%r\n%s" % (row, w.describe()))
        self.assert_masked(self.places(row, completed), w)
        data = row["result"]["data"]
        self.assertEqual(data["password"], {"$attune_secret": True, "redacted": True})
        self.assertEqual(data["note"], "the password is ********")
        stored = self.db.value(
            "SELECT encrypted_value FROM attune.execution_secret_value WHERE entity_type = "
            "'execution_result' AND entity_id = %s AND json_path = '/data/password'", (row["id"],))
        self.assertEqual(decrypt_json(stored, ENCRYPTION_KEY), SECRET)


if __name__ == "__main__":
    unittest.main()
