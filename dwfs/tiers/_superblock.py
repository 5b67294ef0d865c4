"""The remote's superblock: the pool's public facts and where its newest
complete copy starts, with a generation that only grows.

One object, `superblock`, replaced whole at every sync (a PUT or a rename is
atomic). Like a device's superblock it is a small binary header, a JSON body
and a keyed BLAKE3 MAC over both; the body is read before the key is known (to
find the keyslots) and trusted only after the MAC verifies. A remote rolled
back to an older state shows an older generation, which this machine's record
of the newest one it wrote or read refuses.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import struct
from typing import Any

import blake3

from dwfs.errors import FormatError, RemoteError

OBJECT = "superblock"
FORMAT = 1
MAGIC = b"DWRS"
MAC_SIZE = 32
MAX_SIZE = 1 << 20
_HEAD = struct.Struct("<4sHHI")


@dataclasses.dataclass(frozen=True)
class RemoteSuperblock:
    """What the remote holds of one pool at one generation. config is opaque
    here: the chunks layer keeps the cipher, chunker, keyslots and the newest
    remote checkpoint in it."""

    pool: str
    generation: int
    config: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Unverified:
    """A remote superblock as read, its MAC not yet checked."""

    superblock: RemoteSuperblock
    signed: bytes
    tag: bytes

    def verify(self, key: bytes) -> bool:
        return hmac.compare_digest(_mac(key, self.signed), self.tag)


def _mac(key: bytes, data: bytes) -> bytes:
    return blake3.blake3(data, key=key).digest(MAC_SIZE)


def encode(sb: RemoteSuperblock, key: bytes) -> bytes:
    body = json.dumps(
        {"pool": sb.pool, "generation": sb.generation, "config": sb.config},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    signed = _HEAD.pack(MAGIC, FORMAT, 0, len(body)) + body
    if len(signed) + MAC_SIZE > MAX_SIZE:
        raise ValueError("remote superblock too large")
    return signed + _mac(key, signed)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON dwfs writes")


def decode(raw: bytes, url: str) -> Unverified:
    """The superblock in raw, unverified.

    Raises:
        RemoteError: raw is not a remote superblock dwfs wrote.
        FormatError: it is one of a format this dwfs does not read.
    """
    bad = RemoteError(f"{url} holds no dwfs pool (its superblock is missing or malformed)")
    if len(raw) < _HEAD.size + MAC_SIZE or len(raw) > MAX_SIZE or raw[:4] != MAGIC:
        raise bad
    _, fmt, _, length = _HEAD.unpack_from(raw)
    if fmt != FORMAT:
        raise FormatError(
            f"{url} holds a pool of remote format {fmt}, not the format {FORMAT} this "
            "dwfs reads: use the dwfs version that made it"
        )
    end = _HEAD.size + length
    if end + MAC_SIZE != len(raw):
        raise bad
    try:
        body = json.loads(raw[_HEAD.size : end], parse_constant=_no_constant)
        pool, generation, config = body["pool"], body["generation"], body["config"]
        if not isinstance(pool, str) or not isinstance(config, dict):
            raise TypeError("not our shape")
        if type(generation) is not int or not 0 < generation < 1 << 63:
            raise ValueError("not a generation")
    except (ValueError, KeyError, TypeError, RecursionError):
        raise bad from None
    return Unverified(RemoteSuperblock(pool, generation, config), raw[:end], raw[end:])
