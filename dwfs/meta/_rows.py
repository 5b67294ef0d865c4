"""The tree's rows: every statement over inodes, directory entries, extents,
inline data, xattrs, chunk references and logged writes, in one place.

Rows carry birth and death txgs. A read names a View: the live head (rows not
ended) or a snapshot's txg T, which sees the rows born at or before T and not
ended by then. That rule is written here once (View.where). Changes go only to
live rows, as the fixed operations of _ops, so they are journaled and replay
the same way; callers above (vfs, snapshots) hold the POSIX rules and never
write SQL.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Mapping
from typing import Any

from dwfs.errors import Exists
from dwfs.meta._db import MetaDB, Param
from dwfs.meta._ops import ROW_KEYS, arity
from dwfs.types import StripeAddr

ROOT_INO = 1
"""The inode number of the tree's root."""
INODE_COLUMNS = "ino, mode, uid, gid, nlink, size, atime, mtime, ctime, rdev, target"
"""The columns of an inode row as inode() returns them."""


@dataclasses.dataclass(frozen=True)
class View:
    """Which rows a read sees: the live head, or the tree as it was when the txg
    `txg` ended (a snapshot)."""

    txg: int | None = None

    def where(self, number: int = 0) -> tuple[str, tuple[int, ...]]:
        """The visibility condition and its values; the txg as parameter ?number
        when one is given (for statements with numbered parameters)."""
        if self.txg is None:
            return "death IS NULL", ()
        mark = f"?{number}" if number else "?"
        return f"birth <= {mark} AND (death IS NULL OR death > {mark})", (
            (self.txg,) if number else (self.txg, self.txg)
        )


LIVE = View()


