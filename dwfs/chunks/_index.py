"""The dedup index: chunk id -> the stripe that holds it.

Held in memory: seeded from the devices' shard headers when a pool opens
(DeviceArray.recover) and, at mount, from the metadata's committed chunk rows,
which take precedence: where the pool holds two copies of a chunk (a crash
between compaction's commit and the removal of the segment it emptied), the
metadata names the one that stays. Compaction moves chunks; garbage collection
drops the chunks of deleted segments. Safe to use from several worker threads.
"""

from __future__ import annotations

import threading

from dwfs.types import ChunkId, StripeAddr


class ChunkIndex:
    def __init__(self) -> None:
        self._map: dict[ChunkId, StripeAddr] = {}
        self._lock = threading.Lock()

    def get(self, chunk_id: ChunkId) -> StripeAddr | None:
        with self._lock:
            return self._map.get(chunk_id)

    def add(self, chunk_id: ChunkId, addr: StripeAddr) -> StripeAddr:
        """Record addr for chunk_id unless it is already stored; the address kept."""
        with self._lock:
            return self._map.setdefault(chunk_id, addr)

    def assign(self, chunk_id: ChunkId, addr: StripeAddr) -> None:
        """Record addr for chunk_id, in place of any copy recorded before."""
        with self._lock:
            self._map[chunk_id] = addr

    def discard(self, chunk_ids: list[ChunkId], segments: set[int]) -> None:
        """Forget these chunks where they are stored in these segments."""
        with self._lock:
            for cid in chunk_ids:
                addr = self._map.get(cid)
                if addr is not None and addr.segment in segments:
                    del self._map[cid]

    def forget(self, chunk_ids: list[ChunkId]) -> None:
        """Forget where these chunks are stored (their local copies are evicted)."""
        with self._lock:
            for cid in chunk_ids:
                self._map.pop(cid, None)

    def discard_segments(self, segments: set[int]) -> int:
        """Forget every chunk stored in these segments; how many there were."""
        with self._lock:
            gone = [cid for cid, addr in self._map.items() if addr.segment in segments]
            for cid in gone:
                del self._map[cid]
            return len(gone)

    def __len__(self) -> int:
        return len(self._map)

    def __contains__(self, chunk_id: object) -> bool:
        return chunk_id in self._map
