"""Compression of chunk payloads, skipped when it does not pay.

zstd (level 1 by default) or lz4 frame. A chunk is stored compressed only when
that saves at least an eighth of it, ZFS's rule: a smaller saving is not worth
decompressing on every read (fio's default buffers compress by 4%, which the
earlier 1/32 rule paid for at both ends). A chunk of 64 KiB or more is first
judged by a sample, eight 2 KiB slices spread over it: when the sample does not
save an eighth, the chunk is stored as it is, at a sixteenth of the cost of a
failed attempt on the whole. Like btrfs's heuristic, this misses redundancy that
only spans slices (a chunk repeating one random block). Compressor objects are
not thread-safe, so each worker thread keeps its own.
"""

from __future__ import annotations

import threading

import lz4.frame
import zstandard

from dwfs.errors import IntegrityError, UsageError
from dwfs.types import Buffer, Plain

NONE, ZSTD, LZ4 = 0, 1, 2
ALGORITHMS = {"none": NONE, "zstd": ZSTD, "lz4": LZ4}
ZSTD_LEVEL = 1
SAMPLE_SLICES, SAMPLE_SLICE = 8, 2048
SAMPLE_FROM = 4 * SAMPLE_SLICES * SAMPLE_SLICE
"""Chunks this large are sampled first; smaller ones are simply tried."""
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


def _pack(algorithm: int, data: Buffer) -> bytes:
    if algorithm == ZSTD:
        return _zstd().compress(data)
    packed: bytes = lz4.frame.compress(data, store_size=True)
    return packed


def _pays(data_len: int, packed_len: int) -> bool:
    return packed_len <= data_len - data_len // 8


def sample(data: Buffer) -> bytes | None:
    """The slices of data that stand for it in the compressibility test (None: too
    small to sample, try the whole)."""
    if len(data) < SAMPLE_FROM:
        return None
    view, step = memoryview(data).cast("B"), len(data) // SAMPLE_SLICES
    return b"".join(view[i * step : i * step + SAMPLE_SLICE] for i in range(SAMPLE_SLICES))


def compress(algorithm: int, data: Buffer) -> tuple[int, Buffer]:
    """(algorithm actually used, payload): NONE and the data itself when it does not pay."""
    if algorithm == NONE or len(data) < 64:
        return NONE, data
    probe = sample(data)
    if probe is not None and not _pays(len(probe), len(_pack(algorithm, probe))):
        return NONE, data
    packed = _pack(algorithm, data)
    if not _pays(len(data), len(packed)):
        return NONE, data
    return algorithm, packed


MAX_PLAIN = 64 * 1024 * 1024
"""The most a chunk may decompress to: above any chunk the chunker cuts (1 MiB at
most) or any manifest, so an authentic but hostile chunk cannot make a reader
allocate without bound."""


def decompress(algorithm: int, payload: Plain, limit: int = MAX_PLAIN) -> Plain:
    """The chunk's bytes, at most `limit` of them.

    Raises:
        IntegrityError: it does not decompress, or to more than limit bytes.
    """
    try:
        if algorithm == NONE:
            return payload
        if algorithm == ZSTD:
            return _unzstd(payload, limit)
        if algorithm == LZ4:
            return _unlz4(payload, limit)
    except (zstandard.ZstdError, RuntimeError) as exc:
        raise IntegrityError(f"an authenticated chunk does not decompress: {exc}") from None
    raise IntegrityError(f"unknown compression id {algorithm}")


def _too_big(limit: int) -> IntegrityError:
    return IntegrityError(f"an authenticated chunk decompresses to more than {limit} bytes")


def _unzstd(payload: Plain, limit: int) -> bytes:
    declared = zstandard.frame_content_size(payload)
    if declared > limit:
        raise _too_big(limit)
    result: bytes = zstandard.ZstdDecompressor().decompress(payload, max_output_size=limit)
    return result


def _unlz4(payload: Plain, limit: int) -> bytes:
    decompressor = lz4.frame.LZ4FrameDecompressor()
    result: bytes = decompressor.decompress(payload, max_length=limit)
    if not decompressor.eof:
        if len(result) >= limit:
            raise _too_big(limit)
        raise RuntimeError("truncated lz4 frame")
    return result
