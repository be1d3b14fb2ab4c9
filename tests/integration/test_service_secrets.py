"""Secrets in service mode: key rows in Attune's layout, encrypted by Python's
`cryptography` as Attune's encrypt_json (AES-256-GCM, key SHA-256 of the
configured string, over the compact JSON text of the value; base64 of nonce ||
ciphertext || tag as a JSON string), reach the action through get_secret(),
with system < pack < action precedence and JSON values other than strings as
their compact JSON text; a key made with another encryption key fails the
execution with a clear error and never leaks its value. With spare processes
(the default) and without."""
import base64
import json
import unittest

import psycopg2.extras

from keys_support import insert_key
from service_support import (ENCRYPTION_KEY, SPARES_OFF, ServiceTestCase, write_action_file,
                             write_pack)

REVEAL_PY = '''"""Returns the secrets it is asked for, each reversed (the worker masks a secret's
own value in the result; the keys also arrive as parameters)."""


def run(names, **keys):
    values = {name: get_secret(name) for name in names}  # noqa: F821
    return {name: None if v is None else v[::-1] for name, v in values.items()}
'''

OTHER_KEY = "a-completely-different-encryption-key-0123456789"

AWKWARD = ("line one\nline two\r\n\"double\" 'single' `id` $HOME ${PATH} $(true) \\ back\\slash "
           "\t tab =eq; semi & amp | pipe > gt < lt # hash % pct {brace} [br] ünïcødé 日本語 🎉 "
           "\u2028 \x01\x7f end ")
SECRETS = {
    "alpha": "sys-alpha",
    "beta": "sys-beta (overridden by the pack)",
    "gamma": "sys-gamma (overridden by pack and action)",
    "awkward": AWKWARD,
    "trailing_newlines": "ends with two newlines\n\n",
    "quote_only": "'",
    "plain": "plain, unencrypted: 'q' \"dq\" $x ü\nsecond line",
}
PACK_SECRETS = {"beta": "pack-beta", "gamma": "pack-gamma (overridden by the action)"}
ACTION_SECRETS = {"gamma": "action-gamma"}
OTHER_PACK_SECRETS = {"only_other": "belongs to the other pack"}
# JSON values that are not strings: get_secret gives their compact JSON text.
JSON_SECRETS = {"conf": {"user": "admin", "ports": [1, 2], "on": True, "none": None},
                "port": 5432}
JSON_TEXTS = {"conf": '{"user":"admin","ports":[1,2],"on":true,"none":null}', "port": "5432"}
BROKEN_VALUE = "plaintext-of-the-broken-key-5f2c9a"
TAMPERED_VALUE = "plaintext-of-the-tampered-key-81d3e0"


def reverse(value):
    return None if value is None else value[::-1]


