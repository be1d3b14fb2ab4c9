"""bench/e2e's measure of the metrics endpoint's cost: a worker serving /metrics,
scraped as Prometheus would, against one serving none, in alternating rounds; the
median of per-round ratios with its spread, and the CPU one scrape costs."""
import random
import statistics
import sys
import threading
import urllib.request

from e2e_support import ACTION_REF, cpu_seconds, log, measure_throughput, percentile


class Scraper(threading.Thread):
    """GET /metrics every interval seconds, as Prometheus would."""

    def __init__(self, port, interval):
        super().__init__(daemon=True)
        self.port, self.interval = port, interval
        self.stopped = threading.Event()
        self.scrapes = self.failures = 0

    def run(self):
        while not self.stopped.wait(self.interval):
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.port,
                                            timeout=5) as r:
                    r.read()
                self.scrapes += 1
            except OSError:
                self.failures += 1



def cpu_ns(pid):
    """CPU time a process has used, in nanoseconds: /proc/PID/schedstat counts
    the time on the CPU exactly, where /proc/PID/stat counts 10 ms ticks (too
    coarse for a round's few hundred milliseconds); stat where schedstat is not
    built in. The worker has one thread, whose figures these are."""
    try:
        with open("/proc/%d/schedstat" % pid) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return int(cpu_seconds(pid) * 1e9)


def measure_metrics_cost(args, conn, start_worker):
    """A worker serving /metrics (scraped throughout) and one serving none, from
    start_worker(name, serves_metrics), on the same database: per round, each takes --metrics-count executions published at
    once, in turn, the order alternating so that neither always runs first.
    Then the worker CPU one scrape costs, on the idle worker.
    Returns ([{True: (rate, cpu_s per execution), False: ...} per round],
    (scrapes, failed scrapes), cpu_s per scrape)."""
    workers, scraper, rounds, per_scrape = {}, None, [], None
    if args.metrics_rounds <= 0:
        return rounds, (0, 0), None
    try:
        for served in (True, False):
            workers[served] = start_worker("bench-metrics-" + ("on" if served else "off"),
                                           served)
        scraper = Scraper(workers[True].port, args.scrape_interval)
        scraper.start()
        for r in range(args.metrics_rounds):
            got = {}
            for served in ((True, False) if r % 2 == 0 else (False, True)):
                got[served] = metrics_round(conn, workers[served], args.metrics_count)
            rounds.append(got)
        scraper.stopped.set()
        scraper.join()
        per_scrape = scrape_cpu(workers[True], METRICS_IDLE_SCRAPES)
    finally:
        if scraper:
            scraper.stopped.set()
            scraper.join()
        for w in workers.values():
            w.stop()
    return rounds, (scraper.scrapes, scraper.failures), per_scrape


METRICS_IDLE_SCRAPES = 500
METRICS_BOOTSTRAP = 2000


def scrape_cpu(w, count):
    """Worker CPU seconds per GET /metrics, count of them one after another on
    an idle worker: what a scrape costs, without the noise of a loaded machine."""
    cpu = cpu_ns(w.proc.pid)
    for _ in range(count):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % w.port, timeout=5) as r:
            r.read()
    return (cpu_ns(w.proc.pid) - cpu) / 1e9 / count


def median_interval(values):
    """A 90 % bootstrap interval of the median (fixed seed: the same rounds
    give the same interval)."""
    rng = random.Random(1)
    medians = sorted(statistics.median(rng.choices(values, k=len(values)))
                     for _ in range(METRICS_BOOTSTRAP))
    return medians[int(0.05 * len(medians))], medians[int(0.95 * len(medians)) - 1]


def metrics_round(conn, w, count):
    """One worker's share of a round: (executions/s, worker CPU s per execution)."""
    cpu = cpu_ns(w.proc.pid)
    rate, _, done, failed, _ = measure_throughput(conn, w.broker, count, w.proc.pid, ACTION_REF)
    if done != count or failed:
        sys.exit("bench: not every execution completed (metrics %s)" % (w.port is not None))
    return rate, (cpu_ns(w.proc.pid) - cpu) / 1e9 / count


def spread(values):
    """median, (min, first quartile, third quartile, max) of percentages."""
    return statistics.median(values), (min(values), percentile(values, 25),
                                       percentile(values, 75), max(values))


def report_metrics_cost(args, result):
    rounds, (scrapes, failures), per_scrape = result
    log("")
    if not rounds:
        log("metrics: not measured (--metrics-rounds 0)")
        return
    log("metrics (observability.listen): %d rounds, %d executions published at once to a "
        "worker serving /metrics (scraped every %.1f s: %d scrapes, %d failed) and to one "
        "serving none, in turn, the order alternating" % (
            len(rounds), args.metrics_count, args.scrape_interval, scrapes, failures))
    # Cost in percent, per round: throughput lost, CPU per execution added.
    lost = [100.0 * (1 - r[True][0] / r[False][0]) for r in rounds]
    added = [100.0 * (r[True][1] / r[False][1] - 1) for r in rounds]
    log("per round, on against off:        median   90 % interval of the median   quartiles"
        "            range")
    for label, values in (("throughput lost", lost), ("worker CPU per execution added", added)):
        med, (lo, q1, q3, hi) = spread(values)
        ci = median_interval(values)
        log("%-31s %+7.2f %%   %+6.2f .. %+6.2f %%             %+6.2f .. %+6.2f %%   "
            "%+6.2f .. %+6.2f %%" % (label, med, ci[0], ci[1], q1, q3, lo, hi))
    for served, name in ((True, "on"), (False, "off")):
        log("  metrics %-3s median %7.1f executions/s, worker CPU %.3f ms per execution" % (
            name, statistics.median(r[served][0] for r in rounds),
            1000 * statistics.median(r[served][1] for r in rounds)))
    exec_cpu = statistics.median(r[True][1] for r in rounds)
    rate = statistics.median(r[True][0] for r in rounds)
    log("one scrape of the idle worker: %.1f us of its CPU (%d scrapes); at one scrape every "
        "%.1f s and %.1f executions/s that is %.3f %% of the CPU the executions take" % (
            per_scrape * 1e6, METRICS_IDLE_SCRAPES, args.scrape_interval, rate,
            100.0 * per_scrape / args.scrape_interval / (rate * exec_cpu)))
    ci = median_interval(added)
    verdict = ("within" if ci[1] < 2.0 else "OVER" if ci[0] > 2.0 else
               "not decided at this noise (more --metrics-rounds, a quieter machine) for")
    log("metrics cost, worker CPU per execution: median %+.2f %% (90 %% interval %+.2f .. %+.2f "
        "%%): %s the 2 %% target" % (statistics.median(added), ci[0], ci[1], verdict))
