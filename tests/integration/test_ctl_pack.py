"""`attunectl pack load DIR` against a real PostgreSQL: the pack and action
rows, the normalised parameter schema, updates in place, the pack's release
(row, digest, folder, active release), and invalid packs that exit 2 and write
nothing."""
import json
import os
import shutil
import stat
import tarfile
import textwrap
import time
import unittest

from ctl_support import (EXAMPLES_DIR, EXIT_FAILED, EXIT_OK, EXIT_USAGE, CtlTestCase,
                         release_files, upstream_release)

EXAMPLE_ACTIONS = {"examples.fail", "examples.greet", "examples.hello", "examples.json_report",
                   "examples.list_files", "examples.secret_demo", "examples.slow"}


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(textwrap.dedent(text))


def loaded(ref, actions, digest, packs_dir, note=""):
    """What `pack load` prints."""
    return "pack %s: %d action%s loaded, release %s%s\nrelease files: %s\n" % (
        ref, actions, "" if actions == 1 else "s", digest[:12], note,
        os.path.join(packs_dir, ".releases", "sha256", digest, "pack"))


def bump_version(pack_dir, version):
    path = os.path.join(pack_dir, "pack.yaml")
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace("version: 1.0.0", "version: " + version))


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
        digest = upstream_release(self.examples_dir, "examples", "1.0.0")[0]
        self.assertEqual(proc.stdout, loaded("examples", 7, digest, self.packs_dir))
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
        # Changed files are a new release: Attune releases a version once.
        bump_version(pack_dir, "1.1.0")
        proc = self.assertExit(self.ctl("pack", "load", pack_dir, env=env), EXIT_OK)
        digest = upstream_release(pack_dir, "examples", "1.1.0")[0]
        self.assertEqual(proc.stdout, loaded("examples", 7, digest, self.tmp))
        after = {r["ref"]: r for r in self.rows("SELECT * FROM attune.action")}
        self.assertEqual({k: v["id"] for k, v in after.items()},
                         {k: v["id"] for k, v in before.items()})
        self.assertEqual(self.row("SELECT id FROM attune.pack")["id"], pack_before["id"])
        g = after["examples.greet"]
        self.assertEqual(g["label"], "Greet again")
        self.assertEqual(g["param_schema"]["properties"]["greeting"]["default"], "Howdy")
        self.assertGreater(g["updated"], before["examples.greet"]["updated"])
        pack = self.row("SELECT p.version, r.digest FROM attune.pack p JOIN attune.pack_release r "
                        "ON r.id = p.active_release")
        self.assertEqual((pack["version"], pack["digest"]), ("1.1.0", digest))

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
        env = {"ATTUNE__PACKS_BASE_DIR": self.tmp}
        proc = self.assertExit(self.ctl("pack", "load", pack_dir, env=env), EXIT_OK)
        digest = upstream_release(pack_dir, "tp", "0.2.0")[0]
        self.assertEqual(proc.stdout, loaded("tp", 0, digest, self.tmp))
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
        bump_version(pack_dir, "1.0.1")
        proc = self.assertExit(self.ctl("pack", "load", pack_dir, env=env), EXIT_OK)
        self.assertTrue(proc.stdout.startswith("pack examples: 6 actions loaded, release "),
                        proc.stdout)
        self.assertIn("examples.slow", proc.stderr)
        self.assertEqual(self.counts(), (1, 7))

    def test_database_not_migrated(self):
        self.execute("DROP SCHEMA attune CASCADE")
        proc = self.ctl("pack", "load", self.examples_dir)
        self.assertOneLineError(proc, EXIT_FAILED, "cannot store pack examples")


