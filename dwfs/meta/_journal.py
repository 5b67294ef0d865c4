"""Journal records: one sealed record per txg, appended to every device, chained.

On disk a record is `"DWJ2" | u32 length | u64 txg | sealed body`. The body is
the txg's operations, `[[name, [values...]], ...]` in MessagePack (bytes as
they are; records written before it are JSON with bytes as base64, told apart
by their first byte, `[`, which no MessagePack array starts with), then
zstd-compressed, and sealed with a key derived from the metadata key and the
record's context: the pool, the random id of the mount's epoch, the txg and the
tag of the record before it (in this epoch or, for an epoch's first record, the
one the superblock says the epoch started from), which is also the associated
data. So a record authenticates only in its place: it cannot be moved to another
epoch, another txg or after another record, and a chain cannot be spliced. Each
mount writes a new epoch (file) with a new id, so a torn record can only be the
last one of an epoch.

Bytes from a device are hostile until authenticated, and bounded after: a record
is at most MAX_RECORD bytes sealed and MAX_BODY decompressed, and an authentic
record of the wrong shape is an IntegrityError, not a crash.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import struct
import threading
from typing import Any

import msgpack
import zstandard

from dwfs.chunks.crypto import open_record, seal_record
from dwfs.errors import IntegrityError
from dwfs.meta._db import Param, Statement

MAGIC = b"DWJ2"
LEGACY_MAGIC = b"DWJ1"
_HEAD = struct.Struct("<4sIQ")
TAG_SIZE = 16
EPOCH_ID_SIZE = 16
MAX_RECORD = 256 * 1024 * 1024
"""The largest sealed record read back."""
MAX_BODY = 1024 * 1024 * 1024
"""The largest decompressed record body accepted."""
_PARAM_TYPES = (int, str, bytes, float, type(None))


@dataclasses.dataclass(frozen=True)
class Record:
    """One authentic journal record: its txg, operations and tag (the next one's link)."""

    txg: int
    statements: list[Statement]
    tag: bytes


def _context(pool: str, epoch_id: bytes, txg: int, prev: bytes) -> bytes:
    return b"dwfs journal v2|" + pool.encode() + b"|" + epoch_id + struct.pack("<Q", txg) + prev


def _decode_object(obj: dict[str, Any]) -> Any:
    """json's hook for objects in records of the JSON body: {"b": base64} is
    bytes, the only object such a record holds."""
    if obj.keys() != {"b"} or not isinstance(obj["b"], str):
        raise ValueError("a journal record holds an object that is not bytes")
    return base64.b64decode(obj["b"], validate=True)


def encode(
    key: bytes, pool: str, epoch_id: bytes, txg: int, prev: bytes, statements: list[Statement]
) -> bytes:
    """The sealed record of one txg, chained to the record (tag) before it.

    Raises:
        TypeError: a value is not one a journal holds (int, str, bytes, float, None).
    """
    body = msgpack.packb(statements, use_bin_type=True)  # tuples pack as arrays: no copy
    sealed = seal_record(key, _context(pool, epoch_id, txg, prev), _compressor().compress(body))
    return _HEAD.pack(MAGIC, len(sealed), txg) + sealed


_local = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    """This thread's compressor (they are not thread-safe; making one per record
    cost more than compressing a small record)."""
    compressor: zstandard.ZstdCompressor | None = getattr(_local, "zstd", None)
    if compressor is None:
        compressor = _local.zstd = zstandard.ZstdCompressor(level=3)
    return compressor


def tag_of(record: bytes) -> bytes:
    """The tag of an encoded record: what the next record authenticates."""
    return record[-TAG_SIZE:]


def statements_of(body: Any) -> list[Statement]:
    """The operations of an authentic record's body, checked for shape."""
    if not isinstance(body, list):
        raise IntegrityError("a journal record's body is not a list of operations")
    statements: list[Statement] = []
    for item in body:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or not isinstance(item[0], str)
            or not isinstance(item[1], list)
            or not all(isinstance(v, _PARAM_TYPES) for v in item[1])
        ):
            raise IntegrityError("a journal record holds a malformed operation")
        values: tuple[Param, ...] = tuple(item[1])
        statements.append((item[0], values))
    return statements


