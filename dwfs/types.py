"""Value types shared by every layer; they depend on nothing else in dwfs."""

from __future__ import annotations

import dataclasses
from typing import NewType, TypeAlias

ChunkId = NewType("ChunkId", bytes)
"""Keyed BLAKE3 of a chunk's plaintext: 32 bytes that identify it within one pool."""

CHUNK_ID_SIZE = 32

Buffer: TypeAlias = bytes | bytearray | memoryview
"""Anything the block store and the native kernels accept as bytes without copying."""


@dataclasses.dataclass(frozen=True, slots=True)
class StripeAddr:
    """Where one stripe lives: the same (segment, offset) on every device it uses.

    seq numbers stripes in write order; it picks which devices hold which shard.
    shard_len is the payload length of each shard, sealed_len the length of the
    sealed chunk the data shards carry (the tail of the last one is padding).
    """

    seq: int
    segment: int
    offset: int
    shard_len: int
    sealed_len: int
