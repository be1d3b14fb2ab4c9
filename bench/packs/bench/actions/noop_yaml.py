"""Imports yaml and json and does nothing: what a Python fork server that preloads
them saves an action (bench/e2e, cold against preloaded)."""
import json  # noqa: F401
import yaml  # noqa: F401


def run():
    return None
