"""The warm execution part of bench/e2e: the preload comparison and the Celery peer
measured, the Python rows and the peer's ratios reported, and the figures of the
target table (bench/targets.py)."""
import os
import subprocess
import sys

from e2e_support import PY_REF, SLOTS, YAML_REF, log, measure_latency, percentile, run_one

FORK_SERVER = "ATTUNE__RUNTIMES__PYTHON__FORK_SERVER"
PRELOAD = "ATTUNE__RUNTIMES__PYTHON__PRELOAD"
PRELOAD_MODULES = "yaml,json"


def fork_server_available(binary):
    """Whether the worker knows the fork server's settings: check-config accepts
    them, rather than ignoring them as not its own. The reason when not."""
    env = dict(os.environ, ATTUNE__SANDBOX__MODE="none", **{FORK_SERVER: "true",
                                                            PRELOAD: PRELOAD_MODULES})
    env.pop("ATTUNE_CONFIG", None)
    proc = subprocess.run([binary, "check-config"], env=env, capture_output=True, text=True,
                          cwd="/")
    ignored = [line for line in proc.stderr.splitlines() if "ignoring ATTUNE__" in line]
    if proc.returncode != 0 or ignored:
        return False, ("ignoring" + ignored[0].split("ignoring", 1)[1] if ignored
                       else proc.stderr.strip()[-300:])
    return True, ""


def measure_preload(args, conn, start_worker, fork_server):
    """The Python action importing yaml and json, one at a time, in turn on a
    worker that starts Python cold and on one whose fork server has preloaded
    them (when the worker has a fork server), each from start_worker(name,
    settings); latencies per mode."""
    if fork_server:
        # Cold: no fork server, and no spare interpreter started ahead either.
        modes = [("cold", {FORK_SERVER: "false", "ATTUNE__WORKER__SPARE_PROCESSES": "0"}),
                 ("preload", {FORK_SERVER: "true", PRELOAD: PRELOAD_MODULES})]
    else:
        modes = [("cold", {"ATTUNE__WORKER__SPARE_PROCESSES": "0"})]
    workers, latencies = {}, {mode: [] for mode, _ in modes}
    try:
        for mode, settings in modes:
            workers[mode] = start_worker("bench-python-" + mode, settings)
            status, result = run_one(conn, workers[mode].broker, YAML_REF, {})
            if status.lower() != "completed":
                sys.exit("bench: %s did not complete (%s): %s" % (YAML_REF, status, result))
        for i in range(args.preload_runs):
            for mode, _ in (modes if i % 2 == 0 else modes[::-1]):
                latencies[mode] += measure_latency(conn, workers[mode].broker, 1, YAML_REF)
    finally:
        for w in workers.values():
            w.stop()
    return latencies


def measure_celery(args, mq_url, workdir):
    """The Celery peer on the same broker: latencies one at a time and the
    throughput of --count at once, for the script and the function; or why not."""
    if args.no_celery:
        return "--no-celery"
    try:
        import celery_peer
    except ImportError as e:
        return "%s; Debian package python3-celery" % e
    actions = os.path.join(workdir, "packs", "bench", "actions")
    peer = celery_peer.CeleryPeer(mq_url, SLOTS, os.path.join(actions, "noop.sh"), actions,
                                  workdir)
    measured = {}
    try:
        for kind in ("script", "function"):
            measured[kind] = (peer.latency(kind, args.latency_runs),
                              peer.throughput(kind, args.count))
    finally:
        peer.stop()
    return measured


def memory_text(mem):
    if not mem:
        return "not running"
    return "RSS %.1f MB, PSS %.1f MB, private %.1f MB" % (
        mem["VmRSS"] / 1024, mem["Pss"] / 1024, mem["USS"] / 1024)