class TreeRows:
    """Reads and changes of the tree's rows over one metadata database.

    A change to a live row that a snapshot sees keeps that version: an update
    first copies it as ended now and renews the live row's birth; a removal
    ends it instead of deleting it, and an ended extent keeps its chunk's
    reference until the last snapshot that sees it goes. A row no snapshot
    sees (born after the newest one, or in the open txg) is changed in place,
    as every row is while there is no snapshot."""

    def __init__(self, db: MetaDB) -> None:
        self.db = db

    def pin(self) -> int:
        """The txg of the newest snapshot, or -1 if there is none."""
        return self.db.newest_snapshot()

    def _pinned(self, kind: str, key: tuple[Param, ...]) -> bool:
        """Whether a snapshot sees the live row of this kind with this key."""
        pin = self.pin()
        if pin < 0:
            return False
        table, where, _ = ROW_KEYS[kind]
        row = self.db.one(f"SELECT birth FROM {table} WHERE {where} AND death IS NULL", key)
        return row is not None and int(row[0]) <= pin and int(row[0]) < self.db.open_txg

    def _keep(self, kind: str, key: tuple[Param, ...]) -> None:
        """Before an update in place: keep the version a snapshot sees."""
        if self._pinned(kind, key):
            self.db.execute(f"{kind}.keep", (*key, self.db.open_txg))
            self.db.execute(f"{kind}.renew", (*key, self.db.open_txg))

    def _remove(self, kind: str, key: tuple[Param, ...]) -> int:
        """End or delete the live row of this kind with this key; how many there were."""
        if self._pinned(kind, key):
            return self.db.execute(f"{kind}.end", (*key, self.db.open_txg))
        return self.db.execute(f"{kind}.delete", key)

    def _one(self, sql: str, params: tuple[Param, ...], view: View) -> tuple[Any, ...] | None:
        """One row of `sql`, whose WHERE begins with {seen} (the view's condition)."""
        where, values = view.where()
        return self.db.one(sql.replace("{seen}", where), (*values, *params))

    def _all(self, sql: str, params: tuple[Param, ...], view: View) -> list[tuple[Any, ...]]:
        where, values = view.where()
        return self.db.query(sql.replace("{seen}", where), (*values, *params))

    # -- inodes -------------------------------------------------------------------

    def inode(self, ino: int, view: View = LIVE) -> tuple[Any, ...] | None:
        """The inode's row (INODE_COLUMNS), or None."""
        return self._one(
            f"SELECT {INODE_COLUMNS} FROM inodes WHERE {{seen}} AND ino = ?", (ino,), view
        )

    def inode_count(self, view: View = LIVE) -> int:
        row = self._one("SELECT count(*) FROM inodes WHERE {seen}", (), view)
        return int(row[0]) if row else 0

    def orphans(self) -> list[int]:
        """Live inodes with no links left."""
        rows = self._all("SELECT ino FROM inodes WHERE {seen} AND nlink = 0", (), LIVE)
        return [int(r[0]) for r in rows]

    def insert_inode(self, row: tuple[Param, ...]) -> None:
        """A new inode from a row of INODE_COLUMNS."""
        self.db.execute("inode.insert", (*row, self.db.open_txg))

    def set_inode(self, ino: int, fields: Mapping[str, Param]) -> None:
        self._keep("inode", (ino,))
        self.db.set_inode(ino, fields)

    def add_links(self, ino: int, delta: int, ctime: int) -> None:
        self._keep("inode", (ino,))
        self.db.execute("inode.add_links", (delta, ctime, ino))

    def touch_dir(self, ino: int, now: int, nlink_delta: int) -> None:
        self._keep("inode", (ino,))
        self.db.execute("inode.touch_dir", (now, now, nlink_delta, ino))

    def next_ino(self) -> int:
        return self.db.next_counter("next_ino")

    # -- directory entries --------------------------------------------------------

    def dirent(self, parent: int, name: bytes, view: View = LIVE) -> int | None:
        """The inode `name` in `parent` names, or None."""
        row = self._one(
            "SELECT ino FROM dirents WHERE {seen} AND parent = ? AND name = ?", (parent, name), view
        )
        return None if row is None else int(row[0])

    def parent_of(self, ino: int, view: View = LIVE) -> int | None:
        """The directory holding an entry for `ino` (the one, for a directory)."""
        row = self._one("SELECT parent FROM dirents WHERE {seen} AND ino = ?", (ino,), view)
        return None if row is None else int(row[0])

    def name_of(self, ino: int, view: View = LIVE) -> tuple[int, bytes] | None:
        """(directory, name) of one entry naming `ino`, or None."""
        row = self._one(
            "SELECT parent, name FROM dirents WHERE {seen} AND ino = ? ORDER BY cookie LIMIT 1",
            (ino,),
            view,
        )
        return None if row is None else (int(row[0]), bytes(row[1]))

    def changed(self, since: int, until: int | None) -> list[int]:
        """The inodes some row of changed (was born or ended) after txg `since` and
        up to `until` (None: up to now), in order: the candidates of a diff."""
        upper = "" if until is None else " AND {0} <= ?2"
        born = "birth > ?1" + upper.format("birth")
        ended = "death IS NOT NULL AND death > ?1" + upper.format("death")
        picks = []
        for table, column in (
            ("inodes", "ino"),
            ("xattrs", "ino"),
            ("inline_data", "ino"),
            ("extents", "ino"),
            ("dirents", "ino"),
            ("dirents", "parent"),
        ):
            picks.append(f"SELECT {column} FROM {table} WHERE {born}")
            picks.append(f"SELECT {column} FROM {table} WHERE {ended}")
        values = (since,) if until is None else (since, until)
        rows = self.db.query(" UNION ".join(picks) + " ORDER BY 1", values)
        return [int(r[0]) for r in rows]

    def entries(
        self, parent: int, after: int, limit: int, view: View = LIVE
    ) -> list[tuple[int, bytes, int]]:
        """(cookie, name, ino) of entries with cookie > after, in cookie order."""
        rows = self._all(
            "SELECT cookie, name, ino FROM dirents WHERE {seen} AND parent = ? AND cookie > ? "
            "ORDER BY cookie LIMIT ?",
            (parent, after, limit),
            view,
        )
        return [(int(c), bytes(n), int(i)) for c, n, i in rows]

    def has_entries(self, parent: int, view: View = LIVE) -> bool:
        return (
            self._one("SELECT 1 FROM dirents WHERE {seen} AND parent = ?", (parent,), view)
            is not None
        )

    def add_dirent(self, parent: int, name: bytes, ino: int) -> None:
        """Name ino in parent; Exists when the name is taken, which the unique
        index on live names tells (callers need not look the name up first).
        Raise it inside a transaction: what came before it must roll back."""
        cookie = self.db.next_counter("next_cookie")
        try:
            self.db.execute("dirent.insert", (parent, name, cookie, ino, self.db.open_txg))
        except sqlite3.IntegrityError as exc:
            if exc.sqlite_errorname != "SQLITE_CONSTRAINT_UNIQUE":
                raise
            raise Exists("file exists") from None

    def remove_dirent(self, parent: int, name: bytes) -> None:
        self._remove("dirent", (parent, name))

    def repoint_dirent(self, parent: int, name: bytes, ino: int) -> None:
        self._keep("dirent", (parent, name))
        self.db.execute("dirent.repoint", (ino, parent, name))

    # -- xattrs -------------------------------------------------------------------

    def xattr(self, ino: int, name: bytes, view: View = LIVE) -> bytes | None:
        row = self._one(
            "SELECT value FROM xattrs WHERE {seen} AND ino = ? AND name = ?", (ino, name), view
        )
        return None if row is None else bytes(row[0])

    def xattr_names(self, ino: int, view: View = LIVE) -> list[bytes]:
        rows = self._all(
            "SELECT name FROM xattrs WHERE {seen} AND ino = ? ORDER BY name", (ino,), view
        )
        return [bytes(r[0]) for r in rows]

    def xattr_ever_set(self, name: bytes) -> bool:
        """Whether any inode, live or in a snapshot, has or had this xattr (rows
        not yet purged count: an answer that errs only towards True)."""
        return self.db.one("SELECT 1 FROM xattrs WHERE name = ? LIMIT 1", (name,)) is not None

    def insert_xattr(self, ino: int, name: bytes, value: bytes) -> None:
        self.db.execute("xattr.insert", (ino, name, value, self.db.open_txg))

    def update_xattr(self, ino: int, name: bytes, value: bytes) -> None:
        self._keep("xattr", (ino, name))
        self.db.execute("xattr.update", (value, ino, name))

    def delete_xattr(self, ino: int, name: bytes) -> bool:
        """Remove one xattr; whether there was one."""
        return bool(self._remove("xattr", (ino, name)))

    # -- file contents ------------------------------------------------------------

    def inline(self, ino: int, view: View = LIVE) -> bytes | None:
        """The bytes of a small file kept in the metadata, if it is one."""
        row = self._one("SELECT data FROM inline_data WHERE {seen} AND ino = ?", (ino,), view)
        return None if row is None else bytes(row[0])

    def set_inline(self, ino: int, data: bytes | None) -> None:
        if not data:
            self._remove("inline", (ino,))
            return
        self._keep("inline", (ino,))
        self.db.execute("inline.set", (ino, data, self.db.open_txg))

    def extents(
        self, ino: int, start: int, end: int, view: View = LIVE
    ) -> list[tuple[int, int, bytes, int]]:
        """(off, len, chunk, chunk_off) of the extents overlapping [start, end), in order."""
        # Extents do not overlap, so the scan can start at the last one that starts
        # at or before `start`; the index range stays short however long the file.
        seen, values = view.where(4)
        rows = self.db.query(
            f"SELECT off, len, chunk, chunk_off FROM extents WHERE ino = ?1 AND off < ?2 "
            f"AND off >= coalesce((SELECT off FROM extents WHERE ino = ?1 AND off <= ?3 "
            f"AND {seen} ORDER BY off DESC LIMIT 1), 0) "
            f"AND off + len > ?3 AND {seen} ORDER BY off",
            (ino, end, start, *values),
        )
        return [(int(o), int(n), bytes(c), int(co)) for o, n, c, co in rows]

    def has_extents(self, ino: int, view: View = LIVE) -> bool:
        return self._one("SELECT 1 FROM extents WHERE {seen} AND ino = ?", (ino,), view) is not None

    def add_extent(self, ino: int, off: int, length: int, chunk: bytes, chunk_off: int) -> None:
        """A new extent, which holds a reference to its chunk."""
        self.db.execute("extent.insert", (ino, off, length, chunk, chunk_off, self.db.open_txg))
        self.db.execute("chunk.ref", (chunk,))

    def remove_extent(self, ino: int, off: int, chunk: bytes) -> None:
        """End the extent at `off`; deleted (no snapshot sees it), it drops its
        chunk's reference too."""
        if self._pinned("extent", (ino, off)):
            self.db.execute("extent.end", (ino, off, self.db.open_txg))
            return
        self.db.execute("extent.delete", (ino, off))
        self.db.execute("chunk.unref", (chunk,))

    def record_chunk(self, chunk: bytes, addr: StripeAddr) -> None:
        """Where a chunk is stored (before the first extent that references it)."""
        a = addr
        self.db.execute(
            "chunk.upsert", (chunk, a.seq, a.segment, a.offset, a.shard_len, a.sealed_len)
        )

    # -- copies out of snapshots -----------------------------------------------------

    def copy_subtree(self, txg: int, root: int, target: int | None = None) -> int:
        """Copy the subtree at `root`, as the snapshot at `txg` shows it, into new
        live inodes that share its chunks (a few operations, whatever its size);
        the inode its root becomes: `target`, or a new one (left unlinked: the
        caller names it, then calls recount_links)."""
        row = self.inode(root, View(txg))
        assert row is not None, "the caller checks that the snapshot holds the inode"
        shift = self._reserve("next_ino", "SELECT max(ino) FROM inodes")
        cookies = self._reserve("next_cookie", "SELECT max(cookie) FROM dirents")
        new_root = root + shift if target is None else target
        if target is None:
            self.insert_inode((new_root, *row[1:]))
        values = (root, txg, shift, self.db.open_txg, cookies, new_root)
        for table in ("inodes", "dirents", "xattrs", "inline_data", "extents", "refs"):
            op = f"copy.{table}"
            self.db.execute(op, values[: arity(op)])
        return new_root

    def _reserve(self, counter: str, highest: str) -> int:
        """A counter's value, moved past it plus the highest number in use, so that
        adding it to any number in use gives one never used."""
        start = self.db.one("SELECT value FROM counters WHERE name = ?", (counter,))
        top = self.db.one(highest)
        first = int(start[0]) if start else 1
        self.db.execute("counter.raise", (counter, first + int(top[0] or 0 if top else 0) + 1))
        return first

    def recount_links(self, root: int) -> None:
        """Set the link counts of the inodes made in this txg (and of `root`) from
        their entries, after a copy."""
        self.db.execute("inodes.recount", (self.db.open_txg, root))

    def roll_back(self, txg: int, root: int, keep_open: list[int]) -> None:
        """Make the live tree what the snapshot at `txg` shows: every live row goes
        (ended where a snapshot sees it: the caller takes one just before) and the
        snapshot's tree is copied in under new inode numbers, so a file open now
        keeps its content, unlinked, as after a rename over it. The root keeps its
        number. Nothing else may have changed in the open txg."""
        now, pin = self.db.open_txg, self.pin()
        for ino in keep_open:
            self._keep("inode", (ino,))
            self.db.execute("inode.renew", (ino, now))
            for kind in ("xattr", "inline", "extent"):
                self.db.execute(f"{kind}.keep_all", (now, pin, ino))
                self.db.execute(f"{kind}.renew_all", (now, pin, ino))
            self.db.execute("extent.ref_kept", (now, pin, ino))
            self.db.set_inode(ino, {"nlink": 0})
        self.db.execute("extents.unref_unseen", (now, pin))
        for table in ("dirents", "xattrs", "inline_data", "extents", "inodes"):
            drop, end = f"{table}.drop_unseen", f"{table}.end_older"
            self.db.execute(drop, (now, pin, root)[: arity(drop)])
            self.db.execute(end, (now, root)[: arity(end)])
        self.copy_subtree(txg, root, target=root)
        old = self.inode(root, View(txg))
        assert old is not None
        fields = dict(zip(INODE_COLUMNS.split(", ")[1:], old[1:], strict=True))
        self.set_inode(root, fields)
        self.recount_links(root)

    # -- removal ------------------------------------------------------------------

    def purge(self, ino: int) -> None:
        """Remove an inode and everything it holds (its extents' references too);
        what snapshots see of it is ended instead."""
        pin = self.pin()
        if pin < 0:  # no row of the inode is ended, and none is seen
            for (chunk,) in self.db.query("SELECT chunk FROM extents WHERE ino = ?", (ino,)):
                self.db.execute("chunk.unref", (chunk,))
            for op in ("extent.delete_all", "inline.delete_all", "xattr.delete_all"):
                self.db.execute(op, (ino,))
            self.db.execute("inode.delete", (ino,))
        else:
            now = self.db.open_txg
            self.db.execute("extent.unref_unpinned", (ino, now, pin))
            for kind in ("extent", "inline", "xattr", "inode"):
                self.db.execute(f"{kind}.delete_unpinned", (ino, now, pin))
                self.db.execute(f"{kind}.end_all", (ino, now))
        if self.db.one("SELECT 1 FROM logged WHERE ino = ?", (ino,)):
            self.db.execute("logged.delete_all", (ino,))

    def has_root(self) -> bool:
        return self.db.one("SELECT 1 FROM inodes WHERE ino = ?", (ROOT_INO,)) is not None

    # -- the intent log -----------------------------------------------------------

    def log_write(self, ino: int, offset: int, data: bytes) -> None:
        """Keep bytes an fsync made durable before they are stored as chunks."""
        self.db.execute("logged.insert", (self.db.next_log_seq(), ino, offset, data))

    def next_log(self) -> int:
        """The seq the next logged write takes: those before it are logged already."""
        return self.db.log_seq()

    def forget_logged(self, ino: int, before: int | None = None) -> None:
        """Drop a file's logged writes (those with seq < before, if given)."""
        if before is None:
            self.db.execute("logged.delete_all", (ino,))
        else:
            self.db.execute("logged.forget", (ino, before))

    def cut_logged(self, ino: int, size: int) -> None:
        """Drop the logged bytes at and past `size` (a truncate)."""
        self.db.execute("logged.cut", (ino, size))
        self.db.execute("logged.clip", (size, ino, size, size))

    def logged_files(self) -> list[int]:
        return [int(r[0]) for r in self.db.query("SELECT DISTINCT ino FROM logged")]

    def logged_writes(self, ino: int) -> list[tuple[int, bytes]]:
        """(offset, bytes) of a file's logged writes, in the order they were made."""
        rows = self.db.query("SELECT off, data FROM logged WHERE ino = ? ORDER BY seq", (ino,))
        return [(int(o), bytes(d)) for o, d in rows]
