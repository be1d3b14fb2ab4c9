"""Imports json and yaml, as real actions import their libraries, and does nothing else:
what runtimes.python.preload saves."""
import json  # noqa: F401

import yaml  # noqa: F401


def run():
    return None
