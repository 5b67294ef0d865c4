"""A file's written-but-not-yet-stored bytes: sorted, merged intervals.

Writes land here first and are cut into chunks only at flush, so many small
writes to one region cost one re-chunking. Pure logic: no I/O.

Each interval is a run of pieces. A long write whose bytes cannot change is
kept as it came, by reference: copying a 1 MiB write, and regrowing the buffer
it was appended to, cost the request thread about a fifth of a sequential
write's time (docs/performance.md). Short writes are copied into a buffer the
run owns, so a stream of them makes few pieces. Whoever needs the run as one
buffer joins it (a flush, off the request thread).
"""

from __future__ import annotations

import bisect

from dwfs.types import Buffer

KEEP_MIN = 64 * 1024
"""Writes of at least this many bytes are kept by reference when they cannot
change: bytes, or a read-only memoryview (taken as a promise that the memory it
shows does not change, as the native front end's requests promise)."""


def _immutable(data: Buffer) -> bool:
    return isinstance(data, bytes) or (isinstance(data, memoryview) and data.readonly)


class _Run:
    """One interval's bytes, in pieces: bytearrays it owns and may change, and
    kept writes it never changes. Pieces are found by bisection, so a small
    write into a long run of kept 64 KiB writes costs no scan of them."""

    __slots__ = ("pieces", "size", "starts")

    def __init__(self) -> None:
        self.pieces: list[Buffer] = []
        self.starts: list[int] = []
        """Where each piece begins in the run."""
        self.size = 0

    def add(self, piece: Buffer) -> None:
        """Append a piece as it is."""
        self.pieces.append(piece)
        self.starts.append(self.size)
        self.size += len(piece)

    def extend(self, data: Buffer, keep_min: int) -> None:
        if len(data) >= keep_min and _immutable(data):
            self.add(data)
        elif self.pieces and isinstance(self.pieces[-1], bytearray):
            self.pieces[-1] += data
            self.size += len(data)
        else:
            self.add(bytearray(data))

    def _first(self, at: int) -> int:
        """The index of the piece that holds byte `at`."""
        return max(bisect.bisect_right(self.starts, at) - 1, 0)

    def overwrite(self, at: int, data: Buffer) -> None:
        """Replace the bytes at [at, at + len(data)), which lie inside the run;
        a kept piece it touches becomes a copy the run owns."""
        src, end = memoryview(data), at + len(data)
        for k in range(self._first(at), len(self.pieces)):
            piece, pos = self.pieces[k], self.starts[k]
            if pos >= end:
                return
            lo, hi = max(at, pos), min(end, pos + len(piece))
            if not isinstance(piece, bytearray):
                piece = self.pieces[k] = bytearray(piece)
            memoryview(piece)[lo - pos : hi - pos] = src[lo - at : hi - at]

    def copy_to(self, lo: int, hi: int, dst: bytearray, at: int) -> None:
        """Copy the run's bytes [lo, hi) into dst at `at`."""
        into, pos = memoryview(dst), 0
        for piece in self.section(lo, hi):
            into[at + pos : at + pos + len(piece)] = piece
            pos += len(piece)

    def section(self, lo: int, hi: int) -> list[Buffer]:
        """Pieces that show the run's bytes [lo, hi), without copying them: whole
        pieces, and read-only views of the pieces cut at either end."""
        out: list[Buffer] = []
        for k in range(self._first(lo), len(self.pieces)):
            piece, pos = self.pieces[k], self.starts[k]
            if pos >= hi:
                break
            a, b = max(lo, pos), min(hi, pos + len(piece))
            if a < b:
                whole = a == pos and b == pos + len(piece)
                out.append(piece if whole else memoryview(piece)[a - pos : b - pos].toreadonly())
        return out

    def joined(self) -> bytes:
        return b"".join(self.pieces)

    def cut(self, size: int) -> None:
        """Keep only the first size bytes."""
        whole = bytearray().join(self.pieces)
        del whole[size:]
        self.pieces, self.starts, self.size = [whole], [0], size


def _new_run(data: Buffer, keep_min: int) -> _Run:
    run = _Run()
    run.extend(data, keep_min)
    return run


