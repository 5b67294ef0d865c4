"""Chunk ids: keyed BLAKE3 of the plaintext, so equal content has an equal id
within a pool and the id says nothing to anyone without the pool's key."""

from __future__ import annotations

import blake3

from dwfs.types import Buffer, ChunkId


def chunk_id(id_key: bytes, data: Buffer) -> ChunkId:
    return ChunkId(blake3.blake3(data, key=id_key).digest())