class PackReleaseTest(CtlTestCase):
    """The release `pack load` makes: its digest by Attune's rule (computed again
    here by ctl_support.upstream_release), its row, its folder, and the pack's
    active release."""

    def setUp(self):
        super().setUp()
        self.migrate()

    def sha256_dir(self):
        return os.path.join(self.packs_dir, ".releases", "sha256")

    def assertSameFiles(self, source, copy):
        want, got = dict(release_files(source)), dict(release_files(copy))
        self.assertEqual(set(got), set(want))
        for rel, full in want.items():
            with open(full, "rb") as a, open(got[rel], "rb") as b:
                self.assertEqual(a.read(), b.read(), rel)
            self.assertEqual(bool(os.stat(full).st_mode & 0o111),
                             bool(os.stat(got[rel]).st_mode & 0o111), rel)
        for dirpath, dirnames, filenames in os.walk(copy):
            self.assertNotIn(".git", dirnames + filenames, dirpath)

    def assertRelease(self, pack_dir, ref, version):
        """The active release of pack ref is pack_dir's files; returns its row."""
        digest, manifest, archive = upstream_release(pack_dir, ref, version)
        folder = os.path.join(self.sha256_dir(), digest)
        pack = self.row("SELECT * FROM attune.pack WHERE ref = %s", (ref,))
        rel = self.row("SELECT * FROM attune.pack_release WHERE id = %s",
                       (pack["active_release"],))
        self.assertEqual((rel["pack"], rel["pack_ref"], rel["version"], rel["digest"]),
                         (pack["id"], ref, version, digest))
        self.assertEqual((rel["content_path"], rel["archive_path"], rel["archive_size"]),
                         (os.path.join(folder, "pack"), os.path.join(folder, "pack.tar.gz"),
                          len(archive)))
        self.assertEqual(rel["manifest"], manifest)
        with open(rel["archive_path"], "rb") as f:
            self.assertEqual(f.read(), archive)
        with open(os.path.join(folder, "manifest.json")) as f:
            self.assertEqual(json.load(f), manifest)
        self.assertSameFiles(pack_dir, rel["content_path"])
        with tarfile.open(rel["archive_path"]) as t:
            members = t.getmembers()
        self.assertEqual([m.name for m in members],
                         ["%s/%s" % (ref, f["path"]) for f in manifest["files"]])
        for m, f in zip(members, manifest["files"]):
            self.assertEqual((m.size, m.mode, m.uid, m.gid, m.mtime, m.isfile()),
                             (f["size"], 0o755 if f["executable"] else 0o644, 0, 0, 0, True))
        return rel

    def test_examples_release(self):
        self.load_examples()
        rel = self.assertRelease(self.examples_dir, "examples", "1.0.0")
        self.assertEqual(self.value("SELECT count(*) FROM attune.pack_release"), 1)
        # Read-only, as Attune leaves a release.
        for dirpath, _, filenames in os.walk(os.path.dirname(rel["content_path"])):
            self.assertEqual(stat.S_IMODE(os.stat(dirpath).st_mode), 0o555, dirpath)
            for name in filenames:
                mode = stat.S_IMODE(os.stat(os.path.join(dirpath, name)).st_mode)
                self.assertIn(mode, (0o444, 0o555), name)
        self.assertEqual(os.listdir(os.path.join(self.packs_dir, ".releases")), ["sha256"])

    def test_digest_rule_on_an_unusual_pack(self):
        pack_dir = os.path.join(self.packs_dir, "odd")
        files = {
            "pack.yaml": b"ref: odd\nversion: 2.0.0-rc.1+b.5\n",
            ".hidden": b"dot file\n",
            "empty.txt": b"",
            "block.bin": bytes(range(256)) * 2,
            "bin/tool": b"#!/bin/sh\necho tool\n",
            "lib/deep/nested/x.txt": "ünïcødé\n".encode(),
            "lib/" + "c" * 88 + ".txt": b"a name of exactly 100 bytes in the archive\n",
            "lib/" + "d" * 89 + ".txt": b"101 bytes: a GNU long name\n",
            "lib/" + "a" * 91 + "é" + "b" * 20 + ".txt": b"cut inside a character\n",
            "e" * 94 + "/.dotted-name": b"cut right after '/.'\n",
            "Zeta": b"upper case sorts first\n",
            ".git/config": b"skipped\n",
            "lib/.git/HEAD": b"skipped too\n",
        }
        for rel, data in files.items():
            os.makedirs(os.path.dirname(os.path.join(pack_dir, rel)), exist_ok=True)
            with open(os.path.join(pack_dir, rel), "wb") as f:
                f.write(data)
        os.chmod(os.path.join(pack_dir, "bin", "tool"), 0o750)
        os.makedirs(os.path.join(pack_dir, "emptydir"))
        self.assertExit(self.ctl("pack", "load", pack_dir), EXIT_OK)
        rel = self.assertRelease(pack_dir, "odd", "2.0.0-rc.1+b.5")
        self.assertEqual(len(rel["manifest"]["files"]), len(files) - 2)
        self.assertTrue(os.path.isdir(os.path.join(rel["content_path"], "emptydir")))

    def test_same_files_again_make_no_new_release(self):
        self.load_examples()
        first = self.row("SELECT * FROM attune.pack_release")
        proc = self.load_examples()
        self.assertTrue(proc.stdout.startswith(
            "pack examples: 7 actions loaded, release %s (already released)\n"
            % first["digest"][:12]), proc.stdout)
        self.assertEqual(self.rows("SELECT * FROM attune.pack_release"), [first])
        self.assertEqual(self.value("SELECT active_release FROM attune.pack"), first["id"])
        self.assertEqual(os.listdir(self.sha256_dir()), [first["digest"]])
        self.assertEqual(os.listdir(os.path.join(self.packs_dir, ".releases")), ["sha256"])

    def test_changed_files_need_a_new_version(self):
        self.load_examples()
        first = self.row("SELECT * FROM attune.pack_release")
        write(os.path.join(self.examples_dir, "actions", "hello.sh"), "#!/bin/sh\necho hi\n")
        proc = self.ctl("pack", "load", self.examples_dir)
        self.assertOneLineError(proc, EXIT_FAILED, "examples 1.0.0 is released already",
                                first["digest"][:12], "new version")
        self.assertEqual(self.rows("SELECT * FROM attune.pack_release"), [first])
        self.assertEqual(os.listdir(self.sha256_dir()), [first["digest"]])
        self.assertEqual(os.listdir(os.path.join(self.packs_dir, ".releases")), ["sha256"])
        bump_version(self.examples_dir, "1.0.1")
        self.assertExit(self.ctl("pack", "load", self.examples_dir), EXIT_OK)
        second = self.assertRelease(self.examples_dir, "examples", "1.0.1")
        self.assertNotEqual(second["id"], first["id"])
        self.assertEqual(self.value("SELECT count(*) FROM attune.pack_release"), 2)
        self.assertTrue(os.path.isdir(first["content_path"]), "the old release is kept")

    def test_links_and_special_files_are_refused(self):
        for name, make in (("link", lambda p: os.symlink("pack.yaml", p)),
                           ("fifo", os.mkfifo)):
            with self.subTest(name=name):
                path = os.path.join(self.examples_dir, "actions", name)
                make(path)
                proc = self.ctl("pack", "load", self.examples_dir)
                self.assertOneLineError(proc, EXIT_USAGE, path)
                os.unlink(path)
        self.assertEqual((self.value("SELECT count(*) FROM attune.pack"),
                          self.value("SELECT count(*) FROM attune.pack_release")), (0, 0))
        self.assertEqual(os.listdir(self.sha256_dir()), [])
        self.assertEqual(os.listdir(os.path.join(self.packs_dir, ".releases")), ["sha256"])

    def test_damaged_release_folder_is_not_reused(self):
        self.load_examples()
        rel = self.row("SELECT * FROM attune.pack_release")
        os.chmod(os.path.dirname(rel["archive_path"]), 0o755)
        os.chmod(rel["archive_path"], 0o644)
        with open(rel["archive_path"], "ab") as f:
            f.write(b"tampered")
        proc = self.ctl("pack", "load", self.examples_dir)
        self.assertOneLineError(proc, EXIT_FAILED, os.path.dirname(rel["archive_path"]),
                                "does not match the digest")
        self.assertEqual(self.rows("SELECT * FROM attune.pack_release"), [rel])


if __name__ == "__main__":
    unittest.main()
