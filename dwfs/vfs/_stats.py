"""What a mounted filesystem did: requests by kind with their latencies, and
the bytes read and written through it. The adapters record each request they
hand the Volume; `dwfsctl stats` and the metrics listener read it.

Latencies go into fixed buckets (a Prometheus histogram's), so recording one
costs a bisect and memory stays flat; percentiles are read off the buckets
(the upper bound of the bucket the percentile falls in), as Prometheus's
histogram_quantile does.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import time
from typing import Any

BOUNDS = (
    0.00001,
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
"""Upper bounds of the latency buckets, in seconds (one more bucket holds the rest)."""
PERCENTILES = (50, 90, 99)


@dataclasses.dataclass
class Histogram:
    """Latencies of one kind of request."""

    counts: list[int] = dataclasses.field(default_factory=lambda: [0] * (len(BOUNDS) + 1))
    total: float = 0.0

    def record(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BOUNDS, seconds)] += 1
        self.total += seconds

    @property
    def count(self) -> int:
        return sum(self.counts)

    def percentile(self, p: float) -> float | None:
        """The bound below which p% of the requests took (None past the last bound)."""
        wanted, seen = self.count * p / 100, 0
        for bound, n in zip(BOUNDS, self.counts, strict=False):
            seen += n
            if seen >= wanted:
                return bound
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "seconds": round(self.total, 6),
            **{f"p{p}": self.percentile(p) for p in PERCENTILES},
            "buckets": self.counts,
        }


class Activity:
    """Requests and bytes through one mount."""

    def __init__(self) -> None:
        self.requests: dict[str, Histogram] = {}
        self.bytes_read = 0
        self.bytes_written = 0
        self.last = -math.inf
        """When (time.monotonic()) the last request was answered."""

    def record(self, kind: str, seconds: float) -> None:
        """A request of this kind answered in `seconds`."""
        self.last = time.monotonic()
        histogram = self.requests.get(kind)
        if histogram is None:
            histogram = self.requests[kind] = Histogram()
        histogram.record(seconds)

    def recent(self, seconds: float) -> bool:
        """Whether a request was answered in the last `seconds`."""
        return time.monotonic() - self.last < seconds

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": {kind: h.to_json() for kind, h in sorted(self.requests.items())},
            "bounds": list(BOUNDS),
            "bytes_read": self.bytes_read,
            "bytes_written": self.bytes_written,
        }
