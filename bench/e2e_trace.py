"""bench/e2e --trace: reads a worker's debug log (log.level debug) and reports,
per execution run one at a time, its database statements with their times, its
broker hops and when each state of its job began."""
import re
import statistics

TRACE_LINE = re.compile(r"^\S+ debug \w+: (.*)$")


def trace_blocks(path):
    """The debug lines of each execution: from its delivery to its job's end."""
    blocks, current = [], None
    with open(path) as f:
        for line in f:
            m = TRACE_LINE.match(line.rstrip("\n"))
            if not m:
                continue
            msg = m.group(1)
            if re.match(r"delivery \d+ received", msg):
                current = [msg]
            elif current is not None:
                current.append(msg)
                if re.search(r" -> done \(", msg):
                    blocks.append(current)
                    current = None
    return blocks


def trace_report(blocks, latencies, log, percentile):
    """Medians over the executions of what each one cost."""
    trips, hops, states, statements = [], [], {}, {}
    for block in blocks:
        n_trips = n_hops = 0
        for msg in block:
            m = re.match(r"round trip of (\d+) us: (.*)$", msg)
            if m:
                n_trips += 1
                key = re.sub(r"\s+", " ", m.group(2))[:60]
                statements.setdefault(key, []).append(int(m.group(1)))
            elif re.match(r"(delivery \d+ (received|acknowledged|rejected)|published )", msg):
                n_hops += 1
            m = re.search(r": [\w-]+ -> ([\w-]+) \(\+(\d+) us\)$", msg)
            if m:
                states.setdefault(m.group(1), []).append(int(m.group(2)))
        trips.append(n_trips)
        hops.append(n_hops)
    log("trace: %d executions one at a time, publish -> execution.completed p50 %.2f ms"
        % (len(blocks), percentile(latencies, 50)))
    log("database statements (round trips) per execution: median %d (min %d, max %d)"
        % (statistics.median(trips), min(trips), max(trips)))
    log("broker hops per execution (delivery, acks, publishes): median %d"
        % statistics.median(hops))
    log("statements (count over all executions, median time of each):")
    for key, times in sorted(statements.items(), key=lambda kv: -len(kv[1])):
        log("  %5d x %8.0f us  %s" % (len(times), statistics.median(times), key))
    log("one execution's debug lines (the last):")
    for msg in blocks[-1]:
        log("  " + msg[:110])
    log("state entered, median time since the delivery:")
    for state, times in sorted(states.items(), key=lambda kv: statistics.median(kv[1])):
        log("  %-20s %8.0f us" % (state, statistics.median(times)))
