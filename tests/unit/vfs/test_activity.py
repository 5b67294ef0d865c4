"""Request latencies in buckets, and percentiles read off them."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from dwfs.vfs._stats import BOUNDS, Activity, Histogram


@given(st.lists(st.floats(min_value=0, max_value=30), min_size=1, max_size=300))
def test_percentiles_bound_what_they_say(latencies: list[float]) -> None:
    h = Histogram()
    for seconds in latencies:
        h.record(seconds)
    assert h.count == len(latencies)
    ordered = sorted(latencies)
    for p in (50, 90, 99):
        bound = h.percentile(p)
        below = sum(1 for s in ordered if bound is None or s <= bound)
        assert below >= len(ordered) * p / 100
        if bound is not None and bound != BOUNDS[0]:
            lower = BOUNDS[BOUNDS.index(bound) - 1]
            assert sum(1 for s in ordered if s <= lower) < len(ordered) * p / 100


def test_activity_by_kind() -> None:
    activity = Activity()
    rng = random.Random(1)
    for _ in range(1000):
        activity.record("lookup", rng.uniform(0.00002, 0.00004))
    activity.record("fsync", 0.003)
    shown = activity.to_json()["requests"]
    assert shown["lookup"]["count"] == 1000 and shown["lookup"]["p99"] == 0.00005
    assert shown["fsync"]["p50"] == 0.005
    assert sum(shown["lookup"]["buckets"]) == 1000
