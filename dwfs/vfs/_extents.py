"""Extent arithmetic: a file's content as (file offset, length, chunk, offset in chunk).

Pure functions on plain tuples; the database holds the rows.
"""

from __future__ import annotations

import bisect
import dataclasses
from typing import NamedTuple

from dwfs.types import ChunkId


class Extent(NamedTuple):
    off: int
    len: int
    chunk: ChunkId
    chunk_off: int

    @property
    def end(self) -> int:
        return self.off + self.len


def clip(extent: Extent, start: int, end: int) -> Extent | None:
    """The part of extent inside [start, end), or None."""
    lo, hi = max(extent.off, start), min(extent.end, end)
    if lo >= hi:
        return None
    return Extent(lo, hi - lo, extent.chunk, extent.chunk_off + (lo - extent.off))


def cut_out(extents: list[Extent], start: int, end: int) -> tuple[list[Extent], list[Extent]]:
    """(extents to remove, pieces to keep) when [start, end) is replaced.

    Every extent overlapping the range is removed; the parts of those extents
    outside the range come back as pieces to keep.
    """
    removed, kept = [], []
    for e in extents:
        if e.end <= start or e.off >= end:
            continue
        removed.append(e)
        for lo, hi in ((e.off, start), (end, e.end)):
            piece = clip(e, lo, hi)
            if piece is not None:
                kept.append(piece)
    return removed, kept


def span(extents: list[Extent], start: int, end: int) -> tuple[int, int]:
    """[start, end) widened to whole extents at both edges, for re-chunking."""
    lo, hi = start, end
    for e in extents:
        if e.end > start and e.off < end:
            lo, hi = min(lo, e.off), max(hi, e.end)
    return lo, hi


@dataclasses.dataclass(frozen=True)
class ExtentWindow:
    """The extents of an open file that overlap [start, end), as one query found
    them: reads inside the window look their extents up here, without SQL."""

    start: int
    end: int
    extents: list[Extent]
    offs: list[int]
    ends: list[int]

    @classmethod
    def of(cls, extents: list[Extent], start: int, end: int) -> ExtentWindow:
        """A window over extents sorted by offset, not overlapping each other."""
        return cls(start, end, extents, [e.off for e in extents], [e.end for e in extents])

    def covers(self, start: int, end: int) -> bool:
        return self.start <= start and end <= self.end

    def overlapping(self, start: int, end: int) -> list[Extent]:
        """The extents that overlap [start, end), which the window covers."""
        first = bisect.bisect_right(self.ends, start)
        return self.extents[first : bisect.bisect_left(self.offs, end)]

    def starting_in(self, start: int, end: int) -> list[Extent]:
        """The extents that start in [start, end), which the window covers."""
        first = bisect.bisect_left(self.offs, start)
        return self.extents[first : bisect.bisect_left(self.offs, end)]


def data_ranges(extents: list[Extent], size: int) -> list[tuple[int, int]]:
    """Where a file's stored bytes lie within its size, as sorted, merged
    [start, end) ranges (every other byte is a hole and reads as zero)."""
    ranges: list[tuple[int, int]] = []
    for e in sorted(extents):
        lo, hi = e.off, min(e.end, size)
        if lo >= hi:
            continue
        if ranges and lo <= ranges[-1][1]:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], hi))
        else:
            ranges.append((lo, hi))
    return ranges


def seek(ranges: list[tuple[int, int]], size: int, off: int, hole: bool) -> int | None:
    """lseek's SEEK_DATA (hole False) or SEEK_HOLE from off, given data_ranges:
    the first byte of data, or of a hole (the end of the file counts as one),
    at or after off; None where there is none (ENXIO), as for any off past the end."""
    if off < 0 or off >= size:
        return None
    if hole:
        pos = off
        for lo, hi in ranges:
            if lo > pos:
                break
            pos = max(pos, hi)
        return min(pos, size)
    for lo, hi in ranges:
        if hi > off:
            return max(lo, off)
    return None
