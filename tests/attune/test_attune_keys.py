"""Key-store secrets as Attune's worker merges them into an action's
parameters (ATTUNE-TODAY 3.7, worker/secrets.rs@a807dbc with
merge_parameters_and_secrets, 5.2): system keys, then the action's pack's
(owner_pack = the pack's id), then the action's own (owner_action = its id),
each later one overriding an earlier one of the same name, and a key's value
overriding a parameter of the same name. Encrypted values are written with an
independent encrypt_json (Python's AESGCM) and stored as a JSON string in the
JSONB value column, the key's SHA-256 beside it."""
import json
import unittest
import uuid

from attune_support import AttuneTestCase


class KeyStoreTest(AttuneTestCase):

    @classmethod
    def setUpData(cls):
        action_id = cls.add_action("python_keys", "report.py", "python")
        other_action = cls.add_action("python_other", "report.py", "python")
        other_pack = cls.db.insert_pack("attune_other")
        cls.values = {
            "level_system": "system-" + uuid.uuid4().hex,
            "level_pack": "pack-" + uuid.uuid4().hex,
            "level_action": "action-" + uuid.uuid4().hex,
            "pack_only": "pack-only-" + uuid.uuid4().hex,
            "system_object": {"host": "db.example", "port": 5432, "tags": ["a", "b"],
                              "note": "ünïcode"},
            "plain": "plain-" + uuid.uuid4().hex,
        }
        v = cls.values
        db = cls.db
        db.insert_key("kc_level", v["level_system"])
        db.insert_key("kc_level", v["level_pack"], owner_type="pack", owner_pack=cls.pack_id)
        db.insert_key("kc_level", v["level_action"], owner_type="action", owner_action=action_id)
        db.insert_key("kc_sys_object", v["system_object"])
        db.insert_key("kc_plain", v["plain"], encrypted=False)
        db.insert_key("kc_pack_only", v["pack_only"], owner_type="pack", owner_pack=cls.pack_id)
        db.insert_key("kc_pack_level", "system-loses", owner_type="system")
        db.insert_key("kc_pack_level", v["level_pack"], owner_type="pack", owner_pack=cls.pack_id)
        # Keys of someone else: another pack, another action of this pack.
        db.insert_key("kc_other_pack", "must-not-be-seen", owner_type="pack",
                      owner_pack=other_pack)
        db.insert_key("kc_level_other", "must-not-be-seen-either", owner_type="action",
                      owner_action=other_action)
        db.insert_key("kc_level", "another-actions-value", owner_type="action",
                      owner_action=other_action)

    def test_keys_reach_the_action_most_specific_first(self):
        v = self.values
        config = {"word": "w", "kc_level": "from-the-config"}
        run = self.run_action("python_keys", config)
        self.assertCompleted(run)
        # Key values are masked in the output: read the reversed copy.
        params = json.loads(run.data.get("params_reversed", "null")[::-1])
        self.assertIsInstance(params, dict, run.describe())
        self.assertEqual(params.get("word"), "w", run.describe())
        self.assertEqual(params.get("kc_level"), v["level_action"],
                         "action key > pack key > system key > parameter")
        self.assertEqual(params.get("kc_pack_level"), v["level_pack"], "pack key > system key")
        self.assertEqual(params.get("kc_pack_only"), v["pack_only"])
        self.assertEqual(params.get("kc_sys_object"), v["system_object"],
                         "an encrypted JSON object must come back as the object")
        self.assertEqual(params.get("kc_plain"), v["plain"], "an unencrypted key")
        self.assertNotIn("kc_other_pack", params, "a key of another pack reached the action")
        self.assertNotIn("kc_level_other", params, "a key of another action reached the action")


if __name__ == "__main__":
    unittest.main()