def report_python(args, m, raw_py, fork_server, preload):
    py = m.python
    log("")
    log("python fork server: %s" % ("on (the default)" if fork_server[0] else
                                   "not available (%s)" % fork_server[1]))
    log("python, %s, one at a time (%d runs)  p50 %6.1f ms  p99 %6.1f ms" % (
        PY_REF, len(py.latencies), percentile(py.latencies, 50), percentile(py.latencies, 99)))
    if py.spaced:
        log("python, %s, one at a time, each 0.2 s after the one before (%d runs)  p50 %6.1f ms"
            "  p99 %6.1f ms" % (PY_REF, len(py.spaced), percentile(py.spaced, 50),
                                percentile(py.spaced, 99)))
    log("python throughput, %d published at once  %8.1f executions/s (%d completed, %d failed)"
        % (args.python_count, py.rate, py.done, py.failed))
    log("raw limit: %s noop.py spawned directly, %d at a time  %8.1f executions/s" % (
        py.exe, SLOTS, raw_py))
    log("python throughput / raw cold python        %8.2fx" % (py.rate / raw_py))
    log("zygote memory: idle %s; after the python runs %s" % (
        memory_text(m.zygote_idle), memory_text(py.zygote)))
    line = "python importing yaml and json (%s), one at a time, %d runs each, in turn:" % (
        YAML_REF, args.preload_runs)
    for mode, latencies in preload.items():
        line += " %s p50 %.1f ms (p90 %.1f)" % (mode, percentile(latencies, 50),
                                                percentile(latencies, 90))
    log(line)
    if "preload" in preload:
        log("  cold / preload p50: %.1fx" % (percentile(preload["cold"], 50)
                                            / percentile(preload["preload"], 50)))


def report_celery(args, celery, m):
    log("")
    if isinstance(celery, str):
        log("celery peer: not measured (%s)" % celery)
        return
    (script_lat, script_rate), (fn_lat, fn_rate) = celery["script"], celery["function"]
    log("celery peer: Celery prefork worker, concurrency %d, same broker, completion seen "
        "through the rpc:// result backend (the result message reaching this client)" % SLOTS)
    for label, lat, rate in (("bash noop.sh as a subprocess", script_lat, script_rate),
                             ("noop.run() in-process", fn_lat, fn_rate)):
        log("  %-30s one at a time p50 %6.1f ms  p99 %6.1f ms; %d at once %8.1f tasks/s" % (
            label, percentile(lat, 50), percentile(lat, 99), args.count, rate))
    log("worker shell / Celery subprocess: throughput %.2fx, p50 %.2fx" % (
        m.rate / script_rate, percentile(m.latencies, 50) / percentile(script_lat, 50)))
    log("worker python / Celery in-process: throughput %.2fx, p50 %.2fx" % (
        m.python.rate / fn_rate, percentile(m.python.latencies, 50) / percentile(fn_lat, 50)))


def target_figures(args, m, raw, raw_py, preload, celery):
    def celery_figure(kind, which):
        if isinstance(celery, str):
            return None
        latencies, rate = celery[kind]
        return percentile(latencies, 50) if which == "p50" else rate
    return {
        "count": args.count, "python_count": args.python_count,
        "shell_rate": m.rate, "raw_rate": raw, "shell_p50": percentile(m.latencies, 50),
        "celery_script_rate": celery_figure("script", "rate"),
        "celery_script_p50": celery_figure("script", "p50"),
        "celery_function_p50": celery_figure("function", "p50"),
        "python_rate": m.python.rate, "raw_python_rate": raw_py,
        "python_p50": percentile(m.python.latencies, 50),
        "python_spaced_p50": percentile(m.python.spaced, 50) if m.python.spaced else None,
        "yaml_cold_p50": percentile(preload["cold"], 50),
        "yaml_preload_p50": percentile(preload["preload"], 50) if "preload" in preload else None,
        "idle_rss_mb": m.idle["VmRSS"] / 1024, "idle_pss_mb": m.idle["Pss"] / 1024,
        "zygote": m.zygote_idle or m.python.zygote,
    }
