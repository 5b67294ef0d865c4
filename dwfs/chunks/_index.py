"""The dedup index: chunk id -> the stripe that holds it.

Rebuilt from the devices' shard headers when a pool opens (DeviceArray.recover);
the metadata layer takes over its persistence once it exists. Safe to use from
several worker threads.
"""

from __future__ import annotations

import threading

from dwfs.types import ChunkId, StripeAddr


class ChunkIndex:
    def __init__(self) -> None:
        self._map: dict[ChunkId, StripeAddr] = {}
        self._lock = threading.Lock()
        self.stored_bytes = 0

    def get(self, chunk_id: ChunkId) -> StripeAddr | None:
        with self._lock:
            return self._map.get(chunk_id)

    def add(self, chunk_id: ChunkId, addr: StripeAddr) -> StripeAddr:
        """Record addr for chunk_id unless it is already stored; the address kept."""
        with self._lock:
            kept = self._map.setdefault(chunk_id, addr)
            if kept is addr:
                self.stored_bytes += addr.sealed_len
            return kept

    def discard_segments(self, segments: set[int]) -> int:
        """Forget every chunk stored in these segments; how many there were."""
        with self._lock:
            gone = [cid for cid, addr in self._map.items() if addr.segment in segments]
            for cid in gone:
                self.stored_bytes -= self._map.pop(cid).sealed_len
            return len(gone)

    def __len__(self) -> int:
        return len(self._map)

    def __contains__(self, chunk_id: object) -> bool:
        return chunk_id in self._map
