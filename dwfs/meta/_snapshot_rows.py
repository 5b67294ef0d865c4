"""The snapshots table: a snapshot is a name and the txg whose end it shows.

Taking one is a row (the rows it sees are kept by TreeRows from then on).
Deleting one deletes, with its row, the ended rows that only it saw: those
born after the snapshot before it and ended before the one after it, found
through the indexes on death, so the cost follows what changed around it and
not the size of the tree.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from dwfs.meta._db import MetaDB
from dwfs.meta._ops import ROW_KEYS
from dwfs.meta._rows import View

AFTER_ALL = 1 << 62
"""A txg later than any: the upper neighbour of the newest snapshot."""


@dataclasses.dataclass(frozen=True)
class SnapshotRow:
    name: str
    id: int
    """A small number never reused, which names the snapshot's inodes."""
    txg: int
    created: int
    """Nanoseconds since the epoch (UTC)."""
    auto: bool
    held: bool
    held_until: int | None
    """Nanoseconds since the epoch, or None: held until released."""


_COLUMNS = "name, id, txg, created, auto, held, held_until"


def _row(r: tuple[Any, ...]) -> SnapshotRow:
    name, number, txg, created, auto, held, until = r
    return SnapshotRow(
        str(name),
        int(number),
        int(txg),
        int(created),
        bool(auto),
        bool(held),
        None if until is None else int(until),
    )


class SnapshotRows:
    def __init__(self, db: MetaDB) -> None:
        self.db = db
        self._seen: dict[tuple[int, int], tuple[int, int]] = {}
        """(referenced, written) by (txg, txg of the snapshot before): what a
        snapshot sees never changes, and reading it takes a pass over the rows."""

    def all(self) -> list[SnapshotRow]:
        """Every snapshot, oldest first (one query)."""
        rows = self.db.query(f"SELECT {_COLUMNS} FROM snapshots ORDER BY id")
        return [_row(r) for r in rows]

    def get(self, name: str) -> SnapshotRow | None:
        row = self.db.one(f"SELECT {_COLUMNS} FROM snapshots WHERE name = ?", (name,))
        return None if row is None else _row(row)

    def by_id(self, number: int) -> SnapshotRow | None:
        row = self.db.one(f"SELECT {_COLUMNS} FROM snapshots WHERE id = ?", (number,))
        return None if row is None else _row(row)

    def take(self, name: str, created: int, auto: bool) -> SnapshotRow:
        """A snapshot of the tree as it is when the open txg ends."""
        txg = self.db.open_txg
        with self.db.transaction():
            number = self.db.next_counter("next_snapshot")
            self.db.execute("snapshot.insert", (name, number, txg, created, int(auto), 0, None))
        return SnapshotRow(name, number, txg, created, auto, False, None)

    def policy(self) -> str | None:
        """The snapshot policy as the snapshots layer wrote it, if one was set."""
        row = self.db.one("SELECT value FROM settings WHERE name = 'snapshot_policy'")
        return None if row is None else str(row[0])

    def set_policy(self, text: str) -> None:
        self.db.execute("setting.set", ("snapshot_policy", text))

    def hold(self, name: str, held: bool, until: int | None) -> None:
        self.db.execute("snapshot.hold", (int(held), until, name))

    def drop(self, name: str) -> None:
        """Delete a snapshot and the ended rows no other snapshot sees."""
        snap = self.get(name)
        if snap is None:
            return
        with self.db.transaction():
            self.db.execute("snapshot.delete", (name,))
            twin = self.db.one("SELECT 1 FROM snapshots WHERE txg = ?", (snap.txg,))
            if twin is None:
                before, after = self._neighbours(snap.txg)
                bounds = (before, snap.txg, after)
                self.db.execute("extent.unref_between", bounds)
                for kind in ROW_KEYS:
                    self.db.execute(f"{kind}.forget_between", bounds)

    def space(self, snap: SnapshotRow) -> dict[str, int]:
        """Stored bytes (sealed chunks, before parity; inline data as it is) that
        the snapshot references, that deleting it alone would free (unique), and
        that it references and the snapshot before it did not (written).

        They add up the way ZFS's do: unique <= written <= referenced; a chunk
        two snapshots share counts in neither's unique until one of them goes;
        deduplicated chunks count once per snapshot."""
        before, after = self._neighbours(snap.txg)
        cached = self._seen.get((snap.txg, before))
        if cached is None:
            seen, values = View(snap.txg).where()
            cached = self._seen[snap.txg, before] = (
                self._bytes(seen, values),
                self._bytes(f"{seen} AND birth > ?", (*values, before)),
            )
        referenced, written = cached
        only = "death IS NOT NULL AND death > ?2 AND death <= ?3 AND birth > ?1 AND birth <= ?2"
        bounds = (before, snap.txg, after)
        row = self.db.one(
            "SELECT coalesce(sum(c.sealed_len), 0) FROM chunks c JOIN "
            f"(SELECT chunk, count(*) AS n FROM extents WHERE {only} GROUP BY chunk) f "
            "ON f.chunk = c.id WHERE c.refs = f.n",
            bounds,
        )
        inline = self.db.one(
            f"SELECT coalesce(sum(length(data)), 0) FROM inline_data WHERE {only}", bounds
        )
        unique = (int(row[0]) if row else 0) + (int(inline[0]) if inline else 0)
        return {"referenced_bytes": referenced, "unique_bytes": unique, "written_bytes": written}

    def _bytes(self, where: str, values: tuple[int, ...]) -> int:
        """Sealed bytes of the distinct chunks of the extents `where` selects, plus
        the bytes of the inline data it selects."""
        row = self.db.one(
            "SELECT coalesce(sum(sealed_len), 0) FROM chunks "
            f"WHERE id IN (SELECT chunk FROM extents WHERE {where})",
            values,
        )
        small = self.db.one(
            f"SELECT coalesce(sum(length(data)), 0) FROM inline_data WHERE {where}", values
        )
        return (int(row[0]) if row else 0) + (int(small[0]) if small else 0)

    def _neighbours(self, txg: int) -> tuple[int, int]:
        """The txgs of the snapshots just before and after `txg` (-1 and AFTER_ALL
        where there is none)."""
        row = self.db.one("SELECT max(txg) FROM snapshots WHERE txg < ?", (txg,))
        before = -1 if row is None or row[0] is None else int(row[0])
        row = self.db.one("SELECT min(txg) FROM snapshots WHERE txg > ?", (txg,))
        after = AFTER_ALL if row is None or row[0] is None else int(row[0])
        return before, after
