"""The shard header: a stripe's identity and checksums, authenticated by a keyed MAC.

Every shard on disk is a 128-byte header followed by its payload. The header
names the stripe (seq, segment, offset), the shard's place in it, the chunk id,
and a MAC of the payload; a second MAC covers the header itself, so a scan can
trust a header without reading the payload, and the raid layer knows which shard
is bad without decrypting anything. Pure functions only.
"""

from __future__ import annotations

import dataclasses
import hmac
import struct

import blake3

from dwfs.types import CHUNK_ID_SIZE, Buffer, ChunkId, StripeAddr

MAGIC = b"DWSH"
VERSION = 1
HEADER_SIZE = 128
MAC_SIZE = 16
_FIELDS = struct.Struct("<4sBBBBQIIQII32s16s24x")
assert _FIELDS.size == HEADER_SIZE - MAC_SIZE


@dataclasses.dataclass(frozen=True, slots=True)
class ShardHeader:
    width: int
    k: int
    index: int
    addr: StripeAddr
    chunk_id: ChunkId
    payload_mac: bytes


def mac(key: bytes, *parts: Buffer) -> bytes:
    hasher = blake3.blake3(key=key)
    for part in parts:
        hasher.update(part)
    return hasher.digest(MAC_SIZE)


def pack_header(
    key: bytes, width: int, k: int, index: int, addr: StripeAddr, chunk_id: ChunkId, payload: Buffer
) -> bytes:
    fields = _FIELDS.pack(
        MAGIC,
        VERSION,
        width,
        k,
        index,
        addr.seq,
        addr.segment,
        0,
        addr.offset,
        addr.shard_len,
        addr.sealed_len,
        chunk_id,
        mac(key, payload),
    )
    return fields + mac(key, fields)


def parse_header(key: bytes, raw: bytes) -> ShardHeader | None:
    """The header in `raw` if it is authentic, else None (holes, rot, foreign data)."""
    if len(raw) < HEADER_SIZE or raw[:4] != MAGIC:
        return None
    fields = raw[: HEADER_SIZE - MAC_SIZE]
    if not hmac.compare_digest(mac(key, fields), raw[HEADER_SIZE - MAC_SIZE : HEADER_SIZE]):
        return None
    (
        _,
        version,
        width,
        k,
        index,
        seq,
        segment,
        _,
        offset,
        shard_len,
        sealed_len,
        chunk_id,
        pmac,
    ) = _FIELDS.unpack(fields)
    if version != VERSION or len(chunk_id) != CHUNK_ID_SIZE:
        return None
    addr = StripeAddr(seq, segment, offset, shard_len, sealed_len)
    return ShardHeader(width, k, index, addr, ChunkId(chunk_id), pmac)


def payload_ok(key: bytes, header: ShardHeader, payload: bytes) -> bool:
    return len(payload) == header.addr.shard_len and hmac.compare_digest(
        mac(key, payload), header.payload_mac
    )


_MARK = struct.Struct("<QQQ")


def pack_sync_mark(key: bytes, segment: int, offset: int, seq: int) -> bytes:
    """A device's sync mark: where the append point was at the last sync, MACed."""
    body = _MARK.pack(segment, offset, seq)
    return body + mac(key, body)


def parse_sync_mark(key: bytes, raw: bytes) -> tuple[int, int, int] | None:
    """(segment, offset, seq) of an authentic sync mark, else None."""
    body, tag = raw[: _MARK.size], raw[_MARK.size : _MARK.size + MAC_SIZE]
    if len(body) != _MARK.size or not hmac.compare_digest(mac(key, body), tag):
        return None
    segment, offset, seq = _MARK.unpack(body)
    return segment, offset, seq
