"""Does nothing; with probe=True returns its interpreter and environment (minus ATTUNE_*)."""
import os


def run(probe=False):
    if not probe:
        return None
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTUNE_")}
    return {"exe": os.readlink("/proc/self/exe"), "env": env}
