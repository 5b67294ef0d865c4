"""Superblocks: each device's authenticated description of the pool, kept in a ring.

A device's `superblock` file holds RING slots. Each write goes to the slot after
the newest one, so a torn write leaves the previous generation readable, as ZFS
does with uberblocks. A slot is a small binary header, a JSON body and a keyed
BLAKE3 MAC over both. The body is the only plaintext dwfs puts on a device
(format, uuids, layout, paths, KDF parameters and wrapped keys); it is read
before the key is known (to find the keyslots) and trusted only after its MAC
verifies with a key derived from the master key.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import struct
from typing import Any

import blake3

from dwfs.errors import FormatError

FORMAT = 1
MAGIC = b"DWSB"
RING = 4
SLOT_SIZE = 32 * 1024
MAC_SIZE = 32
_HEAD = struct.Struct("<4sHHI")


@dataclasses.dataclass(frozen=True, slots=True)
class Member:
    """One device of a pool, as every superblock lists it."""

    uuid: str
    path: str


@dataclasses.dataclass(frozen=True, slots=True)
class Superblock:
    """What one device knows about its pool at one generation.

    config is opaque to the devices layer: the chunks layer keeps the cipher,
    chunker parameters and keyslots there.
    """

    pool: str
    device: str
    generation: int
    layout: dict[str, Any]
    members: tuple[Member, ...]
    segment_size: int
    errors: dict[str, int]
    config: dict[str, Any]
    resilver: bool = False
    """This device missed writes while it was away and is being rebuilt."""
    lineage: tuple[str, ...] = ()
    """The ids of the newest metadata journal epochs (mounts) of the history this
    device carries, oldest first: two devices whose newest ids are not on one
    line were mounted apart and carry two histories."""

    def to_json(self) -> dict[str, Any]:
        body = dataclasses.asdict(self)
        body["members"] = [dataclasses.asdict(m) for m in self.members]
        body["lineage"] = list(self.lineage)
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Superblock:
        """Raises ValueError, KeyError or TypeError on anything not of our shape."""
        return cls(
            pool=_text(body["pool"]),
            device=_text(body["device"]),
            generation=_count(body["generation"]),
            layout=_object(body["layout"]),
            members=tuple(Member(_text(m["uuid"]), _text(m["path"])) for m in body["members"]),
            segment_size=_count(body["segment_size"]),
            errors={_text(k): _count(v) for k, v in _object(body["errors"]).items()},
            config=_object(body["config"]),
            resilver=body.get("resilver", False) is True,
            lineage=tuple(_text(x) for x in body.get("lineage", [])),
        )

    def index(self) -> int:
        """This device's position in the member list."""
        return [m.uuid for m in self.members].index(self.device)


@dataclasses.dataclass(frozen=True, slots=True)
class Slot:
    """A slot read from disk whose MAC has not been checked yet."""

    superblock: Superblock
    signed: bytes
    tag: bytes

    def verify(self, key: bytes) -> bool:
        return hmac.compare_digest(_mac(key, self.signed), self.tag)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("expected text")
    return value


def _count(value: Any) -> int:
    """A non-negative integer that fits 63 bits (no floats, no booleans)."""
    if type(value) is not int or not 0 <= value < 1 << 63:
        raise ValueError("expected a count")
    return value


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError("expected an object")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON dwfs writes")


def _mac(key: bytes, data: bytes) -> bytes:
    return blake3.blake3(data, key=key).digest(MAC_SIZE)


def encode(sb: Superblock, key: bytes) -> bytes:
    body = json.dumps(sb.to_json(), sort_keys=True, separators=(",", ":")).encode()
    signed = _HEAD.pack(MAGIC, FORMAT, 0, len(body)) + body
    if len(signed) + MAC_SIZE > SLOT_SIZE:
        raise ValueError("superblock does not fit its slot")
    return (signed + _mac(key, signed)).ljust(SLOT_SIZE, b"\0")


def decode(raw: bytes) -> Slot | None:
    """The slot in `raw`, unverified; None where there is no well-formed slot.

    Raises:
        FormatError: a well-formed slot of a format this dwfs does not read.
    """
    if len(raw) < _HEAD.size or raw[:4] != MAGIC:
        return None
    _, fmt, _, length = _HEAD.unpack_from(raw)
    if fmt != FORMAT:
        raise FormatError(
            f"superblock format {fmt} is not the format {FORMAT} this dwfs reads: "
            "use the dwfs version that made the pool"
        )
    end = _HEAD.size + length
    if end + MAC_SIZE > len(raw):
        return None
    try:
        body = json.loads(raw[_HEAD.size : end], parse_constant=_no_constant)
        sb = Superblock.from_json(_object(body))
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None
    return Slot(sb, raw[:end], raw[end : end + MAC_SIZE])


def decode_ring(raw: bytes) -> list[Slot]:
    """Every well-formed slot in a superblock file, newest generation first."""
    slots = [decode(raw[i * SLOT_SIZE : (i + 1) * SLOT_SIZE]) for i in range(RING)]
    found = [s for s in slots if s is not None]
    return sorted(found, key=lambda s: s.superblock.generation, reverse=True)
