"""Python actions run without user site packages (python -s): a usercustomize.py
or .pth file in the home the action sees is never imported, so code one
execution drops there cannot run inside a later one."""
import json
import os
import sys
import textwrap

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

from support import WorkerTestCase  # noqa: E402

ACTION_YAML = """\
name: site_probe
runner_type: python
entry_point: site_probe.py
timeout: 30
"""

ACTION_PY = """\
import os
import site
import sys


def run():
    return {"no_user_site": sys.flags.no_user_site,
            "enable_user_site": site.ENABLE_USER_SITE,
            "planted_ran": os.environ.get("PLANTED_RAN", ""),
            "home": os.environ.get("HOME", "")}
"""


class PythonUserSiteTest(WorkerTestCase):

    def make_pack(self):
        actions = self.path("packs", "isolation", "actions")
        os.makedirs(actions)
        with open(self.path("packs", "isolation", "pack.yaml"), "w") as f:
            f.write("ref: isolation\nlabel: isolation\nversion: 1.0.0\n")
        with open(os.path.join(actions, "site_probe.yaml"), "w") as f:
            f.write(ACTION_YAML)
        with open(os.path.join(actions, "site_probe.py"), "w") as f:
            f.write(ACTION_PY)
        return self.path("packs")

    def plant_user_site(self, home):
        """What an earlier action could leave in a shared home: a usercustomize
        module and a .pth line, each of which would mark the environment."""
        version = "python%d.%d" % sys.version_info[:2]
        site_dir = os.path.join(home, ".local", "lib", version, "site-packages")
        os.makedirs(site_dir)
        with open(os.path.join(site_dir, "usercustomize.py"), "w") as f:
            f.write("import os\nos.environ['PLANTED_RAN'] = 'usercustomize'\n")
        with open(os.path.join(site_dir, "planted.pth"), "w") as f:
            f.write("import os; os.environ['PLANTED_RAN'] = 'pth'\n")

    def test_user_site_packages_are_not_imported(self):
        home = self.path("home")
        self.plant_user_site(home)
        run = self.run_ok("isolation.site_probe", packs_dir=self.make_pack(),
                          env={"HOME": home})
        data = run.result["data"]
        self.assertEqual(data["no_user_site"], 1, json.dumps(data))
        self.assertIs(data["enable_user_site"], False, json.dumps(data))
        self.assertEqual(data["planted_ran"], "", textwrap.shorten(json.dumps(data), 300))


if __name__ == "__main__":
    import unittest
    unittest.main()
