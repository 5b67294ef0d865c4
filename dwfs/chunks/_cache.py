"""A bounded LRU cache of plaintext chunks, counted in bytes."""

from __future__ import annotations

import collections
import threading

from dwfs.types import ChunkId, Plain


class ChunkCache:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._items: collections.OrderedDict[ChunkId, Plain] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: ChunkId, count: bool = True) -> Plain | None:
        """The chunk's plaintext, if cached; `count` says whether this lookup is a
        read to count as a hit or a miss (one read, one count)."""
        with self._lock:
            data = self._items.get(key)
            if data is None:
                self.misses += count
                return None
            self._items.move_to_end(key)
            self.hits += count
            return data

    def contains(self, key: ChunkId) -> bool:
        with self._lock:
            return key in self._items

    def put(self, key: ChunkId, data: Plain) -> None:
        if len(data) > self.capacity:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.size -= len(old)
            self._items[key] = data
            self.size += len(data)
            while self.size > self.capacity:
                _, evicted = self._items.popitem(last=False)
                self.size -= len(evicted)
