"""The warm execution part of bench/e2e's report: the Python rows, the Celery peer
and its ratios, and the figures of the target table (bench/targets.py)."""
from e2e_support import PY_REF, SLOTS, YAML_REF, log, percentile


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
        "yaml_cold_p50": percentile(preload["cold"], 50),
        "yaml_preload_p50": percentile(preload["preload"], 50) if "preload" in preload else None,
        "idle_rss_mb": m.idle["VmRSS"] / 1024, "idle_pss_mb": m.idle["Pss"] / 1024,
        "zygote": m.zygote_idle or m.python.zygote,
    }
