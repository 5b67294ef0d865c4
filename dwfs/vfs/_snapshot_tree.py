"""The read-only tree under MOUNTPOINT/.snapshots: one directory per snapshot,
showing the whole tree as it was.

`.snapshots` is not listed by the root's readdir (so du, rsync and backups of
the mount do not walk every snapshot) but resolves by name, as ZFS's `.zfs`
does. Its inodes live in a range of their own: bit 62 set, the snapshot's id in
bits 40-61 and the inode's own number below, so they never collide with the
live tree's (numbered from 1 up) nor with another snapshot's; within one
snapshot, hard links keep sharing an inode number.
"""

from __future__ import annotations

import stat

from dwfs.errors import NotFound, ReadOnly
from dwfs.meta import SnapshotRow, SnapshotRows, TreeRows, View
from dwfs.vfs._attrs import ROOT_INO, Attr

NAME = b".snapshots"
BASE = 1 << 62
ID_SHIFT = 40
DIR_INO = BASE
"""The inode number of .snapshots itself (snapshot id 0, which none has)."""
_COOKIE_OFFSET = 2
"""Entries of .snapshots have cookie id + 2: cookies 1 and 2 are '.' and '..'."""


def is_snapshot_ino(ino: int) -> bool:
    return ino >= BASE


def snapshot_ino(snap_id: int, ino: int) -> int:
    return BASE | (snap_id << ID_SHIFT) | ino


def split(vino: int) -> tuple[int, int]:
    """(snapshot id, inode number within it) of an inode under .snapshots."""
    return (vino - BASE) >> ID_SHIFT, vino & ((1 << ID_SHIFT) - 1)


def refuse() -> ReadOnly:
    return ReadOnly("snapshots are read-only: restore with `dwfsctl snapshot restore`")


class SnapshotTree:
    """Attributes, lookups, listings and xattrs under .snapshots."""

    def __init__(self, rows: TreeRows, snapshots: SnapshotRows) -> None:
        self.rows = rows
        self.snapshots = snapshots

    def _snapshot(self, snap_id: int) -> SnapshotRow:
        snap = self.snapshots.by_id(snap_id)
        if snap is None:
            raise NotFound("that snapshot was deleted")
        return snap

    def locate(self, vino: int) -> tuple[View, int]:
        """The view and the inode number within it of a snapshot's inode."""
        snap_id, ino = split(vino)
        return View(self._snapshot(snap_id).txg), ino

    def attr(self, vino: int, root: Attr) -> Attr:
        """A snapshot inode's attributes (`root`, the live root's, lends .snapshots
        its owner and times)."""
        if vino == DIR_INO:
            return Attr(
                DIR_INO,
                stat.S_IFDIR | 0o555,
                root.uid,
                root.gid,
                2,
                0,
                root.atime_ns,
                root.mtime_ns,
                root.ctime_ns,
                0,
                None,
            )
        view, ino = self.locate(vino)
        row = self.rows.inode(ino, view)
        if row is None:
            raise NotFound(f"inode {vino} does not exist")
        attr = Attr.from_row(row)
        attr.ino = vino
        return attr

    def parent_of(self, vino: int) -> int:
        if vino == DIR_INO:
            return ROOT_INO
        snap_id, ino = split(vino)
        if ino == ROOT_INO:
            return DIR_INO
        parent = self.rows.parent_of(ino, View(self._snapshot(snap_id).txg))
        return snapshot_ino(snap_id, ROOT_INO if parent is None else parent)

    def lookup(self, parent: int, name: bytes) -> int:
        if name == b".":
            return parent
        if name == b"..":
            return self.parent_of(parent)
        if parent == DIR_INO:
            snap = self.snapshots.get(name.decode("utf-8", "surrogateescape"))
            if snap is None:
                raise NotFound("no such snapshot")
            return snapshot_ino(snap.id, ROOT_INO)
        snap_id, ino = split(parent)
        child = self.rows.dirent(ino, name, View(self._snapshot(snap_id).txg))
        if child is None:
            raise NotFound("no such file or directory")
        return snapshot_ino(snap_id, child)

    def entries(self, vino: int, after: int, limit: int) -> list[tuple[int, bytes, int]]:
        """(cookie, name, inode) of entries with cookie > after."""
        if vino == DIR_INO:
            return [
                (
                    s.id + _COOKIE_OFFSET,
                    s.name.encode("utf-8", "surrogateescape"),
                    snapshot_ino(s.id, ROOT_INO),
                )
                for s in self.snapshots.all()
                if s.id + _COOKIE_OFFSET > after
            ][:limit]
        snap_id, ino = split(vino)
        view = View(self._snapshot(snap_id).txg)
        return [
            (cookie, name, snapshot_ino(snap_id, child))
            for cookie, name, child in self.rows.entries(ino, after, limit, view)
        ]

    def xattr(self, vino: int, name: bytes) -> bytes | None:
        if vino == DIR_INO:
            return None
        view, ino = self.locate(vino)
        return self.rows.xattr(ino, name, view)

    def xattr_names(self, vino: int) -> list[bytes]:
        if vino == DIR_INO:
            return []
        view, ino = self.locate(vino)
        return self.rows.xattr_names(ino, view)
