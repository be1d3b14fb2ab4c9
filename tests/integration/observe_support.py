"""Helpers for the tests of the worker's HTTP endpoint (observability.listen): a
free loopback port, GET with the status whatever it is, /metrics parsed by the
Prometheus client library's own text-format parser, and a process's VmRSS."""
import socket
import urllib.error
import urllib.request

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # python3-prometheus-client (scripts/install-deps)
    text_string_to_metric_families = None


def free_port():
    """A loopback port nothing listens on now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, path, timeout=2.0):
    """(status, headers, body text) of GET http://127.0.0.1:port/path."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                    timeout=timeout) as r:
            return r.status, dict(r.headers), r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode("utf-8")


def scrape(port):
    """{(name, frozenset(labels.items())): value} of every sample of /metrics,
    through prometheus_client's parser (which raises on text it cannot read),
    and the families by name."""
    status, headers, text = http_get(port, "/metrics")
    if status != 200:
        raise AssertionError("/metrics answered %d: %s" % (status, text))
    if not headers.get("Content-Type", "").startswith("text/plain; version=0.0.4"):
        raise AssertionError("/metrics Content-Type %r" % headers.get("Content-Type"))
    samples, families = {}, {}
    for fam in text_string_to_metric_families(text):
        families[fam.name] = fam
        for s in fam.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples, families


def sample_sum(samples, name, **labels):
    """The sum of the samples of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def vm_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)
