"""Prometheus text from a mount's figures, and where metrics may be served."""

from __future__ import annotations

import re

import pytest

from dwfs.cli._metrics import listen_address, prometheus
from dwfs.cli.cmd_mount import parse_options
from dwfs.errors import UsageError
from dwfs.vfs._stats import Activity

LINE = re.compile(r'^dwfs_[a-z_]+(\{([a-z_]+="([^"\\]|\\.)*",?)+\})? [0-9.e+-]+$')


def figures() -> dict[str, object]:
    activity = Activity()
    for seconds in (0.00003, 0.0002, 0.0002, 4.0, 20.0):
        activity.record('we"ird\nkind', seconds)
    activity.bytes_written = 123
    return {
        "pool": "p-1",
        **activity.to_json(),
        "front_end": {"answered_in_c": 7, "reads_in_c": 2, "name": "native"},
        "chunk_cache": {"hits": 3, "misses": 1, "hit_rate": 0.75, "bytes": 10, "capacity": 20},
        "store": {"chunks_written": 4, "dedup_ratio": None},
        "journal": {"records": 2, "bytes_since_checkpoint": 99, "checkpoints": 0, "txg": 5},
        "capacity": {"size": 1000, "used": 10},
        "unstored": {"bytes": 4096, "files": 1},
    }


def test_the_text_is_prometheus_exposition_format() -> None:
    text = prometheus(figures())
    assert text.endswith("\n")
    for line in text.splitlines():
        assert (
            line.startswith("# HELP dwfs_") or line.startswith("# TYPE dwfs_") or LINE.match(line)
        ), line
    assert 'dwfs_written_bytes_total{pool="p-1"} 123' in text
    assert "# TYPE dwfs_written_bytes_total counter" in text
    assert "# TYPE dwfs_pool_used_bytes gauge" in text
    assert 'dwfs_unstored_bytes{pool="p-1"} 4096' in text
    assert "dwfs_chunks_deduplicated_total" not in text, "figures missing are left out"
    buckets = [
        int(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("dwfs_request_duration_seconds_bucket")
    ]
    assert buckets == sorted(buckets), "buckets are cumulative"
    assert buckets[-1] == 5, "+Inf counts every request, the one past the last bound too"
    assert 'kind="we\\"ird\\nkind"' in text


@pytest.mark.parametrize(
    ("option", "address"),
    [
        ("metrics=127.0.0.1:9577", ("127.0.0.1", 9577)),
        ("metrics=[::1]:80", ("::1", 80)),
        ("metrics=localhost:9100", ("127.0.0.1", 9100)),
    ],
)
def test_metrics_are_served_on_loopback_only(option: str, address: tuple[str, int]) -> None:
    assert listen_address({option}) == address
    assert listen_address({"allow_other"}) is None


@pytest.mark.parametrize(
    "option",
    [
        "metrics=0.0.0.0:9577",
        "metrics=10.1.2.3:80",
        "metrics=127.0.0.1",
        "metrics=127.0.0.1:0",
        "metrics=127.0.0.1:70000",
        "metrics=:9577",
        "metrics=example.com:80",
    ],
)
def test_other_addresses_are_refused(option: str) -> None:
    with pytest.raises(UsageError, match="loopback"):
        listen_address({option})


def test_options_with_two_values_are_refused_not_picked_from() -> None:
    for text in ("metrics=127.0.0.1:1,metrics=127.0.0.1:2", "remote_timeout=5,remote_timeout=9"):
        with pytest.raises(UsageError, match="given 2 values: give it once"):
            parse_options(text)
    assert "remote_timeout=5" in parse_options("remote_timeout=5,remote_timeout=5")
