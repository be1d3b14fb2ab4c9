# attune-worker python wrapper: run as `python3 -c WRAPPER ENTRY_PATH`. Reads
# secrets and parameters from fd 3 (a socket); a file that defines the entry
# function (run) is loaded as a module and the function called (awaited when
# async), any other file runs as __main__; the return value or the exception
# goes back on fd 3. Nothing goes to stdout. The warm starts (python_zygote.py,
# appended to this text: the fork server's children and the spare
# interpreters) run the same _attune_run.
import builtins as _b, marshal as _m, os as _o, sys as _s


def _attune_read_control():
    """Everything the worker sends on fd 3, up to its end of file."""
    chunks = []
    while True:
        chunk = _o.read(3, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _attune_main():
    data = _attune_read_control()
    _attune_run(_s.argv[1], _m.loads(data) if data else {})


def _attune_run(entry, control):
    _o.set_inheritable(3, False)
    secrets = control.get("secrets") or {}

    def get_secret(name):
        """Returns the secret's value as a string, or None when it is not set."""
        return secrets.get(name)

    _b.get_secret = get_secret
    _s.argv = [entry]
    _s.path[0] = _o.path.dirname(entry)
    name = control.get("entry") or "run"
    reply = {}
    try:
        with open(entry, "rb") as f:
            source = f.read()
        # A module that defines the entry function is imported, not run as a
        # script, so its `if __name__ == "__main__":` block stays quiet.
        heads = (b"def %s(" % name.encode(), b"async def %s(" % name.encode())
        is_module = any(line.startswith(heads) for line in source.splitlines())
        # A real module in sys.modules, as dataclasses, pickle and typing expect.
        module = type(_s)("__attune_action__" if is_module else "__main__")
        module.__file__ = entry
        module.__builtins__ = _b
        module.get_secret = get_secret
        _s.modules[module.__name__] = module
        namespace = module.__dict__
        exec(compile(source, entry, "exec"), namespace)
        function = namespace.get(name) if is_module else None
        if callable(function):
            data = function(**(control.get("parameters") or {}))
            if hasattr(data, "__await__"):
                import asyncio
                data = asyncio.run(data)
            reply = {"data": data}
    except SystemExit:
        raise
    except BaseException as e:
        import traceback
        traceback.print_exc()
        _attune_reply({"error": "%s: %s" % (type(e).__name__, e)})
        _s.exit(1)
    _attune_reply(reply)


def _attune_reply(value):
    """Sends the answer in marshal format: a builtin module, unlike json."""
    _s.stdout.flush()
    try:
        data = _m.dumps(value)
    except ValueError:
        # Not plain built-in types (an OrderedDict, say): json knows more.
        import json
        try:
            data = _m.dumps(json.loads(json.dumps(value)))
        except (TypeError, ValueError) as e:
            _s.stderr.write("the return value is not JSON-serializable: %s\n" % e)
            data = _m.dumps({"error": "TypeError: the return value is not JSON-serializable: %s"
                                      % e})
    while data:
        data = data[_o.write(3, data):]
    _o.close(3)


if _s.argv[1:2] not in (["--attune-zygote"], ["--attune-spare"]):
    _attune_main()
