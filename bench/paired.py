"""The cost of one setting measured in pairs (each run with it next to one without):
the median of the paired differences and a distribution-free 95 % interval of that
median, so that a cost of a millisecond is told apart from the noise of the runs.
Used by bench/run-action and bench/e2e."""
import math
import statistics


def median_interval_ranks(n, confidence=0.95):
    """1-based ranks (lo, hi) of the order statistics that bound the median of n
    values with at least the given confidence: the number of values below the
    median is binomial(n, 1/2), so [x_(lo), x_(n+1-lo)] misses it with probability
    2 * P(B < lo). None when n is too small for any such interval."""
    tail = (1.0 - confidence) / 2.0
    below = 0.0
    lo = 0
    while lo < n:
        below_next = below + math.comb(n, lo) / 2.0**n
        if below_next > tail:
            break
        below, lo = below_next, lo + 1
    return (lo, n + 1 - lo) if lo >= 1 else None


class PairedCost:
    """Differences on - off of runs taken in adjacent pairs."""

    def __init__(self, on, off):
        if len(on) != len(off):
            raise ValueError("paired runs of unequal count: %d and %d" % (len(on), len(off)))
        self.differences = sorted(a - b for a, b in zip(on, off))
        self.on_median = statistics.median(on)
        self.off_median = statistics.median(off)

    @property
    def median(self):
        return statistics.median(self.differences)

    @property
    def interval(self):
        """The 95 % interval of the median difference, or None with too few pairs."""
        ranks = median_interval_ranks(len(self.differences))
        if not ranks:
            return None
        return self.differences[ranks[0] - 1], self.differences[ranks[1] - 1]

    def describe(self, unit="ms"):
        """'+0.42 ms (95 % interval -0.10 to +0.90 ms, 60 pairs)'."""
        interval = self.interval
        where = ("95 %% interval %+.2f to %+.2f %s" % (interval[0], interval[1], unit)
                 if interval else "too few pairs for a 95 % interval")
        return "%+.2f %s (%s, %d pairs)" % (self.median, unit, where, len(self.differences))
