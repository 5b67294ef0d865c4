"""A mount's figures as Prometheus text (exposition format 0.0.4), and the
opt-in listener that serves them to a scraper on this machine only.

Names follow Prometheus's conventions: a `dwfs_` prefix, base units (seconds,
bytes) in the name, `_total` on counters, one histogram for request latency
with the request kind as a label, and the pool id as a label on everything.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from typing import Any

import trio

from dwfs.errors import UsageError
from dwfs.fuse import option_value

log = logging.getLogger(__name__)

MAX_REQUEST = 8192
"""The most of an HTTP request the listener reads."""
METRICS_OPTION = "metrics="

_COUNTERS = (
    (
        "read_bytes_total",
        "Bytes read through the mount (reads answered in C not counted).",
        ("bytes_read",),
    ),
    ("written_bytes_total", "Bytes written through the mount.", ("bytes_written",)),
    (
        "chunk_cache_hits_total",
        "Chunk loads answered from the plaintext cache.",
        ("chunk_cache", "hits"),
    ),
    (
        "chunk_cache_misses_total",
        "Chunk loads that went to the devices or the remote.",
        ("chunk_cache", "misses"),
    ),
    ("chunks_written_total", "Chunks stored (after deduplication).", ("store", "chunks_written")),
    (
        "chunks_deduplicated_total",
        "Chunks found stored already and not written again.",
        ("store", "chunks_deduplicated"),
    ),
    ("chunks_loaded_total", "Chunks read from the devices.", ("store", "chunks_loaded")),
    ("stored_bytes_total", "Plaintext bytes handed to the block store.", ("store", "bytes_in")),
    (
        "sealed_bytes_total",
        "Bytes stored after compression and encryption.",
        ("store", "bytes_sealed"),
    ),
    (
        "journal_records_total",
        "Metadata journal records written by this mount.",
        ("journal", "records"),
    ),
    (
        "checkpoints_total",
        "Metadata checkpoints written by this mount.",
        ("journal", "checkpoints"),
    ),
    (
        "requests_answered_in_c_total",
        "Requests the native front end answered without Python.",
        ("front_end", "answered_in_c"),
    ),
    (
        "reads_answered_in_c_total",
        "Reads the native front end answered from its cache.",
        ("front_end", "reads_in_c"),
    ),
)
_GAUGES = (
    ("pool_size_bytes", "Usable bytes of the pool (after redundancy).", ("capacity", "size")),
    ("pool_used_bytes", "Bytes of the pool in use (after redundancy).", ("capacity", "used")),
    ("chunk_cache_bytes", "Bytes in the plaintext chunk cache.", ("chunk_cache", "bytes")),
    (
        "journal_bytes",
        "Journal bytes written since the last checkpoint.",
        ("journal", "bytes_since_checkpoint"),
    ),
    (
        "unstored_bytes",
        "Bytes written but not stored as chunks yet (open files', the write-behind's).",
        ("unstored", "bytes"),
    ),
)


def _value(stats: dict[str, Any], path: tuple[str, ...]) -> float | None:
    node: Any = stats
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node if isinstance(node, (int, float)) and not isinstance(node, bool) else None


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def prometheus(stats: dict[str, Any]) -> str:
    """The figures of `Volume.stats()` as Prometheus text."""
    pool = f'pool="{_label(stats["pool"])}"'
    lines: list[str] = []

    def family(name: str, kind: str, text: str) -> None:
        lines.extend((f"# HELP dwfs_{name} {text}", f"# TYPE dwfs_{name} {kind}"))

    for kind, table in (("counter", _COUNTERS), ("gauge", _GAUGES)):
        for name, text, path in table:
            value = _value(stats, path)
            if value is not None:
                family(name, kind, text)
                lines.append(f"dwfs_{name}{{{pool}}} {_number(value)}")
    family("request_duration_seconds", "histogram", "Time to answer a request, by kind.")
    bounds = stats["bounds"]
    for kind, h in stats["requests"].items():
        labels = f'{pool},kind="{_label(kind)}"'
        seen = 0
        for bound, count in zip(bounds, h["buckets"], strict=False):
            seen += count
            lines.append(f'dwfs_request_duration_seconds_bucket{{{labels},le="{bound}"}} {seen}')
        lines.append(f'dwfs_request_duration_seconds_bucket{{{labels},le="+Inf"}} {h["count"]}')
        lines.append(f"dwfs_request_duration_seconds_sum{{{labels}}} {_number(h['seconds'])}")
        lines.append(f"dwfs_request_duration_seconds_count{{{labels}}} {h['count']}")
    return "\n".join(lines) + "\n"


def listen_address(options: set[str]) -> tuple[str, int] | None:
    """Where `-o metrics=HOST:PORT` asks the mount to serve its metrics, if it does.

    Raises:
        UsageError: not HOST:PORT, or HOST is not a loopback address (the
            figures name the pool and what it does: this machine only).
    """
    text = option_value(options, METRICS_OPTION)
    if text is None:
        return None
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    try:
        number = int(port)
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        number, loopback = 0, False
    if not 0 < number < 65536 or not loopback:
        raise UsageError(
            f"-o metrics={text}: give a loopback address and port, such as 127.0.0.1:9577"
        )
    return ("127.0.0.1" if host == "localhost" else host, number)


async def bind(address: tuple[str, int]) -> trio.SocketListener:
    """A listening socket at address.

    Raises:
        UsageError: it cannot be had (the port in use, say).
    """
    try:
        listeners = await trio.open_tcp_listeners(address[1], host=address[0])
    except OSError as exc:
        raise UsageError(
            f"cannot serve metrics at {address[0]}:{address[1]}: {exc.strerror or exc}; "
            "choose another port"
        ) from None
    return listeners[0]


async def serve(listener: trio.SocketListener, figures: Callable[[], dict[str, Any]]) -> None:
    """Answer GET /metrics on listener with figures() as Prometheus text, until cancelled."""

    async def answer(stream: trio.SocketStream) -> None:
        await _answer(stream, figures)

    async with listener:
        await trio.serve_listeners(answer, [listener])


async def _answer(stream: trio.SocketStream, figures: Callable[[], dict[str, Any]]) -> None:
    async with stream:
        request = b""
        with trio.move_on_after(5):
            while b"\r\n\r\n" not in request and len(request) < MAX_REQUEST:
                chunk = await stream.receive_some(4096)
                if not chunk:
                    break
                request += chunk
        line = request.split(b"\r\n", 1)[0].split()
        if len(line) < 2 or line[0] != b"GET":
            status, body, kind = "405 Method Not Allowed", b"GET only\n", "text/plain"
        elif line[1].split(b"?")[0] != b"/metrics":
            status, body, kind = "404 Not Found", b"see /metrics\n", "text/plain"
        else:
            status, kind = "200 OK", "text/plain; version=0.0.4; charset=utf-8"
            body = prometheus(figures()).encode()
        head = (
            f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        try:
            await stream.send_all(head.encode() + body)
        except trio.BrokenResourceError:
            log.info("a metrics scraper hung up before its answer")