class ServiceSecretsTest(ServiceTestCase):

    @classmethod
    def setUpData(cls):
        db = cls.db
        for pack in ("sec", "other"):
            write_pack(cls.packs_dir, pack)
            write_action_file(cls.packs_dir, pack, "reveal.py", REVEAL_PY, 0o644)
        params = {"names": {"type": "array", "items": {"type": "string"}}}
        cls.sec = (db.insert_pack("sec"), "sec")
        cls.other = (db.insert_pack("other"), "other")
        cls.reveal = (db.insert_action(cls.sec[0], "sec", "reveal", "reveal.py", params,
                                       ["names"]), "sec.reveal")
        cls.other_reveal = (db.insert_action(cls.other[0], "other", "reveal", "reveal.py",
                                             params, ["names"]), "other.reveal")
        cls.badkey = (db.insert_action(cls.sec[0], "sec", "badkey", "reveal.py", params,
                                       ["names"]), "sec.badkey")
        cls.tampered = (db.insert_action(cls.sec[0], "sec", "tampered", "reveal.py", params,
                                         ["names"]), "sec.tampered")
        def key(name, value, owner_type="system", **kw):
            kw.setdefault("key_string", ENCRYPTION_KEY)
            insert_key(db, name, value, owner_type, **kw)

        for name, value in SECRETS.items():
            key(name, value, encrypted=(name != "plain"))
        for name, value in PACK_SECRETS.items():
            key(name, value, "pack", pack=cls.sec, encrypted=True)
        for name, value in ACTION_SECRETS.items():
            key(name, value, "action", action=cls.reveal, encrypted=True)
        for name, value in OTHER_PACK_SECRETS.items():
            key(name, value, "pack", pack=cls.other, encrypted=True)
        key("conf", JSON_SECRETS["conf"], "action", action=cls.reveal, encrypted=True)
        key("port", JSON_SECRETS["port"], "action", action=cls.reveal)
        # Encrypted with another key, and stored with that key's hash.
        key("broken", BROKEN_VALUE, "action", action=cls.badkey, encrypted=True,
            key_string=OTHER_KEY)
        # The right key's hash, but a ciphertext byte was altered (the tag fails).
        key("tampered", TAMPERED_VALUE, "action", action=cls.tampered, encrypted=True)
        stored = bytearray(base64.b64decode(db.value(
            "SELECT value #>> '{}' FROM attune.key WHERE name = 'tampered'")))
        stored[14] ^= 0x01
        db.execute("UPDATE attune.key SET value = %s WHERE name = 'tampered'",
                   (psycopg2.extras.Json(base64.b64encode(bytes(stored)).decode()),))
        cls.names = sorted(set(SECRETS) | set(PACK_SECRETS) | set(ACTION_SECRETS) |
                           set(OTHER_PACK_SECRETS) | set(JSON_SECRETS) | {"broken", "not_a_key"})

    def run_reveal(self, w, action, names):
        eid = self.db.insert_execution(action[1], {"names": names}, action_id=action[0])
        self.broker.dispatch(w.id, eid, action[1], {"names": names})
        return self.wait_final(eid, worker=w)

    def assert_not_leaked(self, w, value, *places):
        if len(value.strip()) < 6:
            return  # too short to tell from ordinary text
        self.assertNotIn(value, w.log(), "a secret value is in the worker's log")
        for place in places:
            self.assertNotIn(value, json.dumps(place, ensure_ascii=False))

    def test_secrets_reach_the_action_with_precedence(self):
        w = self.start_worker()
        self.assert_python_route(w)
        row = self.run_reveal(w, self.reveal, self.names)
        self.assertEqual(row["status"], "completed", "%r\n%s" % (row, w.describe()))
        expected = dict(SECRETS)
        expected.update(PACK_SECRETS)
        expected.update(ACTION_SECRETS)
        expected.update(JSON_TEXTS)
        expected.update({"only_other": None, "broken": None, "not_a_key": None})
        data = row["result"].get("data")
        self.assertIsInstance(data, dict, row["result"])
        for name in self.names:
            self.assertEqual(data.get(name), reverse(expected[name]), "secret %r" % name)

        other = self.run_reveal(w, self.other_reveal, self.names)
        self.assertEqual(other["status"], "completed", "%r\n%s" % (other, w.describe()))
        expected = dict(SECRETS)
        expected.update(OTHER_PACK_SECRETS)
        expected.update({"broken": None, "not_a_key": None, "conf": None, "port": None})
        for name in self.names:
            self.assertEqual(other["result"]["data"].get(name), reverse(expected[name]),
                             "secret %r as seen by other.reveal" % name)

        for value in list(SECRETS.values()) + list(PACK_SECRETS.values()):
            self.assert_not_leaked(w, value)

    def test_key_of_another_encryption_key_fails_clearly(self):
        w = self.start_worker()
        row = self.run_reveal(w, self.badkey, ["broken", "alpha"])
        self.assertEqual(row["status"], "failed", "%r\n%s" % (row, w.describe()))
        result = row["result"]
        self.assertIs(result["succeeded"], False)
        self.assertIn("broken", result.get("error", ""), result)
        self.assertRegex(result["error"], r"(?i)key", result)
        self.assert_not_leaked(w, BROKEN_VALUE, result)
        self.assertNotIn("sys-alpha", json.dumps(result), "the action ran anyway")

    def test_altered_ciphertext_fails_clearly(self):
        w = self.start_worker()
        row = self.run_reveal(w, self.tampered, ["tampered"])
        self.assertEqual(row["status"], "failed", "%r\n%s" % (row, w.describe()))
        self.assertIn("tampered", row["result"].get("error", ""), row["result"])
        self.assert_not_leaked(w, TAMPERED_VALUE, row["result"])

    def test_worker_with_another_key_fails_every_encrypted_read(self):
        # The same rows, read by a worker configured with a different key: the
        # stored hashes do not match it.
        w = self.start_worker(env={"ATTUNE__SECURITY__ENCRYPTION_KEY": OTHER_KEY + "-x"})
        row = self.run_reveal(w, self.other_reveal, ["alpha"])
        self.assertEqual(row["status"], "failed", "%r\n%s" % (row, w.describe()))
        self.assertRegex(row["result"].get("error", ""), r"alpha|beta|gamma|awkward|only_other|"
                         r"trailing_newlines|quote_only", row["result"])
        for value in SECRETS.values():
            self.assert_not_leaked(w, value, row["result"])


class ServiceSecretsColdTest(ServiceSecretsTest):
    """The same tests with every interpreter started cold: python without the fork
    server (runtimes.python.fork_server: false), shell and node without spare
    processes (worker.spare_processes: 0)."""

    python_fork_server = "false"
    worker_defaults = SPARES_OFF


if __name__ == "__main__":
    unittest.main()
