"""The chunk table: where each chunk is stored and how many rows reference it.

A chunk is live while its reference count is above zero. Compaction moves live
chunks out of mostly dead segments and garbage collection drops the rows of
dead ones with their segments; both ask here, and never write SQL.
"""

from __future__ import annotations

from dwfs.meta._db import MetaDB
from dwfs.types import ChunkId, StripeAddr

_ADDR = "seq, segment, offset, shard_len, sealed_len"


def _addr(row: tuple[int, ...]) -> StripeAddr:
    return StripeAddr(*map(int, row))


class ChunkRows:
    def __init__(self, db: MetaDB) -> None:
        self.db = db

    def live(self) -> list[tuple[ChunkId, StripeAddr]]:
        """Every live chunk and where it is stored."""
        rows = self.db.query(f"SELECT id, {_ADDR} FROM chunks WHERE refs > 0")
        return [(ChunkId(bytes(r[0])), _addr(r[1:])) for r in rows]

    def live_in(self, segments: list[int]) -> list[tuple[ChunkId, StripeAddr]]:
        """The live chunks stored in these segments."""
        marks = ",".join("?" * len(segments))
        rows = self.db.query(
            f"SELECT id, {_ADDR} FROM chunks WHERE refs > 0 AND segment IN ({marks})", segments
        )
        return [(ChunkId(bytes(r[0])), _addr(r[1:])) for r in rows]

    def live_bytes(self, header: int) -> list[tuple[int, int]]:
        """(segment, bytes its live stripes take per device, `header` each) of every
        segment holding a live chunk."""
        rows = self.db.query(
            "SELECT segment, sum(shard_len) + count(*) * ? FROM chunks WHERE refs > 0 "
            "GROUP BY segment",
            (header,),
        )
        return [(int(s), int(n)) for s, n in rows]

    def live_segments(self) -> set[int]:
        return {
            int(r[0]) for r in self.db.query("SELECT DISTINCT segment FROM chunks WHERE refs > 0")
        }

    def dead_count(self) -> int:
        """How many chunk rows no row references (a covering-index count)."""
        row = self.db.one("SELECT count(*) FROM chunks WHERE refs <= 0")
        return int(row[0]) if row else 0

    def live_at(self, chunk: ChunkId) -> StripeAddr | None:
        """Where a chunk is stored, if it is live."""
        row = self.db.one(f"SELECT {_ADDR}, refs FROM chunks WHERE id = ?", (chunk,))
        if row is None or int(row[5]) <= 0:
            return None
        return _addr(row[:5])

    def move(self, chunk: ChunkId, new: StripeAddr) -> None:
        self.db.execute(
            "chunk.move", (new.seq, new.segment, new.offset, new.shard_len, new.sealed_len, chunk)
        )

    def dead_in(self, segments: list[int]) -> list[ChunkId]:
        marks = ",".join("?" * len(segments))
        rows = self.db.query(
            f"SELECT id FROM chunks WHERE refs <= 0 AND segment IN ({marks})", segments
        )
        return [ChunkId(bytes(r[0])) for r in rows]

    def drop_dead(self, segment: int) -> None:
        """Forget the dead chunks stored in a segment (which is about to go)."""
        self.db.execute("chunk.drop_dead", (segment,))
