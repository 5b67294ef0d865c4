"""Journal records: one sealed record per txg, appended to every device.

On disk a record is `"DWJ1" | u32 length | u64 txg | sealed body`. The body is
the txg's statements (JSON, bytes as base64, zstd-compressed), sealed with a key
derived from the metadata key and the record's (pool, epoch, txg), which are
also its associated data: a record cannot be replayed in another place. Each
mount writes a new epoch (file), so a torn record can only ever be the last
one of an epoch, and nothing is appended after it.
"""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import zstandard

from dwfs.chunks.crypto import open_record, seal_record
from dwfs.errors import IntegrityError
from dwfs.meta._db import Statement

MAGIC = b"DWJ1"
_HEAD = struct.Struct("<4sIQ")


def _context(pool: str, epoch: int, txg: int) -> bytes:
    return f"journal|{pool}|{epoch}|{txg}".encode()


def _encode_bytes(value: object) -> Any:
    """json's hook for what it cannot encode itself: bytes, as {"b": base64}."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {"b": base64.b64encode(value).decode()}
    raise TypeError(f"a journal parameter cannot be {type(value).__name__}")


def _decode_object(obj: dict[str, Any]) -> Any:
    """json's hook for objects: {"b": base64} is bytes (and the only object a
    statement's parameters hold; the record's top level is the other)."""
    return base64.b64decode(obj["b"]) if obj.keys() == {"b"} else obj


def encode(key: bytes, pool: str, epoch: int, txg: int, statements: list[Statement]) -> bytes:
    sqls: dict[str, int] = {}
    ops = [(sqls.setdefault(sql, len(sqls)), params) for sql, params in statements]
    body = json.dumps(
        {"sql": list(sqls), "ops": ops}, separators=(",", ":"), default=_encode_bytes
    ).encode()
    sealed = seal_record(key, _context(pool, epoch, txg), zstandard.compress(body, 3))
    return _HEAD.pack(MAGIC, len(sealed), txg) + sealed


def decode_chain(
    key: bytes, pool: str, epoch: int, blob: bytes
) -> list[tuple[int, list[Statement]]]:
    """The authentic records at the start of one device's copy of an epoch, in order.

    Stops at the first record that is torn, malformed or fails authentication.
    """
    records: list[tuple[int, list[Statement]]] = []
    pos = 0
    while pos + _HEAD.size <= len(blob):
        magic, length, txg = _HEAD.unpack_from(blob, pos)
        start, end = pos + _HEAD.size, pos + _HEAD.size + length
        if magic != MAGIC or end > len(blob):
            break
        try:
            body = json.loads(
                zstandard.decompress(open_record(key, _context(pool, epoch, txg), blob[start:end])),
                object_hook=_decode_object,
            )
        except (IntegrityError, ValueError, zstandard.ZstdError):
            break
        sqls = body["sql"]
        records.append((txg, [(sqls[i], tuple(params)) for i, params in body["ops"]]))
        pos = end
    return records


def best_chain(
    key: bytes, pool: str, epoch: int, copies: list[bytes]
) -> list[tuple[int, list[Statement]]]:
    """The longest authentic chain among the devices' copies (each is a prefix of it)."""
    chains = [decode_chain(key, pool, epoch, copy) for copy in copies]
    return max(chains, key=len, default=[])
