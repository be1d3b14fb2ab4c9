"""`attunectl key set` against a real PostgreSQL: keys in Attune's layout (a
JSONB value: a plain key is the JSON string of the text, an encrypted one
Attune's encrypt_json of it, checked by decrypting here with Python's
`cryptography`), canonical refs and local refs filled by the table's trigger,
values from standard input, system/pack/action owners, updates, and values never
printed."""
import base64
import hashlib
import unittest

from ctl_support import ENCRYPTION_KEY, EXIT_CONFIG, EXIT_FAILED, EXIT_OK, EXIT_USAGE, CtlTestCase
from keys_support import decrypt_json, decrypt_raw, json_text

ENC_ENV = {"ATTUNE__SECURITY__ENCRYPTION_KEY": ENCRYPTION_KEY}


def decrypt(stored, key_string=ENCRYPTION_KEY):
    """The text an encrypted key.value (encrypt_json of a JSON string) holds."""
    value = decrypt_json(stored, key_string)
    assert isinstance(value, str), value
    return value


class KeySetTest(CtlTestCase):

    def setUp(self):
        super().setUp()
        self.migrate()
        self.load_examples()

    def key(self, ref):
        return self.row("SELECT * FROM attune.key WHERE ref = %s", (ref,))

    def assertQuiet(self, proc, value):
        """The value shows up in neither output stream."""
        self.assertNotIn(value, proc.stdout)
        self.assertNotIn(value, proc.stderr)

    def test_plain_system_key(self):
        proc = self.assertExit(self.ctl("key", "set", "api_token", "s3cr3t-plain"), EXIT_OK)
        self.assertEqual(proc.stdout, "key system.api_token created\n")
        self.assertQuiet(proc, "s3cr3t-plain")
        k = self.key("system.api_token")
        self.assertEqual((k["owner_type"], k["owner"], k["name"], k["local_ref"], k["value"],
                          k["encrypted"]),
                         ("system", "system", "api_token", "api_token", "s3cr3t-plain", False))
        self.assertEqual(self.value("SELECT jsonb_typeof(value) FROM attune.key"), "string")
        self.assertIsNone(k["encryption_key_hash"])
        for col in ("owner_pack", "owner_pack_ref", "owner_action", "owner_action_ref",
                    "owner_identity", "owner_sensor"):
            self.assertIsNone(k[col], col)

    def test_update_keeps_the_row(self):
        self.assertExit(self.ctl("key", "set", "token", "one"), EXIT_OK)
        first = self.key("system.token")
        proc = self.assertExit(self.ctl("key", "set", "token", "two", "--encrypt", env=ENC_ENV),
                               EXIT_OK)
        self.assertEqual(proc.stdout, "key system.token updated (encrypted)\n")
        second = self.key("system.token")
        self.assertEqual(second["id"], first["id"])
        self.assertTrue(second["encrypted"])
        self.assertEqual(decrypt(second["value"]), "two")
        self.assertGreater(second["updated"], first["updated"])
        self.assertExit(self.ctl("key", "set", "token", "three"), EXIT_OK)
        third = self.key("system.token")
        self.assertEqual((third["value"], third["encrypted"], third["encryption_key_hash"]),
                         ("three", False, None))
        self.assertEqual(self.value("SELECT count(*) FROM attune.key"), 1)

    def test_encrypted_key_format(self):
        value = "pässwörd – 秘密 🔑\nsecond line 'quoted' \"double\" $HOME"
        proc = self.assertExit(self.ctl("key", "set", "db_password", value, "--encrypt",
                                        env=ENC_ENV), EXIT_OK)
        self.assertEqual(proc.stdout, "key system.db_password created (encrypted)\n")
        self.assertQuiet(proc, value)
        k = self.key("system.db_password")
        self.assertTrue(k["encrypted"])
        self.assertEqual(k["encryption_key_hash"],
                         hashlib.sha256(ENCRYPTION_KEY.encode()).hexdigest())
        self.assertNotIn("pässwörd", k["value"])
        # encrypt_json: the compact JSON text of the value, a string with its quotes.
        plaintext = json_text(value).encode()
        self.assertTrue(plaintext.startswith(b'"'))
        raw = base64.b64decode(k["value"], validate=True)
        self.assertEqual(len(raw), 12 + len(plaintext) + 16)
        self.assertEqual(decrypt_raw(k["value"], ENCRYPTION_KEY), plaintext)
        self.assertEqual(decrypt(k["value"]), value)

    def test_fresh_nonce_every_time(self):
        stored = set()
        for name in ("a", "b", "c"):
            self.assertExit(self.ctl("key", "set", name, "same", "--encrypt", env=ENC_ENV),
                            EXIT_OK)
            stored.add(self.key("system." + name)["value"])
        self.assertEqual(len(stored), 3)
        self.assertEqual(len({base64.b64decode(v)[:12] for v in stored}), 3)

    def test_encrypt_without_key_is_a_configuration_error(self):
        proc = self.ctl("key", "set", "x", "value", "--encrypt")
        self.assertOneLineError(proc, EXIT_CONFIG, "security.encryption_key is not set")
        self.assertEqual(self.value("SELECT count(*) FROM attune.key"), 0)

    def test_value_from_stdin(self):
        cases = [
            ("piped", "secret\n", "secret"),           # echo secret | attunectl key set NAME -
            ("printf", "secret", "secret"),            # printf %s secret | ...
            ("two_newlines", "secret\n\n", "secret\n"),  # only one newline is dropped
            ("multiline", "line 1\nline 2\n", "line 1\nline 2"),
            ("empty", "", ""),
        ]
        for name, stdin, stored in cases:
            with self.subTest(name=name):
                proc = self.assertExit(self.ctl("key", "set", name, "-", stdin=stdin), EXIT_OK)
                self.assertEqual(proc.stdout, "key system.%s created\n" % name)
                self.assertEqual(self.key("system." + name)["value"], stored)

    def test_big_value_from_stdin_encrypted(self):
        value = "".join(chr(33 + i % 90) for i in range(65536))
        self.assertExit(self.ctl("key", "set", "big", "-", "--encrypt", stdin=value, env=ENC_ENV),
                        EXIT_OK)
        self.assertEqual(decrypt(self.key("system.big")["value"]), value)

    def test_value_starting_with_a_dash(self):
        self.assertExit(self.ctl("key", "set", "flag", "--", "-n"), EXIT_OK)
        self.assertEqual(self.key("system.flag")["value"], "-n")

    def test_pack_owner(self):
        pack_id = self.value("SELECT id FROM attune.pack WHERE ref = 'examples'")
        proc = self.assertExit(self.ctl("key", "set", "api_key", "pk-value", "--pack", "examples"),
                               EXIT_OK)
        self.assertEqual(proc.stdout, "key pack.examples.api_key created\n")
        k = self.key("pack.examples.api_key")
        self.assertEqual((k["owner_type"], k["owner"], k["owner_pack"], k["owner_pack_ref"],
                          k["local_ref"], k["value"]),
                         ("pack", "examples", pack_id, "examples", "api_key", "pk-value"))
        self.assertIsNone(k["owner_action"])

    def test_action_owner(self):
        action_id = self.value("SELECT id FROM attune.action WHERE ref = 'examples.greet'")
        proc = self.assertExit(self.ctl("key", "set", "api_key", "ak-value", "--action",
                                        "examples.greet", "--encrypt", env=ENC_ENV), EXIT_OK)
        self.assertEqual(proc.stdout, "key action.examples.greet.api_key created (encrypted)\n")
        k = self.key("action.examples.greet.api_key")
        self.assertEqual((k["owner_type"], k["owner"], k["owner_action"], k["owner_action_ref"]),
                         ("action", "examples.greet", action_id, "examples.greet"))
        self.assertEqual(decrypt(k["value"]), "ak-value")

    def test_same_name_for_each_owner(self):
        self.assertExit(self.ctl("key", "set", "token", "sys"), EXIT_OK)
        self.assertExit(self.ctl("key", "set", "token", "pack", "--pack", "examples"), EXIT_OK)
        self.assertExit(self.ctl("key", "set", "token", "act", "--action", "examples.hello"),
                        EXIT_OK)
        rows = self.rows("SELECT ref, owner_type::text, value FROM attune.key ORDER BY id")
        self.assertEqual([(r["ref"], r["owner_type"], r["value"]) for r in rows],
                         [("system.token", "system", "sys"), ("pack.examples.token", "pack", "pack"),
                          ("action.examples.hello.token", "action", "act")])

    def test_unknown_owner(self):
        proc = self.ctl("key", "set", "k", "v", "--pack", "nope")
        self.assertOneLineError(proc, EXIT_FAILED, "pack 'nope' is not registered")
        proc = self.ctl("key", "set", "k", "v", "--action", "examples.nope")
        self.assertOneLineError(proc, EXIT_FAILED, "action 'examples.nope' is not registered")
        self.assertEqual(self.value("SELECT count(*) FROM attune.key"), 0)

    def test_invalid_input(self):
        for argv, stdin, needle in (
                (["key", "set", "bad.name", "v"], None, "invalid key name"),
                (["key", "set", "", "v"], None, "invalid key name"),
                (["key", "set", "Upper", "v"], None, "invalid key name"),
                (["key", "set", "_leading", "v"], None, "invalid key name"),
                (["key", "set", "x" * 64, "v"], None, "invalid key name"),
                (["key", "set", "nul", "-"], "a\0b", "NUL"),
                (["key", "set", "k", "v", "--pack", "examples", "--action", "examples.hello"],
                 None, "--pack and --action"),
                (["key", "set", "k"], None, "missing argument")):
            with self.subTest(argv=argv):
                proc = self.ctl(*argv, stdin=stdin)
                self.assertEqual(proc.returncode, EXIT_USAGE, self.describe(proc))
                self.assertIn(needle, proc.stderr)
        self.assertEqual(self.value("SELECT count(*) FROM attune.key"), 0)


if __name__ == "__main__":
    unittest.main()
