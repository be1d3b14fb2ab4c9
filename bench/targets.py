"""The target table of warm execution (issue 11) that bench/e2e prints last: each
measure with its value, the peer figure it is compared with (from the same run),
the target and whether the run met it."""

# Idle memory of the worker before warm execution, which it must not exceed.
IDLE_RSS_MB = 12.0
IDLE_PSS_MB = 4.0


def _ratio(a, b):
    return a / b if a is not None and b else None


def _met(ok):
    return "-" if ok is None else ("yes" if ok else "NO")


def _fmt(fmt, value):
    return "n/a" if value is None else fmt % value


def target_rows(f):
    """Rows (measure, measured, peer, target, met) from the figures in f; a
    figure missing (None) leaves its row unmet-unknown ("-")."""
    shell_raw = _ratio(f["shell_rate"], f["raw_rate"])
    shell_celery = _ratio(f["shell_rate"], f["celery_script_rate"])
    py_raw = _ratio(f["python_rate"], f["raw_python_rate"])
    preload = _ratio(f["yaml_cold_p50"], f["yaml_preload_p50"])
    celery_p50 = f["celery_script_p50"]
    zygote = f["zygote"]
    memory = "RSS %.1f / PSS %.1f MB" % (f["idle_rss_mb"], f["idle_pss_mb"])
    return [
        ("shell, %d at once, throughput / raw `bash script`" % f["count"],
         "%.0f %% (%.1f/s)" % (100 * shell_raw, f["shell_rate"]),
         "raw %.1f/s" % f["raw_rate"], ">= 85 %", _met(shell_raw >= 0.85)),
        ("same, / Celery running the same script",
         _fmt("%.2fx", shell_celery), _fmt("Celery %.1f/s", f["celery_script_rate"]),
         ">= 1.5x", _met(None if shell_celery is None else shell_celery >= 1.5)),
        ("shell, one at a time, p50 publish -> completed",
         "%.1f ms" % f["shell_p50"], _fmt("Celery %.1f ms", celery_p50),
         "<= 1/2 Celery's", _met(None if celery_p50 is None else f["shell_p50"] <= celery_p50 / 2)),
        ("python, %d at once, throughput / raw cold `python3 script`" % f["python_count"],
         "%.2fx (%.1f/s)" % (py_raw, f["python_rate"]), "raw %.1f/s" % f["raw_python_rate"],
         ">= 5x", _met(py_raw >= 5)),
        ("python, one at a time, p50 publish -> completed",
         "%.1f ms" % f["python_p50"], _fmt("Celery in-process %.1f ms", f["celery_function_p50"]),
         "<= 5 ms", _met(f["python_p50"] <= 5.0)),
        ("same, each 0.2 s after the one before (an idle worker)",
         _fmt("%.1f ms", f["python_spaced_p50"]), "", "<= 5 ms",
         _met(None if f["python_spaced_p50"] is None else f["python_spaced_p50"] <= 5.0)),
        ("python importing yaml and json, p50 preload vs cold",
         _fmt("%.1fx", preload) if preload else "no fork server",
         "cold %.1f ms" % f["yaml_cold_p50"], ">= 10x faster",
         _met(preload is not None and preload >= 10)),
        ("idle memory of the worker (zygote apart)", memory,
         "zygote " + ("RSS %.1f / PSS %.1f MB" % (zygote["VmRSS"] / 1024, zygote["Pss"] / 1024)
                      if zygote else "none"),
         "<= %.0f / %.0f MB" % (IDLE_RSS_MB, IDLE_PSS_MB),
         _met(f["idle_rss_mb"] <= IDLE_RSS_MB and f["idle_pss_mb"] <= IDLE_PSS_MB)),
    ]


def print_targets(log, figures):
    rows = target_rows(figures)
    header = ("measure (this run)", "measured", "peer (same run)", "target", "met")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    log("")
    log("warm execution targets:")
    for row in [header] + rows:
        log("  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
