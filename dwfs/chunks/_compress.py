"""Compression of chunk payloads, skipped when it does not pay.

zstd (level 1 by default) or lz4 frame. A chunk is stored compressed only when
that saves at least 1/32 of it; incompressible data costs one fast failed
attempt (zstd gives up on random data at several GB/s). Compressor objects are
not thread-safe, so each worker thread keeps its own.
"""

from __future__ import annotations

import threading

import lz4.frame
import zstandard

from dwfs.errors import IntegrityError, UsageError
from dwfs.types import Buffer

NONE, ZSTD, LZ4 = 0, 1, 2
ALGORITHMS = {"none": NONE, "zstd": ZSTD, "lz4": LZ4}
ZSTD_LEVEL = 1
_local = threading.local()


def algorithm_id(name: str) -> int:
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise UsageError(
            f"unknown compression {name!r}: use one of {', '.join(ALGORITHMS)}"
        ) from None


def _zstd() -> zstandard.ZstdCompressor:
    compressor: zstandard.ZstdCompressor | None = getattr(_local, "zstd", None)
    if compressor is None:
        compressor = _local.zstd = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    return compressor


def compress(algorithm: int, data: Buffer) -> tuple[int, Buffer]:
    """(algorithm actually used, payload): NONE and the data itself when it does not pay."""
    if algorithm == NONE or len(data) < 64:
        return NONE, data
    if algorithm == ZSTD:
        packed = _zstd().compress(data)
    else:
        packed = lz4.frame.compress(data, store_size=True)
    if len(packed) > len(data) - len(data) // 32:
        return NONE, data
    return algorithm, packed


def decompress(algorithm: int, payload: bytes) -> bytes:
    try:
        if algorithm == NONE:
            return payload
        if algorithm == ZSTD:
            return zstandard.ZstdDecompressor().decompress(payload)
        if algorithm == LZ4:
            result: bytes = lz4.frame.decompress(payload)
            return result
    except (zstandard.ZstdError, RuntimeError) as exc:
        raise IntegrityError(f"an authenticated chunk does not decompress: {exc}") from None
    raise IntegrityError(f"unknown compression id {algorithm}")
