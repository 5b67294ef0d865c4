"""The chunk table: where each chunk is stored and how many rows reference it.

A chunk is live while its reference count is above zero. Compaction moves live
chunks out of mostly dead segments and garbage collection drops the rows of
dead ones with their segments; both ask here, and never write SQL.
"""

from __future__ import annotations

from dwfs.meta._db import MetaDB
from dwfs.types import ChunkId, RemoteAddr, StripeAddr

_ADDR = "seq, segment, offset, shard_len, sealed_len"
_C_ADDR = ", ".join(f"c.{column}" for column in _ADDR.split(", "))
"""_ADDR of the chunks table named `c` in a join."""
NOT_LOCAL = -1
"""The segment of a chunk with no local copy (only the remote tier has it)."""
_LOCAL = "segment >= 0"


def _addr(row: tuple[int, ...]) -> StripeAddr:
    return StripeAddr(*map(int, row))


class ChunkRows:
    def __init__(self, db: MetaDB) -> None:
        self.db = db

    def live(self) -> list[tuple[ChunkId, StripeAddr]]:
        """Every live chunk and where it is stored."""
        rows = self.db.query(f"SELECT id, {_ADDR} FROM chunks WHERE refs > 0 AND {_LOCAL}")
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
            "SELECT segment, sum(shard_len) + count(*) * ? FROM chunks "
            f"WHERE refs > 0 AND {_LOCAL} GROUP BY segment",
            (header,),
        )
        return [(int(s), int(n)) for s, n in rows]

    def live_segments(self) -> set[int]:
        return {
            int(r[0])
            for r in self.db.query(
                f"SELECT DISTINCT segment FROM chunks WHERE refs > 0 AND {_LOCAL}"
            )
        }

    def dead_count(self) -> int:
        """How many chunk rows no row references (a covering-index count)."""
        row = self.db.one("SELECT count(*) FROM chunks WHERE refs <= 0")
        return int(row[0]) if row else 0

    def live_at(self, chunk: ChunkId) -> StripeAddr | None:
        """Where a chunk is stored locally, if it is live and here."""
        row = self.db.one(f"SELECT {_ADDR}, refs FROM chunks WHERE id = ?", (chunk,))
        if row is None or int(row[5]) <= 0 or int(row[1]) == NOT_LOCAL:
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
        """Forget the dead chunks stored in a segment (which is about to go), or
        with NOT_LOCAL, those only the remote has, and their remote copies."""
        self.db.execute("remote.drop_dead", (segment,))
        self.db.execute("chunk.drop_dead", (segment,))

    def not_local(self) -> list[ChunkId]:
        """The chunks with no local copy (a stripe of one a scan finds is stale)."""
        rows = self.db.query("SELECT id FROM chunks WHERE segment = ?", (NOT_LOCAL,))
        return [ChunkId(bytes(r[0])) for r in rows]

    def not_local_count(self) -> int:
        """How many chunk rows have no local copy (evicted, or never fetched)."""
        row = self.db.one("SELECT count(*) FROM chunks WHERE segment = ?", (NOT_LOCAL,))
        return int(row[0]) if row else 0

    def remote_dead_count(self) -> int:
        """How many dead chunks only the remote has."""
        row = self.db.one(
            "SELECT count(*) FROM chunks WHERE segment = ? AND refs <= 0", (NOT_LOCAL,)
        )
        return int(row[0]) if row else 0

    def evict(self, chunk: ChunkId) -> None:
        """Record that a chunk's local copy is gone (its remote copy stays)."""
        self.db.execute("chunk.evict", (chunk,))

    def evict_all(self) -> None:
        """Record that no chunk has a local copy (a pool attached from its remote)."""
        self.db.execute("chunk.evict_all", (0,))


