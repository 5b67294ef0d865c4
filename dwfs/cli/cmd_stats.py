"""dwfsctl stats: what a mounted filesystem did: requests by kind with their
latencies, bytes, cache hit rates, deduplication and compression, the journal."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dwfs.cli import _metrics, _mounts
from dwfs.cli._output import human_bytes, print_json


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "stats",
        help="show what a mounted filesystem did (or print it for Prometheus)",
        description="Requests by kind with their count and latency percentiles, bytes "
        "read and written (and how much of it is not stored yet), the chunk cache's hit "
        "rate, deduplication and compression ratios, and the metadata journal's figures, "
        "since the mount began. "
        "--prometheus prints the same in Prometheus's text format (for node_exporter's "
        "textfile collector); `mount -o metrics=127.0.0.1:PORT` serves it over HTTP.",
    )
    how = p.add_mutually_exclusive_group()
    how.add_argument("--json", action="store_true", help="print JSON")
    how.add_argument("--prometheus", action="store_true", help="print Prometheus text")
    p.add_argument("mountpoint", metavar="MOUNTPOINT", type=Path)
    p.set_defaults(run=run)


def _ms(seconds: float | None) -> str:
    return ">10 s" if seconds is None else f"{seconds * 1000:g} ms"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def render(stats: dict[str, Any]) -> str:
    lines = [f"{'REQUEST':<16} {'COUNT':>10} {'P50':>10} {'P90':>10} {'P99':>10}"]
    for kind, h in sorted(stats["requests"].items(), key=lambda item: -item[1]["count"]):
        lines.append(
            f"{kind:<16} {h['count']:>10,} {_ms(h['p50']):>10} {_ms(h['p90']):>10} "
            f"{_ms(h['p99']):>10}"
        )
    cache, store, journal = stats["chunk_cache"], stats["store"], stats["journal"]
    front = stats.get("front_end") or {}
    rate = "-" if cache["hit_rate"] is None else f"{cache['hit_rate']:.1%}"
    lines += [
        "",
        f"read:          {human_bytes(stats['bytes_read'])} through Python"
        + (f", {front['reads_in_c']:,} reads answered in C" if "reads_in_c" in front else ""),
        f"written:       {human_bytes(stats['bytes_written'])}, "
        f"{human_bytes(stats['unstored']['bytes'])} of it in "
        f"{stats['unstored']['files']:,} files not stored yet",
        f"chunk cache:   {rate} hits ({cache['hits']:,} of {cache['hits'] + cache['misses']:,}), "
        f"{human_bytes(cache['bytes'])} of {human_bytes(cache['capacity'])}",
        f"stored:        {store['chunks_written']:,} chunks, "
        f"{store['chunks_deduplicated']:,} deduplicated (dedup {_ratio(store['dedup_ratio'])}, "
        f"compression {_ratio(store['compression_ratio'])})",
        f"journal:       {journal['records']:,} records, "
        f"{human_bytes(journal['bytes_since_checkpoint'])} since the last of "
        f"{journal['checkpoints']} checkpoints, txg {journal['txg']}",
    ]
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> int:
    stats = _mounts.request(_mounts.find(args.mountpoint), {"cmd": "stats"})
    if args.json:
        print_json(stats)
    elif args.prometheus:
        print(_metrics.prometheus(stats), end="")
    else:
        print(render(stats))
    return 0