def _open_body(key: bytes, context: bytes, sealed: bytes) -> Any:
    return parse_body(_decompressed(open_record(key, context, sealed), "record"))


def _decompressed(data: bytes, what: str) -> bytes:
    """A journal body's bytes, at most MAX_BODY: a frame that declares more is
    refused before anything is allocated (the decompressor would allocate what
    the frame declares, whatever bound it is given).

    Raises:
        IntegrityError: it does not decode, or to more than MAX_BODY bytes.
    """
    try:
        if zstandard.frame_content_size(data) > MAX_BODY:
            raise IntegrityError(f"an authentic journal {what} declares more than {MAX_BODY} bytes")
        body: bytes = zstandard.ZstdDecompressor().decompress(data, max_output_size=MAX_BODY)
    except zstandard.ZstdError as exc:
        raise IntegrityError(f"an authentic journal {what} does not decode: {exc}") from None
    return body


def parse_body(body: bytes) -> Any:
    """The operations list of a record's decompressed body (MessagePack, or the
    JSON of earlier records), not yet checked for shape.

    Raises:
        IntegrityError: it is neither.
    """
    try:
        if body[:1] == b"[":
            return json.loads(body, object_hook=_decode_object)
        return msgpack.unpackb(body, raw=False, strict_map_key=True, timestamp=0)
    except (ValueError, TypeError, RecursionError, msgpack.UnpackException) as exc:
        raise IntegrityError(f"an authentic journal record does not decode: {exc}") from None


def decode_chain(key: bytes, pool: str, epoch_id: bytes, prev: bytes, blob: bytes) -> list[Record]:
    """The authentic records at the start of one device's copy of an epoch, in order,
    the first chained to `prev`.

    Stops at the first record that is torn, malformed or fails authentication.
    """
    records: list[Record] = []
    pos = 0
    while pos + _HEAD.size <= len(blob):
        magic, length, txg = _HEAD.unpack_from(blob, pos)
        start, end = pos + _HEAD.size, pos + _HEAD.size + length
        if magic != MAGIC or length > MAX_RECORD or end > len(blob) or length < TAG_SIZE:
            break
        sealed = blob[start:end]
        try:
            body = _open_body(key, _context(pool, epoch_id, txg, prev), sealed)
            statements = statements_of(body)
        except IntegrityError:
            break
        prev = sealed[-TAG_SIZE:]
        records.append(Record(txg, statements, prev))
        pos = end
    return records


def best_chain(
    key: bytes, pool: str, epoch_id: bytes, prev: bytes, copies: list[bytes]
) -> list[Record]:
    """The longest authentic chain among the devices' copies (each is a prefix of it)."""
    chains = [decode_chain(key, pool, epoch_id, prev, copy) for copy in copies]
    return max(chains, key=len, default=[])


def pack_txgs(txgs: list[tuple[int, list[Statement]]]) -> bytes:
    """Consecutive txgs' operations as one compressed body, for the remote's copy
    of the journal (sealed there by the caller)."""
    body = [[txg, statements] for txg, statements in txgs]
    return _compressor().compress(msgpack.packb(body, use_bin_type=True))


def unpack_txgs(data: bytes) -> list[tuple[int, list[Statement]]]:
    """The txgs of an authentic pack_txgs body, checked for shape and bounded.

    Raises:
        IntegrityError: it does not decode or is not of that shape.
    """
    items = parse_body(_decompressed(data, "segment"))
    if not isinstance(items, list):
        raise IntegrityError("a journal segment is not a list of txgs")
    txgs: list[tuple[int, list[Statement]]] = []
    for item in items:
        if not isinstance(item, list) or len(item) != 2 or type(item[0]) is not int:
            raise IntegrityError("a journal segment holds a malformed txg")
        txgs.append((item[0], statements_of(item[1])))
    return txgs


def is_legacy(blob: bytes) -> bool:
    """Whether an epoch holds records of the first journal format (unchained)."""
    return blob[:4] == LEGACY_MAGIC
