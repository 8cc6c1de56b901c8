"""The latency histogram shared by folding and the charts."""

from bisect import bisect_left
from collections.abc import Iterable, Sequence

# Upper bounds (ms) of the latency histogram buckets; the last is +inf.
LATENCY_BUCKETS_MS: tuple[float, ...] = (
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, float("inf"),
)


def bucket_index(latency_ms: float) -> int:
    """The first bucket whose upper bound holds `latency_ms`."""
    return bisect_left(LATENCY_BUCKETS_MS, max(latency_ms, 0.0))


def empty() -> list[int]:
    return [0] * len(LATENCY_BUCKETS_MS)


def add_into(total: list[int], counts: Sequence[int] | None) -> list[int]:
    """Adds `counts` into `total` in place; short or missing lists count as zeros."""
    for i, value in enumerate(counts or ()):
        if i < len(total):
            total[i] += int(value or 0)
    return total


def merged(histograms: Iterable[Sequence[int] | None]) -> list[int]:
    total = empty()
    for counts in histograms:
        add_into(total, counts)
    return total


def percentile(counts: Sequence[int], q: float) -> float | None:
    """The upper bound of the bucket holding the q-quantile (0 < q <= 1).

    None when the histogram is empty. The open last bucket reports the last
    finite bound: the answer is then "at least that".
    """
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    running = 0
    for bound, count in zip(LATENCY_BUCKETS_MS, counts, strict=False):
        running += count
        if running >= rank:
            return bound if bound != float("inf") else LATENCY_BUCKETS_MS[-2]
    return LATENCY_BUCKETS_MS[-2]
