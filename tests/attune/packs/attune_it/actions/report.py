#!/usr/bin/env python3
"""Reports what the worker gave this Python action as one JSON document on
stdout: the parameters (one JSON line on stdin, or the file named by
ATTUNE_PARAMETER_FILE, with that file's mode; also as reversed JSON text,
which the worker's secret masking leaves alone), the whole environment, the
working directory and the script's own path.

Parameters the tests use to steer it: started_file (created once the
parameters are read), gate_file (waited for, at most 60 s, before anything is
printed), exit_code and stderr (a failure)."""
import json
import os
import stat
import sys
import time


def read_parameters():
    path = os.environ.get("ATTUNE_PARAMETER_FILE")
    if os.environ.get("ATTUNE_PARAMETER_DELIVERY") == "file" and path:
        st = os.stat(path)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        info = {"path": path, "realpath": os.path.realpath(path),
                "mode": stat.S_IMODE(st.st_mode), "regular": stat.S_ISREG(st.st_mode)}
        return (json.loads(text) if text.strip() else None), info
    line = sys.stdin.readline()
    return (json.loads(line) if line.strip() else None), None


params, param_file = read_parameters()
control = params if isinstance(params, dict) else {}
if control.get("started_file"):
    with open(control["started_file"], "w"):
        pass
if control.get("gate_file"):
    deadline = time.monotonic() + 60
    while not os.path.exists(control["gate_file"]) and time.monotonic() < deadline:
        time.sleep(0.02)

print(json.dumps({
    "runtime": "python",
    "python": sys.version.split()[0],
    "script": os.path.realpath(__file__),
    "cwd": os.getcwd(),
    "params": params,
    # The same, reversed: secrets in params are masked in the output; here they are not.
    "params_reversed": json.dumps(params)[::-1],
    "param_file": param_file,
    "env": dict(os.environ),
}))
if control.get("exit_code"):
    print(control.get("stderr", "failed"), file=sys.stderr)
    sys.exit(int(control["exit_code"]))
