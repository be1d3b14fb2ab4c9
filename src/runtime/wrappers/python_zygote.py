# attune-worker's warm python starts, appended to python.py. A spare
# interpreter (worker.spare_processes) runs as `python3 -s -c WRAPPER+ZYGOTE
# --attune-spare [MODULE...]`, spawned by the worker in its sandbox ahead of
# demand: it imports the modules to preload, then waits on fd 3 for its one
# execution, as a forked child does (_child_run). The fork server ("zygote")
# runs as `python3 -s -c WRAPPER+ZYGOTE --attune-zygote [MODULE...]`: imports the
# modules to preload, then forks one child per request that the worker sends
# on the socket at fd 3 (the child's descriptors and a header of uid, gid and
# limits, never an execution's data). Each child is forked with CLONE_PARENT,
# so that the worker is its parent (where that cannot be done: double-forked,
# the worker being a child subreaper); it takes its sandbox, then reads its
# environment, arguments, folder and the usual control payload from its own
# fd 3 and runs _attune_run like a cold start.
import ctypes as _ct, fcntl as _fcntl, gc as _gc, json as _json, platform as _platform
import resource as _res, signal as _sig, socket as _socket, struct as _struct, time as _time
import traceback as _tb

_PR_SET_PDEATHSIG, _PR_SET_DUMPABLE, _PR_SET_NAME, _PR_SET_NO_NEW_PRIVS = 1, 4, 15, 38
_libc = _ct.CDLL(None, use_errno=True)
_HIGH_FD = 256  # the zygote's socket sits above; the child's fds move above twice that


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


def _child_sandbox(head, fds, gone_fd):
    """What spawn.c does for a cold child, in its order, before anything of the action."""
    # Double fork: the intermediate's end of this pipe closes as it exits,
    # just before we are re-parented to the worker.
    if gone_fd >= 0:
        _o.read(gone_fd, 1)
        _o.close(gone_fd)
    deadline = _time.monotonic() + 5
    while _o.getppid() != head["worker"] and _time.monotonic() < deadline:
        _o.sched_yield()
    _o.setsid()
    if head["cgroup"]:
        _o.write(fds[-1], b"0")
    for resource, soft, hard in head["rlimits"]:
        _res.setrlimit(resource, (soft, hard))
    targets = [0, 1, 2, 3] + ([4] if head["file"] else [])
    moved = [_fcntl.fcntl(fd, _fcntl.F_DUPFD, 2 * _HIGH_FD) for fd in fds[:len(targets)]]
    for fd, target in zip(moved, targets):
        _o.dup2(fd, target)
    _o.closerange(len(targets), 1 << 20)
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
    _time.tzset()  # TZ is the execution's; time read the interpreter's at its import
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


_REHEARSAL = b"def run(**params):\n    return {'params': params, 'n': len(params)}\n"


def _rehearse():
    """A dummy action through the wrapper's own steps (compile, a module, the
    call, the marshalled reply), its results dropped: the interpreter pages
    these steps write are the spare's own copies once it waits, rather than
    copied on write while its execution runs."""
    try:
        module = type(_s)("__attune_rehearsal__")
        namespace = module.__dict__
        exec(compile(_REHEARSAL, "<attune-rehearsal>", "exec"), namespace)
        _m.dumps({"data": namespace["run"](a=1, b="x")})
    except BaseException:
        pass


def _child(head, fds, sock, gone_fd):
    _libc.prctl(_PR_SET_NAME, b"python3", 0, 0, 0)  # no longer the zygote, as seen in /proc
    sock.detach()  # its fd is closed below; the object must never close fd 3
    try:
        _child_sandbox(head, fds, gone_fd)
    except BaseException as e:
        # Where fd 2 is by then: the execution's stderr, or the worker's log.
        _o.write(2, b"attune-worker: cannot set up the forked python child: %s\n"
                 % str(e).encode())
        _o._exit(127)
    if head.get("spare"):
        _rehearse()
    _child_run()


# clone(2) with CLONE_PARENT: the child's parent is the worker at once, with
# one copy of the interpreter's memory instead of two (on a virtual machine a
# fork of the zygote costs about as much as a cold start's exec). Done as
# glibc's fork does it, with CLONE_CHILD_SETTID on the thread's own tid field,
# which _tid_offset finds; around it Python's own fork handlers run (random
# is reseeded there). The argument order of clone differs on x86_64.
_CLONE_PARENT, _CLONE_CHILD_SETTID, _SIGCHLD = 0x8000, 0x01000000, 17
_CLONE_SYSCALLS = {"x86_64": (56, True), "aarch64": (220, False)}


