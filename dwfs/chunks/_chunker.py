"""Content-defined chunking (FastCDC, normalized) with a per-pool gear table.

The gear table is derived from the pool's key, so chunk boundaries, and the
sizes an observer of the devices sees, depend on content only through a
secret, as borg's seeded chunker and restic's random polynomial do.
"""

from __future__ import annotations

import dataclasses

import blake3

from dwfs import _accel
from dwfs.errors import UsageError
from dwfs.types import Buffer

KIB = 1024


@dataclasses.dataclass(frozen=True, slots=True)
class ChunkerParams:
    """Chunk size bounds; avg must be a power of two between min and max."""

    min_size: int = 64 * KIB
    avg_size: int = 256 * KIB
    max_size: int = 1024 * KIB

    def __post_init__(self) -> None:
        avg = self.avg_size
        if not (0 < self.min_size <= avg <= self.max_size) or avg & (avg - 1):
            raise UsageError("chunk sizes must satisfy 0 < min <= avg <= max, avg a power of two")

    def to_json(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def _mask(bits: int) -> int:
    """`bits` one-bits at the top of 64: the gear hash's top bits see the last 64 bytes."""
    return ((1 << bits) - 1) << (64 - bits)


class Chunker:
    """Cuts buffers into chunks; the same bytes always cut the same way in one pool."""

    def __init__(self, params: ChunkerParams, key: bytes) -> None:
        self.params = params
        self._gear = blake3.blake3(key=key).digest(256 * 8)
        bits = params.avg_size.bit_length() - 1
        self._mask_small = _mask(bits + 2)
        self._mask_large = _mask(max(bits - 2, 1))

    def cut(self, data: Buffer, final: bool = True) -> list[int]:
        """Lengths of the chunks that tile data from its start.

        When not final, a trailing piece whose end is not a real boundary is left
        out: its cut may move once more data arrives.
        """
        p = self.params
        return _accel.cdc_cuts(
            data,
            p.min_size,
            p.avg_size,
            p.max_size,
            self._mask_small,
            self._mask_large,
            self._gear,
            final,
        )
