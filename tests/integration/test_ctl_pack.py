"""`attunectl pack load DIR` against a real PostgreSQL: the pack and action
rows, the normalised parameter schema, updates in place, and invalid packs that
exit 2 and write nothing."""
import os
import shutil
import textwrap
import time
import unittest

from ctl_support import EXAMPLES_DIR, EXIT_FAILED, EXIT_OK, EXIT_USAGE, CtlTestCase

EXAMPLE_ACTIONS = {"examples.fail", "examples.greet", "examples.hello", "examples.json_report",
                   "examples.list_files", "examples.secret_demo", "examples.slow"}


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(textwrap.dedent(text))


class PackLoadTest(CtlTestCase):

    def setUp(self):
        super().setUp()
        self.migrate()

    def copy_examples(self):
        path = os.path.join(self.tmp, "examples")
        shutil.copytree(EXAMPLES_DIR, path)
        return path

    def make_pack(self, ref="tp", actions=None, pack_yaml=None):
        """A pack under self.tmp/ref: pack.yaml and actions {name: yaml text}."""
        pack_dir = os.path.join(self.tmp, ref)
        write(os.path.join(pack_dir, "pack.yaml"), pack_yaml if pack_yaml is not None else
              "ref: %s\nlabel: Test pack\ndescription: For tests.\nversion: 0.2.0\n" % ref)
        for name, text in (actions or {}).items():
            write(os.path.join(pack_dir, "actions", name + ".yaml"), text)
            entry = os.path.join(pack_dir, "actions", name + ".sh")
            write(entry, "#!/bin/bash\necho hi\n")
        return pack_dir

    def counts(self):
        return (self.value("SELECT count(*) FROM attune.pack"),
                self.value("SELECT count(*) FROM attune.action"))

    def test_load_examples(self):
        proc = self.load_examples()
        self.assertEqual(proc.stdout, "pack examples: 7 actions loaded\n")
        self.assertEqual(proc.stderr, "", "no warning: packs_base_dir is the source's packs/")
        pack = self.row("SELECT * FROM attune.pack")
        self.assertEqual((pack["ref"], pack["label"], pack["version"]),
                         ("examples", "Examples", "1.0.0"))
        self.assertTrue(pack["description"].startswith("Small, readable actions"))
        actions = {r["ref"]: r for r in self.rows("SELECT * FROM attune.action")}
        self.assertEqual(set(actions), EXAMPLE_ACTIONS)
        for ref, a in actions.items():
            self.assertEqual((a["pack"], a["pack_ref"]), (pack["id"], "examples"), ref)
            # The runner type is kept as the pack's runtime row "examples.<runner>".
            runtime = self.row("SELECT ref, name, pack FROM attune.runtime WHERE id = %s",
                               (a["runtime"],))
            self.assertEqual(runtime["ref"], "examples." + runtime["name"], ref)
            self.assertEqual(runtime["pack"], pack["id"], ref)
            self.assertTrue(a["enabled"], ref)
            self.assertEqual(a["parameter_delivery"], "stdin", ref)
            self.assertEqual(a["parameter_format"], "json", ref)
        greet = actions["examples.greet"]
        self.assertEqual((greet["label"], greet["entrypoint"]), ("Greet", "greet.py"))
        self.assertTrue(greet["description"].startswith("Returns a greeting"))
        self.assertEqual(greet["param_schema"], {
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "Who to greet."},
                "greeting": {"type": "string", "description": "The word to greet with.",
                             "default": "Hello"},
            },
            "required": ["name"],
        })
        self.assertEqual(actions["examples.fail"]["param_schema"],
                         {"type": "object", "properties": {}, "required": []})
        self.assertEqual(actions["examples.slow"]["timeout_seconds"], 2)
        self.assertIsNone(actions["examples.hello"]["timeout_seconds"])
        self.assertEqual(actions["examples.json_report"]["output_format"], "json")
        self.assertEqual(actions["examples.hello"]["output_format"], "text")

    def test_every_setting_is_stored(self):
        pack_dir = self.make_pack(actions={"full": """\
            name: full
            label: Full
            description: Every setting.
            runner_type: shell
            entry_point: full.sh
            parameter_delivery: file
            parameter_format: dotenv
            output_format: jsonl
            timeout: 7
            parameters:
              type: object
              properties:
                count: {type: integer, default: 3}
                mode: {type: string, enum: [fast, slow]}
              required: [mode]
            """})
        self.assertExit(self.ctl("pack", "load", pack_dir, env={
            "ATTUNE__PACKS_BASE_DIR": self.tmp}), EXIT_OK)
        a = self.row("SELECT * FROM attune.action")
        self.assertEqual((a["ref"], a["label"], a["description"], a["entrypoint"]),
                         ("tp.full", "Full", "Every setting.", "full.sh"))
        self.assertEqual((a["parameter_delivery"], a["parameter_format"], a["output_format"],
                          a["timeout_seconds"]), ("file", "dotenv", "jsonl", 7))
        self.assertEqual(a["param_schema"]["required"], ["mode"])
        self.assertEqual(a["param_schema"]["properties"]["count"],
                         {"type": "integer", "default": 3})
        self.assertEqual(a["param_schema"]["properties"]["mode"]["enum"], ["fast", "slow"])
        pack = self.row("SELECT * FROM attune.pack")
        self.assertEqual((pack["ref"], pack["label"], pack["description"], pack["version"]),
                         ("tp", "Test pack", "For tests.", "0.2.0"))

    def test_load_twice_updates_in_place(self):
        pack_dir = self.copy_examples()
        env = {"ATTUNE__PACKS_BASE_DIR": self.tmp}
        self.assertExit(self.ctl("pack", "load", pack_dir, env=env), EXIT_OK)
        before = {r["ref"]: r for r in self.rows("SELECT * FROM attune.action")}
        pack_before = self.row("SELECT * FROM attune.pack")
        time.sleep(0.05)
        greet = os.path.join(pack_dir, "actions", "greet.yaml")
        with open(greet) as f:
            text = f.read()
        with open(greet, "w") as f:
            f.write(text.replace("label: Greet", "label: Greet again").replace(
                "default: Hello", "default: Howdy"))
        proc = self.assertExit(self.ctl("pack", "load", pack_dir, env=env), EXIT_OK)
        self.assertEqual(proc.stdout, "pack examples: 7 actions loaded\n")
        after = {r["ref"]: r for r in self.rows("SELECT * FROM attune.action")}
        self.assertEqual({k: v["id"] for k, v in after.items()},
                         {k: v["id"] for k, v in before.items()})
        self.assertEqual(self.row("SELECT id FROM attune.pack")["id"], pack_before["id"])
        g = after["examples.greet"]
        self.assertEqual(g["label"], "Greet again")
        self.assertEqual(g["param_schema"]["properties"]["greeting"]["default"], "Howdy")
        self.assertGreater(g["updated"], before["examples.greet"]["updated"])

    def test_broken_action_exits_2_and_writes_nothing(self):
        pack_dir = self.copy_examples()
        write(os.path.join(pack_dir, "actions", "broken.yaml"),
              "name: broken\nrunner_type: cobol\nentry_point: hello.sh\n")
        proc = self.ctl("pack", "load", pack_dir, env={"ATTUNE__PACKS_BASE_DIR": self.tmp})
        self.assertOneLineError(proc, EXIT_USAGE, "broken.yaml", "cobol")
        self.assertEqual(proc.stdout, "")
        self.assertEqual(self.counts(), (0, 0))

    def test_broken_action_leaves_the_registered_pack_alone(self):
        pack_dir = self.copy_examples()
        env = {"ATTUNE__PACKS_BASE_DIR": self.tmp}
        self.assertExit(self.ctl("pack", "load", pack_dir, env=env), EXIT_OK)
        with open(os.path.join(EXAMPLES_DIR, "pack.yaml")) as f:
            text = f.read()
        write(os.path.join(pack_dir, "pack.yaml"), text.replace("label: Examples",
                                                                "label: Changed"))
        write(os.path.join(pack_dir, "actions", "nofile.yaml"),
              "name: nofile\nrunner_type: shell\nentry_point: missing.sh\n")
        proc = self.ctl("pack", "load", pack_dir, env=env)
        self.assertOneLineError(proc, EXIT_USAGE, "nofile.yaml", "missing.sh")
        self.assertEqual(self.value("SELECT label FROM attune.pack"), "Examples")
        self.assertEqual(self.counts(), (1, 7))

    def test_every_broken_file_is_reported(self):
        pack_dir = self.make_pack(actions={
            "good": "name: good\nrunner_type: shell\nentry_point: good.sh\n",
            "bad1": "name: bad1\nrunner_type: shell\nentry_point: ../../etc/passwd\n",
            "bad2": "name: bad2\nrunner_type: shell\nentry_point: bad2.sh\n"
                    "parameter_format: xml\n",
            "bad3": "name: [unclosed\n",
        })
        proc = self.ctl("pack", "load", pack_dir)
        self.assertExit(proc, EXIT_USAGE)
        lines = proc.stderr.strip().splitlines()
        self.assertEqual(len(lines), 3, proc.stderr)
        for line, name in zip(lines, ("bad1.yaml", "bad2.yaml", "bad3.yaml")):
            self.assertIn(name, line)
        self.assertEqual(self.counts(), (0, 0))

    def test_action_name_must_match_its_file(self):
        pack_dir = self.make_pack(actions={
            "one": "name: two\nrunner_type: shell\nentry_point: one.sh\n"})
        proc = self.ctl("pack", "load", pack_dir)
        self.assertOneLineError(proc, EXIT_USAGE, "one.yaml", "does not match the file name")
        self.assertEqual(self.counts(), (0, 0))

    def test_bad_pack_yaml(self):
        cases = {
            "version": "ref: tp\nlabel: x\nversion: one\n",
            "ref must be": "ref: Bad_Ref\nversion: 1.0.0\n",
            "not a mapping": "- a\n- b\n",
            "tags": "ref: tp\nversion: 1.0.0\ntags: nope\n",
        }
        for needle, text in cases.items():
            with self.subTest(needle=needle):
                pack_dir = self.make_pack(pack_yaml=text)
                proc = self.ctl("pack", "load", pack_dir)
                self.assertOneLineError(proc, EXIT_USAGE, "pack.yaml", needle)
        self.assertEqual(self.counts(), (0, 0))

    def test_missing_directory_or_pack_yaml(self):
        proc = self.ctl("pack", "load", os.path.join(self.tmp, "nowhere"))
        self.assertOneLineError(proc, EXIT_USAGE, "nowhere")
        os.mkdir(os.path.join(self.tmp, "empty"))
        proc = self.ctl("pack", "load", os.path.join(self.tmp, "empty"))
        self.assertOneLineError(proc, EXIT_USAGE, "pack.yaml")

    def test_pack_without_actions(self):
        pack_dir = self.make_pack()
        proc = self.assertExit(self.ctl("pack", "load", pack_dir), EXIT_OK)
        self.assertEqual(proc.stdout, "pack tp: 0 actions loaded\n")
        self.assertEqual(self.counts(), (1, 0))

    def test_warns_when_not_under_packs_base_dir(self):
        pack_dir = self.copy_examples()
        proc = self.assertExit(self.ctl("pack", "load", pack_dir), EXIT_OK)
        self.assertIn("warning", proc.stderr)
        self.assertIn(os.path.realpath(pack_dir), proc.stderr)
        self.assertEqual(self.counts(), (1, 7))
        proc = self.assertExit(self.ctl("pack", "load", pack_dir, env={
            "ATTUNE__PACKS_BASE_DIR": self.tmp}), EXIT_OK)
        self.assertEqual(proc.stderr, "")

    def test_removed_action_file_is_reported_not_deleted(self):
        pack_dir = self.copy_examples()
        env = {"ATTUNE__PACKS_BASE_DIR": self.tmp}
        self.assertExit(self.ctl("pack", "load", pack_dir, env=env), EXIT_OK)
        os.unlink(os.path.join(pack_dir, "actions", "slow.yaml"))
        proc = self.assertExit(self.ctl("pack", "load", pack_dir, env=env), EXIT_OK)
        self.assertEqual(proc.stdout, "pack examples: 6 actions loaded\n")
        self.assertIn("examples.slow", proc.stderr)
        self.assertEqual(self.counts(), (1, 7))

    def test_database_not_migrated(self):
        self.execute("DROP SCHEMA attune CASCADE")
        proc = self.ctl("pack", "load", EXAMPLES_DIR)
        self.assertOneLineError(proc, EXIT_FAILED, "cannot store pack examples")


if __name__ == "__main__":
    unittest.main()
