"""Pure-Python twins of the native kernels: same results, byte for byte.

Used where the extension is not built, and by the differential tests as the
reference. Multiplying a buffer by a constant is bytes.translate through a
256-entry table, and XOR is done on whole buffers as integers, so coding stays
usable (tens of MB/s); the chunker loop is slow and exists for correctness.
"""

from __future__ import annotations

import errno
import mmap
import os
import threading
from collections.abc import Sequence

from dwfs._accel import _gf
from dwfs.types import Buffer

_MUL_TABLES = [bytes(_gf.mul(c, x) for x in range(256)) for c in range(256)]
_MASK64 = (1 << 64) - 1
DIRECT_ALIGN = 4096
"""The alignment a direct read's offset, length and buffer are given: the
largest logical block size in common use."""


def gf_matmul(matrix: bytes, rows: int, cols: int, inputs: Sequence[Buffer]) -> list[bytes]:
    if len(matrix) != rows * cols or len(inputs) != cols:
        raise ValueError("matrix shape does not match the inputs")
    length = len(inputs[0])
    if any(len(b) != length for b in inputs):
        raise ValueError("inputs differ in length")
    out = []
    for r in range(rows):
        acc = 0
        for c in range(cols):
            coef = matrix[r * cols + c]
            if coef:
                src = bytes(inputs[c])
                if coef != 1:
                    src = src.translate(_MUL_TABLES[coef])
                acc ^= int.from_bytes(src, "little")
        out.append(acc.to_bytes(length, "little"))
    return out


def _cut(data: Buffer, start: int, params: tuple[int, int, int, int, int], gear: list[int]) -> int:
    min_size, avg_size, max_size, mask_s, mask_l = params
    n = len(data) - start
    if n <= min_size:
        return n
    limit = min(n, max_size)
    normal = min(avg_size, limit)
    h = 0
    for i in range(min_size, limit):
        h = ((h << 1) + gear[data[start + i]]) & _MASK64
        if not h & (mask_s if i < normal else mask_l):
            return i + 1
    return limit


def cdc_cuts(
    data: Buffer,
    min_size: int,
    avg_size: int,
    max_size: int,
    mask_s: int,
    mask_l: int,
    gear: bytes,
    final: bool,
) -> list[int]:
    table = [int.from_bytes(gear[i * 8 : i * 8 + 8], "little") for i in range(256)]
    params = (min_size, avg_size, max_size, mask_s, mask_l)
    cuts: list[int] = []
    pos = 0
    while pos < len(data):
        cut = _cut(data, pos, params, table)
        if not final and pos + cut == len(data) and cut < max_size:
            break
        cuts.append(cut)
        pos += cut
    return cuts


def join(parts: Sequence[Buffer]) -> bytes:
    """The concatenation of parts (the native twin copies long joins without the GIL)."""
    return b"".join(parts)


def write_flush(writes: Sequence[tuple[int, Buffer, int, bool]]) -> list[int]:
    """Write each (descriptor, bytes, offset, flush) whole, then fdatasync the ones
    marked, one after another (the native twin has the flushes all in flight at
    once); each write's errno (its write's or its flush's), 0 where it succeeded."""
    errors = [_write_whole(fd, data, offset) for fd, data, offset, _ in writes]
    for i, (fd, _, _, flush) in enumerate(writes):
        if flush and not errors[i]:
            try:
                os.fdatasync(fd)
            except OSError as exc:
                errors[i] = exc.errno or errno.EIO
    return errors


def _write_whole(fd: int, data: Buffer, offset: int) -> int:
    view = memoryview(data)
    while view:
        try:
            written = os.pwrite(fd, view, offset)
        except OSError as exc:
            return exc.errno or errno.EIO
        if written == 0:
            return errno.ENOSPC
        view, offset = view[written:], offset + written
    return 0


def uninitialized(size: int) -> bytearray:
    return bytearray(size)


class _Scratch(threading.local):
    """Each thread's page-aligned buffer for direct reads, grown as needed."""

    def __init__(self) -> None:
        self.buffer = mmap.mmap(-1, 64 * 1024)

    def take(self, size: int) -> memoryview:
        if len(self.buffer) < size:
            self.buffer = mmap.mmap(-1, 1 << (size - 1).bit_length())
        return memoryview(self.buffer)[:size]


_scratch = _Scratch()


def _read_direct(fd: int, offset: int, buffers: Sequence[bytearray | memoryview]) -> int:
    """Fill buffers in order from offset of a file opened with O_DIRECT: the
    aligned range around them is read into this thread's scratch buffer and the
    bytes asked for copied out; how many were read (fewer where the file ends)."""
    want = sum(len(b) for b in buffers)
    if not want:
        return 0
    lo = offset - offset % DIRECT_ALIGN
    hi = -(-(offset + want) // DIRECT_ALIGN) * DIRECT_ALIGN
    with _scratch.take(hi - lo) as span:
        got = 0
        while got < len(span):
            n = os.preadv(fd, [span[got:]], lo + got)
            got += n
            if n == 0 or got % DIRECT_ALIGN:
                break
        avail = min(max(got - (offset - lo), 0), want)
        at, end = offset - lo, offset - lo + avail
        for buffer in buffers:
            take = min(len(buffer), end - at)
            buffer[:take] = span[at : at + take]
            at += take
    return avail


def read_direct_many(
    reads: Sequence[tuple[int, int, Sequence[bytearray | memoryview]]],
) -> list[int]:
    """Fill each (descriptor, offset, buffers) in order from offset of a file
    opened with O_DIRECT, one after another (the native twin has them all in
    flight at once); each one's bytes read (fewer where the file ends), or its
    errno negated."""
    results = []
    for fd, offset, buffers in reads:
        try:
            results.append(_read_direct(fd, offset, buffers))
        except OSError as exc:
            results.append(-(exc.errno or errno.EIO))
    return results