def _tid_offset():
    """Where glibc keeps this thread's tid in its struct pthread: the one place
    in its first 4 KiB that holds the tid; None when not exactly one does."""
    _libc.pthread_self.restype = _ct.c_void_p
    base, tid = _libc.pthread_self(), _libc.gettid()
    found = [off for off in range(0, 4096, 4) if _ct.c_int.from_address(base + off).value == tid]
    return base + found[0] if len(found) == 1 else None


def _clone_parent_setup():
    call = _CLONE_SYSCALLS.get(_platform.machine())
    try:
        tid_field = _tid_offset() if call else None
    except (AttributeError, OSError):  # a libc without gettid, say
        tid_field = None
    if tid_field is None:
        return None
    syscall = _ct.PyDLL(None, use_errno=True).syscall  # PyDLL: the GIL stays held
    syscall.restype = _ct.c_long
    number, x86 = call
    args = [_ct.c_long(number), _ct.c_ulong(_CLONE_PARENT | _CLONE_CHILD_SETTID | _SIGCHLD),
            _ct.c_void_p(0), _ct.c_void_p(0)]
    args += [_ct.c_void_p(tid_field), _ct.c_void_p(0)] if x86 else \
        [_ct.c_void_p(0), _ct.c_void_p(tid_field)]
    return lambda: syscall(*args)


def _clone_fork(clone, head, fds, sock):
    api = _ct.pythonapi
    api.PyOS_BeforeFork()
    pid = clone()
    err = _ct.get_errno() if pid < 0 else 0
    if pid == 0:
        api.PyOS_AfterFork_Child()
        _child(head, fds, sock, -1)
    api.PyOS_AfterFork_Parent()
    return (pid, 0) if pid > 0 else (0, err or 11)


def _fork(head, fds, sock, clone):
    """Returns (pid, errno) of a new child whose parent is the worker. The child
    sets itself up meanwhile; a failure ends it (status 127)."""
    _s.stdout.flush()
    _s.stderr.flush()
    if clone:
        return _clone_fork(clone, head, fds, sock)
    return _double_fork(head, fds, sock)


def _double_fork(head, fds, sock):
    """Double fork: returns (pid, errno) of the child, whose parent is the worker
    by then. The child sets itself up meanwhile; a failure ends it (status 127)."""
    r, w = _o.pipe()
    middle = _o.fork()
    if middle == 0:
        pid = -11
        try:
            _o.close(r)
            gone_r, gone_w = _o.pipe()
            pid = _o.fork()
            if pid == 0:
                _o.close(gone_w)
                _o.close(w)
                _child(head, fds, sock, gone_r)
        except BaseException as e:
            pid = -(getattr(e, "errno", None) or 11)
        _o.write(w, _struct.pack("=i", pid))
        _o._exit(0)
    _o.close(w)
    data = _o.read(r, 4)
    _o.close(r)
    _o.waitpid(middle, 0)
    pid = _struct.unpack("=i", data)[0] if len(data) == 4 else -11
    return (pid, 0) if pid > 0 else (0, -pid)


def _zygote():
    _libc.prctl(_PR_SET_NAME, b"attune-zygote", 0, 0, 0)
    _prctl(_PR_SET_DUMPABLE, 0)
    fd = _fcntl.fcntl(3, _fcntl.F_DUPFD_CLOEXEC, _HIGH_FD + 1)
    _o.close(3)
    sock = _socket.socket(fileno=fd)
    failed = _preload(_s.argv[2:])
    clone = _clone_parent_setup()
    _gc.collect()
    _gc.freeze()  # the children's copies of the heap stay shared
    # A preloaded module that started a thread makes every fork a copy of
    # one thread among others, whose locks may be held: the worker says so.
    threads = len(_o.listdir("/proc/self/task"))
    sock.send(_json.dumps({"ready": True, "failed": failed, "threads": threads}).encode())
    while True:
        msg, fds, _flags, _addr = _socket.recv_fds(sock, 65536, 8)
        if not msg:
            return
        try:
            pid, err = _fork(_json.loads(msg), fds, sock, clone)
        except Exception as e:
            pid, err = 0, getattr(e, "errno", None) or 22
        for fd in fds:
            _o.close(fd)
        sock.send(_struct.pack("=ii", pid, err))


def _spare():
    """Preloads with stdout and stderr on /dev/null (they are the execution's
    pipes already), then runs the execution the worker sends."""
    quiet = _o.open(_o.devnull, _o.O_WRONLY)
    saved = [_o.dup(1), _o.dup(2)]
    _o.dup2(quiet, 1)
    _o.dup2(quiet, 2)
    _o.close(quiet)
    try:
        _preload(_s.argv[2:])
        for stream in (_s.stdout, _s.stderr):
            stream.flush()
    finally:
        _o.dup2(saved[0], 1)
        _o.dup2(saved[1], 2)
        _o.close(saved[0])
        _o.close(saved[1])
    _child_run()


if _s.argv[1] == "--attune-spare":
    _spare()
else:
    _zygote()
