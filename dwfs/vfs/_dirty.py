"""A file's written-but-not-yet-stored bytes: sorted, merged intervals.

Writes land here first and are cut into chunks only at flush, so many small
writes to one region cost one re-chunking. Pure logic: no I/O.
"""

from __future__ import annotations

import bisect


class DirtyMap:
    def __init__(self) -> None:
        self._starts: list[int] = []
        self._data: list[bytearray] = []
        self._nbytes = 0

    def __bool__(self) -> bool:
        return bool(self._starts)

    @property
    def nbytes(self) -> int:
        return self._nbytes

    def intervals(self) -> list[tuple[int, bytes]]:
        return [(s, bytes(d)) for s, d in zip(self._starts, self._data, strict=True)]

    def spans(self) -> list[tuple[int, int]]:
        """(start, end) of each interval, without copying its bytes."""
        return [(s, s + len(d)) for s, d in zip(self._starts, self._data, strict=True)]

    def end(self) -> int:
        """The end of the last interval (0 when empty)."""
        return self._starts[-1] + len(self._data[-1]) if self._starts else 0

    def write(self, offset: int, data: bytes) -> None:
        """Record data at offset, merging with every interval it touches or abuts."""
        if not data:
            return
        end = offset + len(data)
        if self._starts and offset == self.end():
            self._data[-1] += data  # appending, the common case: no copy of what is there
            self._nbytes += len(data)
            return
        i = bisect.bisect_left(self._starts, offset)
        if i and self._starts[i - 1] + len(self._data[i - 1]) >= offset:
            i -= 1
        j = i
        while j < len(self._starts) and self._starts[j] <= end:
            j += 1
        if i == j:
            self._starts.insert(i, offset)
            self._data.insert(i, bytearray(data))
            self._nbytes += len(data)
            return
        start = min(offset, self._starts[i])
        last_end = max(end, self._starts[j - 1] + len(self._data[j - 1]))
        merged = bytearray(last_end - start)
        for s, d in zip(self._starts[i:j], self._data[i:j], strict=True):
            merged[s - start : s - start + len(d)] = d
        merged[offset - start : end - start] = data
        self._nbytes += len(merged) - sum(len(d) for d in self._data[i:j])
        self._starts[i:j] = [start]
        self._data[i:j] = [merged]

    def exactly(self, start: int, end: int) -> bytearray | None:
        """The interval that covers exactly [start, end), if there is one (so a
        caller can use it as it is instead of copying it out)."""
        i = bisect.bisect_left(self._starts, start)
        if i < len(self._starts) and self._starts[i] == start and len(self._data[i]) == end - start:
            return self._data[i]
        return None

    def overlay(self, offset: int, base: bytearray) -> None:
        """Copy the dirty bytes that fall in [offset, offset + len(base)) into base."""
        end = offset + len(base)
        for k in range(max(bisect.bisect_right(self._starts, offset) - 1, 0), len(self._starts)):
            s, d = self._starts[k], self._data[k]
            if s >= end:
                break
            lo, hi = max(s, offset), min(s + len(d), end)
            if lo < hi:
                base[lo - offset : hi - offset] = d[lo - s : hi - s]

    def truncate(self, size: int) -> None:
        """Drop everything at or beyond size."""
        while self._starts and self._starts[-1] >= size:
            self._starts.pop()
            self._data.pop()
        if self._starts and self._starts[-1] + len(self._data[-1]) > size:
            del self._data[-1][size - self._starts[-1] :]
        self._nbytes = sum(len(d) for d in self._data)

    def merged_under(self, older: DirtyMap) -> DirtyMap:
        """A new map of older's bytes with this map's on top (used to put back data
        whose storing failed, under anything written since)."""
        result = DirtyMap()
        for source in (older, self):
            for start, data in source.intervals():
                result.write(start, data)
        return result
