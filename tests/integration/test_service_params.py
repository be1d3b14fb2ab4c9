"""The parameter document of an execution as Attune builds it today: the
execution's config is the flat parameter map (undeclared keys kept); secret
parameters, redacted in config and stored encrypted in execution_secret_value
(written here by Python's `cryptography` as Attune's encrypt_json), are
restored into it; the key store's values join it by name (system < pack <
action, over parameters of the same name) and stay what get_secret returns,
unless secrets.keystore is false."""
import json
import unittest

from keys_support import insert_key
from service_support import ENCRYPTION_KEY, ServiceTestCase, write_action_file, write_pack

# Every string the actions return is reversed: the worker masks a secret's own
# value in the result.
SHOW_PY = '''"""Returns its parameters and what get_secret says of two names, strings
reversed."""


def rev(v):
    if isinstance(v, str):
        return v[::-1]
    if isinstance(v, dict):
        return {rev(k): rev(x) for k, x in v.items()}
    if isinstance(v, list):
        return [rev(x) for x in v]
    return v


def run(**params):
    return rev({"params": params, "api": get_secret("api"),  # noqa: F821
                "user": get_secret("user")})  # noqa: F821
'''

# Its parameter document (stdin) and its environment, as one JSON line.
ENV_SH = """#!/bin/bash
python3 -c 'import json, os, sys
def rev(v):
    return {k[::-1]: rev(x) for k, x in v.items()} if isinstance(v, dict) else v[::-1]
print(json.dumps(rev({"stdin": sys.stdin.read(), "environ": dict(os.environ)})))'
"""


def rev(v):
    if isinstance(v, str):
        return v[::-1]
    if isinstance(v, dict):
        return {rev(k): rev(x) for k, x in v.items()}
    if isinstance(v, list):
        return [rev(x) for x in v]
    return v

MARKER = {"$attune_secret": True, "redacted": True}
SECRET = "s3cr3t-of-the-execution-4b9e1f"
OTHER_KEY = "a-completely-different-encryption-key-0123456789"


class ServiceParamsTest(ServiceTestCase):

    @classmethod
    def setUpData(cls):
        db = cls.db
        write_pack(cls.packs_dir, "prm")
        write_action_file(cls.packs_dir, "prm", "show.py", SHOW_PY, 0o644)
        cls.pack = (db.insert_pack("prm"), "prm")
        schema = {"user": {"type": "string"}, "password": {"type": "string"},
                  "retries": {"type": "integer", "default": 3}}
        cls.show = (db.insert_action(cls.pack[0], "prm", "show", "show.py", schema,
                                     output="json"), "prm.show")
        cls.keyed = (db.insert_action(cls.pack[0], "prm", "keyed", "show.py", schema,
                                      output="json"), "prm.keyed")
        # Keys seen only by prm.keyed: a system one would reach every action.
        insert_key(db, "api", "pack-api-value", "pack", pack=cls.pack, encrypted=True,
                   key_string=ENCRYPTION_KEY)
        insert_key(db, "user", {"name": "from-the-action-key"}, "action", action=cls.keyed)
        write_action_file(cls.packs_dir, "prm", "env.sh", ENV_SH)
        cls.env = (db.insert_action(cls.pack[0], "prm", "env", "env.sh", schema, output="json"),
                   "prm.env")

    def run_action(self, w, action, config, secrets=(), secret_key=ENCRYPTION_KEY):
        eid = self.db.insert_execution(action[1], config=config, action_id=action[0])
        for path, value in secrets:
            self.db.insert_secret_value(eid, path, value, key_string=secret_key)
        self.broker.dispatch(w.id, eid, action[1], config)
        return eid, self.wait_final(eid, worker=w)

    def data(self, row, w):
        self.assertEqual(row["status"], "completed", "%r\n%s" % (row, w.describe()))
        return rev(row["result"]["data"])

    def test_flat_config_is_the_parameter_map(self):
        w = self.start_worker()
        config = {"user": "ada", "undeclared": [1, 2], "context": {"source": "test"}}
        _, row = self.run_action(w, self.show, config)
        params = self.data(row, w)["params"]
        self.assertEqual(params.pop("api", None), "pack-api-value")  # the pack's key
        self.assertEqual(params, dict(config, retries=3))

    def test_secret_parameters_are_restored(self):
        w = self.start_worker()
        config = {"user": "ada", "password": MARKER}
        eid, row = self.run_action(w, self.show, config, [("/password", SECRET)])
        params = self.data(row, w)["params"]
        self.assertEqual(params["password"], SECRET)
        self.assertEqual(params["user"], "ada")
        # The row keeps the marker, and the value is in no log.
        stored = self.db.value("SELECT config FROM attune.execution WHERE id = %s", (eid,))
        self.assertEqual(stored["password"], MARKER)
        self.assertNotIn(SECRET, w.log())

    def test_secret_parameter_of_another_key_fails(self):
        w = self.start_worker()
        config = {"user": "ada", "password": MARKER}
        _, row = self.run_action(w, self.show, config, [("/password", SECRET)],
                                 secret_key=OTHER_KEY)
        self.assertEqual(row["status"], "failed", "%r\n%s" % (row, w.describe()))
        self.assertIn("'/password'", row["result"]["error"])
        self.assertIsNone(row["result"].get("exit_code"))
        self.assertNotIn(SECRET, json.dumps(row["result"]))
        self.assertNotIn(SECRET, w.log())

    def test_keys_join_the_parameters(self):
        w = self.start_worker()
        _, row = self.run_action(w, self.keyed, {"user": "from-the-config"})
        data = self.data(row, w)
        self.assertEqual(data["params"]["api"], "pack-api-value")
        self.assertEqual(data["params"]["user"], {"name": "from-the-action-key"})
        self.assertEqual(data["api"], "pack-api-value")
        self.assertEqual(data["user"], '{"name":"from-the-action-key"}')

    def test_secrets_reach_a_shell_action_but_not_its_environment(self):
        w = self.start_worker()
        config = {"user": "ada", "password": MARKER}
        _, row = self.run_action(w, self.env, config, [("/password", SECRET)])
        data = self.data(row, w)
        document = json.loads(data["stdin"])
        self.assertEqual(document["password"], SECRET)
        self.assertEqual(document["api"], "pack-api-value")
        environ = json.dumps(data["environ"])
        self.assertEqual(data["environ"].get("PARAM_USER"), "ada")
        for secret in (SECRET, "pack-api-value"):
            self.assertNotIn(secret, environ, "a secret in the action's environment")
        self.assertNotIn("PARAM_PASSWORD", data["environ"])
        self.assertNotIn("PARAM_API", data["environ"])

    def test_keystore_off(self):
        w = self.start_worker(env={"ATTUNE__SECRETS__KEYSTORE": "false"})
        _, row = self.run_action(w, self.keyed, {"user": "from-the-config"})
        data = self.data(row, w)
        self.assertEqual(data["params"], {"user": "from-the-config", "retries": 3})
        self.assertIsNone(data["api"])
        self.assertIsNone(data["user"])


if __name__ == "__main__":
    unittest.main()