class DirtyMap:
    def __init__(self, keep_min: int = KEEP_MIN) -> None:
        self._starts: list[int] = []
        self._runs: list[_Run] = []
        self._nbytes = 0
        self._keep_min = keep_min

    def __bool__(self) -> bool:
        return bool(self._starts)

    @property
    def nbytes(self) -> int:
        return self._nbytes

    def intervals(self) -> list[tuple[int, bytes]]:
        return [(s, r.joined()) for s, r in zip(self._starts, self._runs, strict=True)]

    def spans(self) -> list[tuple[int, int]]:
        """(start, end) of each interval, without copying its bytes."""
        return [(s, s + r.size) for s, r in zip(self._starts, self._runs, strict=True)]

    def end(self) -> int:
        """The end of the last interval (0 when empty)."""
        return self._starts[-1] + self._runs[-1].size if self._starts else 0

    def write(self, offset: int, data: Buffer) -> None:
        """Record data at offset, merging with every interval it touches or abuts.
        Data that cannot change may be kept by reference (see KEEP_MIN)."""
        if not data:
            return
        end = offset + len(data)
        i = bisect.bisect_left(self._starts, offset)
        if i and self._starts[i - 1] + self._runs[i - 1].size >= offset:
            i -= 1
        j = i
        while j < len(self._starts) and self._starts[j] <= end:
            j += 1
        if i == j:
            self._starts.insert(i, offset)
            self._runs.insert(i, _new_run(data, self._keep_min))
            self._nbytes += len(data)
        elif j == i + 1 and offset >= self._starts[i]:
            self._write_in(self._runs[i], offset - self._starts[i], data)
        else:
            self._merge(i, j, offset, data)

    def _write_in(self, run: _Run, at: int, data: Buffer) -> None:
        """A write that starts inside (or at the end of) one run and reaches no
        other: overwrite what it covers, append the rest (appending, the common
        case, copies nothing already there)."""
        inside = min(len(data), run.size - at)
        if inside:
            run.overwrite(at, memoryview(data)[:inside])
        if inside < len(data):
            run.extend(data if not inside else memoryview(data)[inside:], self._keep_min)
            self._nbytes += len(data) - inside

    def _merge(self, i: int, j: int, offset: int, data: Buffer) -> None:
        """Replace runs i..j-1, which the write at offset touches, by one: what
        run i holds before the write, the write, and what run j-1 holds after
        it, as pieces (the kernel's writeback sends a file's pages in any order,
        and rebuilding a run as one buffer copied all of it)."""
        first, last = self._runs[i], self._runs[j - 1]
        merged = _Run()
        for piece in first.section(0, max(0, offset - self._starts[i])):
            merged.add(piece)
        merged.extend(data, self._keep_min)
        tail = offset + len(data) - self._starts[j - 1]
        for piece in last.section(tail, last.size) if tail < last.size else []:
            merged.add(piece)
        self._nbytes += merged.size - sum(r.size for r in self._runs[i:j])
        self._starts[i:j] = [min(offset, self._starts[i])]
        self._runs[i:j] = [merged]

    def exactly(self, start: int, end: int) -> list[Buffer] | None:
        """The pieces of the interval that covers exactly [start, end), if there
        is one (so a caller can use them as they are instead of copying them out).
        Kept writes among them must not be changed."""
        i = bisect.bisect_left(self._starts, start)
        if i < len(self._starts) and self._starts[i] == start and self._runs[i].size == end - start:
            return list(self._runs[i].pieces)
        return None

    def overlay(self, offset: int, base: bytearray) -> None:
        """Copy the dirty bytes that fall in [offset, offset + len(base)) into base."""
        end = offset + len(base)
        for k in range(max(bisect.bisect_right(self._starts, offset) - 1, 0), len(self._starts)):
            s, run = self._starts[k], self._runs[k]
            if s >= end:
                break
            lo, hi = max(s, offset), min(s + run.size, end)
            if lo < hi:
                run.copy_to(lo - s, hi - s, base, lo - offset)

    def truncate(self, size: int) -> None:
        """Drop everything at or beyond size."""
        while self._starts and self._starts[-1] >= size:
            self._starts.pop()
            self._runs.pop()
        if self._starts and self._starts[-1] + self._runs[-1].size > size:
            self._runs[-1].cut(size - self._starts[-1])
        self._nbytes = sum(r.size for r in self._runs)

    def merged_under(self, older: DirtyMap) -> DirtyMap:
        """A new map of older's bytes with this map's on top (used to put back data
        whose storing failed, under anything written since)."""
        result = DirtyMap(self._keep_min)
        for source in (older, self):
            for start, data in source.intervals():
                result.write(start, data)
        return result
