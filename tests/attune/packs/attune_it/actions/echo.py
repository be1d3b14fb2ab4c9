#!/usr/bin/env python3
"""Prints the parameter `output` as its whole output (one JSON document on
stdout), so that a test decides what the result's data holds; `stderr` is
written to stderr and `exit_code` ends it (a failure)."""
import json
import sys

line = sys.stdin.readline()
params = (json.loads(line) if line.strip() else None) or {}
print(json.dumps(params.get("output")))
if params.get("stderr"):
    print(params["stderr"], file=sys.stderr)
sys.exit(int(params.get("exit_code") or 0))
