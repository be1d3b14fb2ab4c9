# attune-worker python fork server ("zygote"), appended to python.py and run
# as `python3 -s -c WRAPPER+ZYGOTE --attune-zygote [MODULE...]`: imports the
# modules to preload, then forks one child per request that the worker sends
# on the socket at fd 3 (the child's descriptors and a header of uid, gid and
# limits, never an execution's data). Each child is double-forked so that the
# worker, a child subreaper, becomes its parent; it takes its sandbox, then
# reads its environment, arguments, folder and the usual control payload from
# its own fd 3 and runs _attune_run like a cold start.
import ctypes as _ct, fcntl as _fcntl, gc as _gc, json as _json, resource as _res
import signal as _sig, socket as _socket, struct as _struct, time as _time, traceback as _tb

_PR_SET_PDEATHSIG, _PR_SET_DUMPABLE, _PR_SET_NAME, _PR_SET_NO_NEW_PRIVS = 1, 4, 15, 38
_libc = _ct.CDLL(None, use_errno=True)
_HIGH_FD = 256  # the pipe to the zygote sits here while the child's fds move


def _prctl(option, value):
    if _libc.prctl(option, _ct.c_ulong(value), 0, 0, 0) != 0:
        err = _ct.get_errno()
        raise OSError(err, _o.strerror(err))


def _preload(names):
    failed = []
    for name in names:
        try:
            __import__(name)
        except BaseException as e:  # logged once by the worker, then skipped
            failed.append("%s: %s: %s" % (name, type(e).__name__, e))
    return failed


def _child_sandbox(head, fds, status_fd):
    """What spawn.c does for a cold child, in its order, before anything of the action."""
    # First: the intermediate wrote our pid to status_fd before it exited.
    deadline = _time.monotonic() + 5
    while _o.getppid() != head["worker"] and _time.monotonic() < deadline:
        _time.sleep(0.0001)
    _o.setsid()
    if head["cgroup"]:
        _o.write(fds[-1], b"0")
    for resource, soft, hard in head["rlimits"]:
        _res.setrlimit(resource, (soft, hard))
    targets = [0, 1, 2, 3] + ([4] if head["file"] else [])
    moved = [_fcntl.fcntl(fd, _fcntl.F_DUPFD, 2 * _HIGH_FD) for fd in fds[:len(targets)]]
    for fd, target in zip(moved, targets):
        _o.dup2(fd, target)
    _o.closerange(len(targets), status_fd)
    _o.closerange(status_fd + 1, 1 << 20)
    _sig.pthread_sigmask(_sig.SIG_SETMASK, [])
    if head["gid"]:
        _o.setgroups([head["gid"]])
        _o.setresgid(head["gid"], head["gid"], head["gid"])
    if head["uid"]:
        _o.setresuid(head["uid"], head["uid"], head["uid"])
    if head["nnp"]:
        _prctl(_PR_SET_NO_NEW_PRIVS, 1)
    # After the uid change, which clears it; the parent is the worker now.
    _prctl(_PR_SET_PDEATHSIG, _sig.SIGKILL)
    if _o.getppid() != head["worker"]:
        raise OSError(3, "the worker is gone")  # ESRCH
    # A uid change made us undumpable, which makes /proc/self root's; a
    # cold exec would have reset it.
    _prctl(_PR_SET_DUMPABLE, 1)
    _libc.prctl(_PR_SET_NAME, b"python3", 0, 0, 0)


def _child_launch():
    """The environment, arguments and folder the worker sends first on fd 3."""
    data = _attune_read_control()
    size = int.from_bytes(data[:4], "little")
    fields = data[4:4 + size].split(b"\0")
    cwd, nargs = fields[0], int(fields[1])
    args, env = fields[2:2 + nargs], fields[2 + nargs:]
    _o.environb.clear()
    for entry in env:
        name, _, value = entry.partition(b"=")
        if name:
            _o.environb[name] = value
    _o.chdir(cwd)
    if "tempfile" in _s.modules:
        _s.modules["tempfile"].tempdir = None  # TMPDIR is the execution's
    return _o.fsdecode(args[-1]), data[4 + size:]


def _child_run():
    code = 0
    try:
        entry, control = _child_launch()
        _attune_run(entry, _m.loads(control) if control else {})
    except SystemExit as e:
        code = e.code
        if code is not None and not isinstance(code, int):
            _s.stderr.write("%s\n" % code)
            code = 1
    except BaseException:
        _tb.print_exc()
        code = 1
    # What a cold interpreter does at its end: non-daemon threads, atexit.
    try:
        if "threading" in _s.modules:
            _s.modules["threading"]._shutdown()
        import atexit
        atexit._run_exitfuncs()
    except BaseException:
        _tb.print_exc()
    for stream in (_s.stdout, _s.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    _o._exit(code or 0)


def _child(head, fds, sock, status_fd):
    sock.detach()  # its fd is closed below; the object must never close fd 3
    try:
        _child_sandbox(head, fds, status_fd)
        err = 0
    except OSError as e:
        err = e.errno or 22
    except BaseException:
        err = 22
    _o.write(status_fd, _struct.pack("=i", err))
    _o.close(status_fd)
    if err:
        _o._exit(127)
    _child_run()


def _fork(head, fds, sock):
    """Double fork: returns (pid, errno) of the child, whose parent is the worker."""
    r, w = _o.pipe()
    status_fd = _fcntl.fcntl(w, _fcntl.F_DUPFD, _HIGH_FD)
    _o.close(w)
    _s.stdout.flush()
    _s.stderr.flush()
    middle = _o.fork()
    if middle == 0:
        try:
            _o.close(r)
            pid = _o.fork()
            if pid == 0:
                _child(head, fds, sock, status_fd)
            _o.write(status_fd, _struct.pack("=i", pid))
        except BaseException as e:
            _o.write(status_fd, _struct.pack("=i", -(getattr(e, "errno", None) or 11)))
        _o._exit(0)
    _o.close(status_fd)
    _o.waitpid(middle, 0)
    data = b""
    while len(data) < 8:
        chunk = _o.read(r, 8 - len(data))
        if not chunk:
            break
        data += chunk
    _o.close(r)
    pid = _struct.unpack("=i", data[:4])[0] if len(data) >= 4 else -11
    if pid < 0:
        return 0, -pid
    err = _struct.unpack("=i", data[4:8])[0] if len(data) == 8 else 11
    return pid, err


def _zygote():
    _libc.prctl(_PR_SET_NAME, b"attune-zygote", 0, 0, 0)
    _prctl(_PR_SET_DUMPABLE, 0)
    fd = _fcntl.fcntl(3, _fcntl.F_DUPFD_CLOEXEC, _HIGH_FD + 1)
    _o.close(3)
    sock = _socket.socket(fileno=fd)
    failed = _preload(_s.argv[2:])
    _gc.collect()
    _gc.freeze()  # the children's copies of the heap stay shared
    sock.send(_json.dumps({"ready": True, "failed": failed}).encode())
    while True:
        msg, fds, _flags, _addr = _socket.recv_fds(sock, 65536, 8)
        if not msg:
            return
        try:
            pid, err = _fork(_json.loads(msg), fds, sock)
        except Exception as e:
            pid, err = 0, getattr(e, "errno", None) or 22
        for fd in fds:
            _o.close(fd)
        sock.send(_struct.pack("=ii", pid, err))


_zygote()
