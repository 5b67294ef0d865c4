"""One put() shared by the worker threads, which take its chunks themselves.

Handing each chunk to a thread from the trio thread costs a round trip per
chunk: the worker waits for the trio thread to wake, take the GIL and give it
the next chunk, and the trio thread is also the one answering FUSE requests.
Measured on two cores, two threads running the chunk body directly stored 556
MB/s while the per-chunk hand-off reached 250. A PutJob lets each worker take
the next chunk under a lock, and the worker that finds fewer chunks waiting than
LOW_WATER cuts the next window of the content (outside the lock), so cutting
overlaps storing.

The content may come in pieces (a file's writes as they were kept): a window
that spans pieces is copied into one buffer by the worker that cuts it, while
the others store, instead of the whole content being joined first. Joining a
32 MiB flush took the write-behind 5-20 ms during which no worker stored
anything (docs/performance.md).
"""

from __future__ import annotations

import bisect
import collections
import itertools
import threading
from collections.abc import Callable, Sequence

from dwfs import _accel
from dwfs.types import Buffer, ChunkId, StripeAddr

LOW_WATER = 8
"""Chunks left waiting when a worker starts cutting the next window."""

Store = Callable[[Buffer], tuple[ChunkId, StripeAddr]]
Cut = Callable[[Buffer, bool], list[int]]


class Pieces:
    """Content given as pieces laid end to end, read by range: a range inside
    one piece is a view of it, one across pieces a copy."""

    def __init__(self, pieces: Sequence[Buffer]) -> None:
        self._views = [memoryview(p).cast("B") for p in pieces if len(p)]
        self._starts = list(itertools.accumulate((len(v) for v in self._views), initial=0))
        self.size = self._starts[-1]

    def range(self, start: int, end: int) -> memoryview:
        """The bytes [start, end), which lie within the content."""
        if start == end:
            return memoryview(b"")
        k = bisect.bisect_right(self._starts, start) - 1
        first = self._views[k][start - self._starts[k] :]
        if end - start <= len(first):
            return first[: end - start]
        parts: list[Buffer] = [first]
        k, left = k + 1, end - start - len(first)
        while left > 0:
            view = self._views[k][:left]
            parts.append(view)
            k, left = k + 1, left - len(view)
        return memoryview(_accel.join(parts))


class PutJob:
    def __init__(self, data: Pieces, cut: Cut, store: Store, window: int) -> None:
        self._data = data
        self._cut = cut
        self._store = store
        self._window = window
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._ready: collections.deque[tuple[int, memoryview]] = collections.deque()
        self._cut_to = 0
        self._cutting = False
        self._failed = False
        self.stored: dict[int, tuple[int, ChunkId, StripeAddr]] = {}
        """start -> (length, chunk id, address) of every chunk stored."""

    def run(self, budget: int) -> bool:
        """Store up to `budget` chunks (worker-thread body); whether any are left
        for another call."""
        for _ in range(budget):
            item = self._next()
            if item is None:
                return False
            start, chunk = item
            try:
                cid, addr = self._store(chunk)
            except BaseException:
                with self._lock:
                    self._failed = True
                    self._changed.notify_all()
                raise
            with self._lock:
                self.stored[start] = (len(chunk), cid, addr)
        with self._lock:
            return not self._failed and (bool(self._ready) or self._cut_to < self._data.size)

    def _next(self) -> tuple[int, memoryview] | None:
        """The next chunk to store (where it starts, its bytes), cutting a window
        first when few are waiting; None when every chunk is taken or another
        worker failed."""
        while True:
            with self._lock:
                if self._failed:
                    return None
                uncut = self._cut_to < self._data.size
                if self._ready and (len(self._ready) > LOW_WATER or self._cutting or not uncut):
                    return self._ready.popleft()
                if not uncut:
                    return None
                if self._cutting:
                    self._changed.wait()
                    continue
                self._cutting = True
                start = self._cut_to
                end = min(self._data.size, start + self._window)
            try:
                window = self._data.range(start, end)
                lengths = self._cut(window, end == self._data.size)
            except BaseException:
                with self._lock:
                    self._failed = True
                    self._cutting = False
                    self._changed.notify_all()
                raise
            with self._lock:
                at = 0
                for length in lengths:
                    self._ready.append((start + at, window[at : at + length]))
                    at += length
                self._cut_to = start + at
                self._cutting = False
                self._changed.notify_all()