class RemoteRows:
    """The remote tier's URL, where chunks lie there, and which have yet to go."""

    def __init__(self, db: MetaDB) -> None:
        self.db = db
        self._any_pins: bool | None = None
        """Whether any inode may be pinned: asked once, set by every pin through
        this object (the metadata's one), so a pool that never pinned anything
        answers pinned() without a statement (every create asks it)."""

    def url(self) -> str | None:
        row = self.db.one("SELECT value FROM settings WHERE name = 'remote_url'")
        return None if row is None else str(row[0])

    def bwlimit(self) -> int | None:
        row = self.db.one("SELECT value FROM settings WHERE name = 'remote_bwlimit'")
        return None if row is None else int(row[0])

    def set_bwlimit(self, rate: int | None) -> None:
        if rate is None:
            self.db.execute("setting.delete", ("remote_bwlimit",))
        else:
            self.db.execute("setting.set", ("remote_bwlimit", str(rate)))

    def set_url(self, url: str | None) -> None:
        """Record the remote tier's URL; None forgets it and where chunks lay there."""
        if url is None:
            self.db.execute("setting.delete", ("remote_url",))
            self.db.execute("remote.clear", ())
            self.db.execute("pack.clear", ())
        else:
            self.db.execute("setting.set", ("remote_url", url))

    def add(self, chunk: ChunkId, where: RemoteAddr) -> None:
        self.db.execute("remote.add", (chunk, where.pack, where.offset, where.length))

    def place(self, placed: list[tuple[ChunkId, RemoteAddr]]) -> None:
        """Record where these chunks now lie, and the size of each pack they were
        stored in (all of it)."""
        sizes: dict[bytes, int] = {}
        for cid, where in placed:
            self.add(cid, where)
            sizes[where.pack] = max(sizes.get(where.pack, 0), where.offset + where.length)
        for pack, size in sizes.items():
            self.db.execute("pack.add", (pack, size))

    def estimate_pack_sizes(self) -> None:
        """Record sizes for packs stored before sizes were kept: as far as their
        rows reach (a dead chunk at such a pack's end goes unseen). Journals
        nothing when every pack has its size."""
        if self.db.one("SELECT 1 FROM remote WHERE pack NOT IN (SELECT pack FROM packs) LIMIT 1"):
            self.db.execute("pack.estimate", ())

    def sparse_packs(self, below: float) -> list[bytes]:
        """Packs whose live chunks fill less than `below` of them, emptiest first."""
        rows = self.db.query(
            "SELECT p.pack, p.bytes, coalesce(sum(CASE WHEN c.refs > 0 THEN r.length END), 0) "
            "AS live FROM packs p JOIN remote r ON r.pack = p.pack "
            "LEFT JOIN chunks c ON c.id = r.id GROUP BY p.pack "
            "HAVING live < ? * p.bytes ORDER BY live * 1.0 / p.bytes",
            (below,),
        )
        return [bytes(r[0]) for r in rows]

    def small_packs(self, below: int) -> list[bytes]:
        """Packs smaller than `below` bytes that some chunk lies in, oldest first."""
        rows = self.db.query(
            "SELECT p.pack FROM packs p WHERE p.bytes < ? AND EXISTS "
            "(SELECT 1 FROM remote r WHERE r.pack = p.pack) ORDER BY p.rowid",
            (below,),
        )
        return [bytes(r[0]) for r in rows]

    def live_in_pack(self, pack: bytes) -> list[tuple[ChunkId, RemoteAddr, StripeAddr | None]]:
        """The live chunks of one pack: where they lie there, and locally if they do."""
        rows = self.db.query(
            f"SELECT r.id, r.offset, r.length, {_C_ADDR} "
            "FROM remote r JOIN chunks c ON c.id = r.id WHERE r.pack = ? AND c.refs > 0 "
            "ORDER BY r.offset",
            (pack,),
        )
        return [
            (
                ChunkId(bytes(r[0])),
                RemoteAddr(pack, int(r[1]), int(r[2])),
                _addr(r[3:]) if int(r[4]) >= 0 else None,
            )
            for r in rows
        ]

    def drop_dead_in(self, pack: bytes) -> None:
        """Forget where the dead chunks of a pack lie in it, so it can go."""
        self.db.execute("remote.drop_dead_in", (pack,))

    def forget_unused_packs(self) -> None:
        """Forget the sizes of packs no chunk lies in any more (deleted, or about to be)."""
        if self.db.one("SELECT 1 FROM packs WHERE pack NOT IN (SELECT pack FROM remote) LIMIT 1"):
            self.db.execute("pack.forget_unused", ())

    def all(self) -> list[tuple[ChunkId, RemoteAddr]]:
        """Every chunk the remote holds, with where."""
        rows = self.db.query("SELECT id, pack, offset, length FROM remote")
        return [(ChunkId(bytes(r[0])), RemoteAddr(bytes(r[1]), int(r[2]), int(r[3]))) for r in rows]

    def pending(self, limit: int) -> list[tuple[ChunkId, StripeAddr]]:
        """Live local chunks the remote does not hold yet, in write order."""
        rows = self.db.query(
            f"SELECT c.id, {_C_ADDR} FROM chunks c "
            f"WHERE c.refs > 0 AND c.{_LOCAL} AND NOT EXISTS "
            "(SELECT 1 FROM remote r WHERE r.id = c.id) ORDER BY c.seq LIMIT ?",
            (limit,),
        )
        return [(ChunkId(bytes(r[0])), _addr(r[1:])) for r in rows]

    def pending_totals(self) -> tuple[int, int]:
        """(chunks, sealed bytes) live here and not yet on the remote."""
        row = self.db.one(
            f"SELECT count(*), coalesce(sum(c.sealed_len), 0) FROM chunks c WHERE c.refs > 0 "
            f"AND c.{_LOCAL} AND NOT EXISTS (SELECT 1 FROM remote r WHERE r.id = c.id)"
        )
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def totals(self) -> dict[str, int]:
        """Counts of live chunks by where they are: local only, both, remote only."""
        row = self.db.one(
            "SELECT "
            f"sum(c.{_LOCAL} AND r.id IS NULL), sum(c.{_LOCAL} AND r.id IS NOT NULL), "
            f"sum(NOT c.{_LOCAL}), "
            f"coalesce(sum(CASE WHEN c.{_LOCAL} THEN c.sealed_len END), 0), "
            f"coalesce(sum(CASE WHEN NOT c.{_LOCAL} THEN c.sealed_len END), 0) "
            "FROM chunks c LEFT JOIN remote r ON r.id = c.id WHERE c.refs > 0"
        )
        values = [int(v or 0) for v in (row or (0, 0, 0, 0, 0))]
        return dict(
            zip(
                ("local_only", "both", "remote_only", "local_bytes", "remote_only_bytes"),
                values,
                strict=True,
            )
        )

    # -- pins -------------------------------------------------------------------------

    def pinned(self, ino: int) -> bool:
        if self._any_pins is None:
            self._any_pins = self.db.one("SELECT 1 FROM pins LIMIT 1") is not None
        if not self._any_pins:
            return False
        return self.db.one("SELECT 1 FROM pins WHERE ino = ?", (ino,)) is not None

    def set_pinned(self, ino: int, pinned: bool) -> None:
        if pinned:
            self._any_pins = True
        self.db.execute("pin.add" if pinned else "pin.remove", (ino,))

    def subtree(self, ino: int) -> list[int]:
        """The live inodes at and below ino (a file: itself)."""
        rows = self.db.query(
            "WITH RECURSIVE sub(ino) AS (SELECT ? UNION SELECT d.ino FROM dirents d "
            "JOIN sub ON d.parent = sub.ino WHERE d.death IS NULL) SELECT ino FROM sub",
            (ino,),
        )
        return [int(r[0]) for r in rows]

    def chunks_of(self, inos: list[int]) -> set[ChunkId]:
        """The chunks the live extents of these inodes use."""
        found: set[ChunkId] = set()
        for start in range(0, len(inos), 500):
            part = inos[start : start + 500]
            marks = ",".join("?" * len(part))
            rows = self.db.query(
                f"SELECT DISTINCT chunk FROM extents WHERE death IS NULL AND ino IN ({marks})",
                part,
            )
            found.update(ChunkId(bytes(r[0])) for r in rows)
        return found

    def pinned_chunks(self) -> set[ChunkId]:
        """The chunks a pinned live file uses (a chunk shared with one stays local)."""
        rows = self.db.query(
            "SELECT DISTINCT e.chunk FROM pins p JOIN extents e ON e.ino = p.ino "
            "AND e.death IS NULL"
        )
        return {ChunkId(bytes(r[0])) for r in rows}

    def evictable(self) -> list[tuple[ChunkId, int]]:
        """(chunk, sealed length) of every live chunk kept both here and on the
        remote, in write order: what eviction may choose from."""
        rows = self.db.query(
            "SELECT c.id, c.sealed_len FROM chunks c JOIN remote r ON r.id = c.id "
            f"WHERE c.refs > 0 AND c.{_LOCAL} ORDER BY c.seq"
        )
        return [(ChunkId(bytes(r[0])), int(r[1])) for r in rows]

    def cache_limits(self) -> dict[str, int | None]:
        """The local cache's bounds: max_size (bytes of local chunks) and min_free
        (bytes the devices keep free), each None when unset."""
        found: dict[str, int | None] = {"max_size": None, "min_free": None}
        for name, value in self.db.query(
            "SELECT name, value FROM settings WHERE name IN ('cache_max_size', 'cache_min_free')"
        ):
            found[str(name).removeprefix("cache_")] = int(value)
        return found

    def set_cache_limits(self, max_size: int | None, min_free: int | None) -> None:
        for name, value in (("cache_max_size", max_size), ("cache_min_free", min_free)):
            if value is not None:
                self.db.execute("setting.set", (name, str(value)))
