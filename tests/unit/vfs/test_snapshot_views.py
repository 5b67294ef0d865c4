"""Snapshots over the namespace's rows: whatever the tree does after a snapshot,
the snapshot's view stays what the live tree was when it was taken; chunk
references count every extent row kept; deleting snapshots leaves no ended row
that no snapshot sees; and the journaled operations replay to the same rows."""

from __future__ import annotations

import stat
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from dwfs.errors import DwfsError
from dwfs.meta import LIVE, MetaDB, SnapshotRows, View, check
from dwfs.meta._db import Statement
from dwfs.vfs._attrs import ROOT_INO
from dwfs.vfs._tree import Tree

NAMES = st.sampled_from([b"a", b"b", b"c", b"d"])
CHUNKS = st.sampled_from([bytes([i]) * 32 for i in range(4)])


def walk(t: Tree, view: View) -> dict[bytes, Any]:
    """Everything a view shows, by path: inode number, mode, links, size, xattrs,
    inline bytes and extents."""
    rows = t.rows
    out: dict[bytes, Any] = {}

    def visit(ino: int, path: bytes) -> None:
        row = rows.inode(ino, view)
        assert row is not None, f"{path!r} names inode {ino}, which the view lacks"
        xattrs = {n: rows.xattr(ino, n, view) for n in rows.xattr_names(ino, view)}
        extents = rows.extents(ino, 0, 1 << 40, view)
        out[path] = (ino, row[1], row[4], row[5], xattrs, rows.inline(ino, view), extents)
        if stat.S_ISDIR(row[1]):
            for _, name, child in rows.entries(ino, 0, 1000, view):
                visit(child, path + b"/" + name)

    visit(ROOT_INO, b"")
    return out


def shape(tree: dict[bytes, Any], under: bytes = b"") -> dict[bytes, Any]:
    """A walk below `under`, paths made relative, inode numbers replaced by the
    first path that showed them (a copy has new numbers, the same links), and
    link counts left out (a copy of part of a tree counts only its own links)."""
    first: dict[int, bytes] = {}
    out = {}
    for path, (ino, mode, _, size, xattrs, inline, extents) in sorted(tree.items()):
        if path == under or path.startswith(under + b"/"):
            rel = path[len(under) :]
            out[rel] = (first.setdefault(ino, rel), mode, size, xattrs, inline, extents)
    return out


class SnapshotMachine(RuleBasedStateMachine):
    files = Bundle("files")
    dirs = Bundle("dirs")

    def __init__(self) -> None:
        super().__init__()
        self.t = Tree(MetaDB())
        self.t.ensure_root(0, 0)
        self.snaps = SnapshotRows(self.t.db)
        self.journal: list[tuple[int, list[Statement]]] = []
        self.taken: dict[str, dict[bytes, Any]] = {}
        self.counter = 0
        self.commit()

    def commit(self) -> None:
        if self.t.db.has_pending():
            self.journal.append(self.t.db.take_pending())

    def attempt(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except DwfsError:
            return None

    @rule(target=dirs)
    def root(self) -> int:
        return ROOT_INO

    @rule(target=files, parent=dirs, name=NAMES)
    def create(self, parent: int, name: bytes) -> int:
        attr = self.attempt(self.t.create, parent, name, stat.S_IFREG | 0o644, 0, 0)
        return attr.ino if attr else ROOT_INO

    @rule(target=dirs, parent=dirs, name=NAMES)
    def mkdir(self, parent: int, name: bytes) -> int:
        attr = self.attempt(self.t.create, parent, name, stat.S_IFDIR | 0o755, 0, 0)
        return attr.ino if attr else ROOT_INO

    @rule(parent=dirs, name=NAMES)
    def unlink(self, parent: int, name: bytes) -> None:
        ino = self.attempt(self.t.unlink, parent, name)
        if ino is not None and self.t.attr(ino).nlink == 0:
            self.t.purge(ino)

    @rule(parent=dirs, name=NAMES)
    def rmdir(self, parent: int, name: bytes) -> None:
        ino = self.attempt(self.t.rmdir, parent, name)
        if ino is not None:
            self.t.purge(ino)

    @rule(a=dirs, n1=NAMES, b=dirs, n2=NAMES, flags=st.sampled_from([0, 2]))
    def rename(self, a: int, n1: bytes, b: int, n2: bytes, flags: int) -> None:
        dropped = self.attempt(self.t.rename, a, n1, b, n2, flags)
        if dropped is not None and self.t.attr(dropped).nlink == 0:
            self.t.purge(dropped)

    @rule(ino=files, parent=dirs, name=NAMES)
    def link(self, ino: int, parent: int, name: bytes) -> None:
        self.attempt(self.t.link, ino, parent, name)

    @rule(ino=st.one_of(files, dirs), name=NAMES, value=st.binary(max_size=3))
    def setxattr(self, ino: int, name: bytes, value: bytes) -> None:
        self.attempt(self.t.setxattr, ino, b"user." + name, value, 0)

    @rule(ino=st.one_of(files, dirs), name=NAMES)
    def removexattr(self, ino: int, name: bytes) -> None:
        self.attempt(self.t.removexattr, ino, b"user." + name)

    @rule(ino=files, mode=st.integers(0, 0o777))
    def chmod(self, ino: int, mode: int) -> None:
        self.attempt(self.t.chmod, ino, mode)

    @rule(ino=files, data=st.binary(max_size=4))
    def write_inline(self, ino: int, data: bytes) -> None:
        rows = self.t.rows
        if ino != ROOT_INO and rows.inode(ino) is not None and not rows.has_extents(ino):
            with self.t.db.transaction():
                self.t.rows.set_inline(ino, data)
                self.t.set_fields(ino, size=len(data))

    @rule(ino=files, slot=st.integers(0, 3), chunk=CHUNKS)
    def put_extent(self, ino: int, slot: int, chunk: bytes) -> None:
        rows = self.t.rows
        if ino == ROOT_INO or rows.inode(ino) is None or rows.inline(ino) is not None:
            return
        with self.t.db.transaction():
            for off, _, old, _ in rows.extents(ino, slot * 10, slot * 10 + 10):
                rows.remove_extent(ino, off, old)
            self.t.db.execute("chunk.upsert", (chunk, 0, 0, 0, 0, 0))
            rows.add_extent(ino, slot * 10, 10, chunk, 0)
            self.t.set_fields(ino, size=max(self.t.attr(ino).size, slot * 10 + 10))

    @rule()
    def commit_txg(self) -> None:
        self.commit()

    @rule()
    def take(self) -> None:
        self.snapshot()

    def snapshot(self) -> None:
        self.counter += 1
        name = f"s{self.counter}"
        self.taken[name] = walk(self.t, LIVE)
        self.snaps.take(name, self.counter, auto=False)
        self.commit()

    @precondition(lambda self: self.taken)
    @rule(data=st.data())
    def drop(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.taken)))
        self.snaps.drop(name)
        del self.taken[name]

    @precondition(lambda self: self.taken)
    @rule(data=st.data(), name=NAMES)
    def restore(self, data: st.DataObject, name: bytes) -> None:
        snap = self.snaps.get(data.draw(st.sampled_from(sorted(self.taken))))
        assert snap is not None
        paths = sorted(p for p in self.taken[snap.name] if p)
        if not paths:
            return
        path = data.draw(st.sampled_from(paths))
        dest = b"r" + name
        if self.t.find(ROOT_INO, dest) is not None:
            return
        ino = self.taken[snap.name][path][0]
        self.t.restore(snap.txg, ino, ROOT_INO, dest)
        assert shape(walk(self.t, LIVE), b"/" + dest) == shape(self.taken[snap.name], path)

    @precondition(lambda self: self.taken)
    @rule(data=st.data())
    def roll_back(self, data: st.DataObject) -> None:
        snap = self.snaps.get(data.draw(st.sampled_from(sorted(self.taken))))
        assert snap is not None
        self.snapshot()  # what a rollback does first
        files = sorted({v[0] for v in walk(self.t, LIVE).values() if stat.S_ISREG(v[1])})
        held = data.draw(st.lists(st.sampled_from(files), unique=True, max_size=2)) if files else []
        self.t.roll_back(snap.txg, keep_open=held)
        assert shape(walk(self.t, LIVE)) == shape(self.taken[snap.name])
        for ino in held:  # open across the rollback, closed after it: nothing names them
            assert self.t.attr(ino).nlink == 0
            self.t.purge(ino)

    @invariant()
    def snapshots_see_what_was(self) -> None:
        for snap in self.snaps.all():
            assert walk(self.t, View(snap.txg)) == self.taken[snap.name], snap.name

    @invariant()
    def links_count_the_entries(self) -> None:
        for ino, nlink, mode in self.t.db.query(
            "SELECT ino, nlink, mode FROM inodes WHERE death IS NULL"
        ):
            entries = self.t.rows.entries(ino, 0, 1000) if stat.S_ISDIR(mode) else []
            if stat.S_ISDIR(mode):
                subdirs = [c for _, _, c in entries if self.t.attr(c).is_dir]
                assert nlink == 2 + len(subdirs), ino
            else:
                named = self.t.db.one(
                    "SELECT count(*) FROM dirents WHERE ino = ? AND death IS NULL", (ino,)
                )
                assert (nlink,) == named, ino

    @invariant()
    def references_count_every_kept_extent(self) -> None:
        db = self.t.db
        counted = dict(db.query("SELECT chunk, count(*) FROM extents GROUP BY chunk"))
        for chunk, refs in db.query("SELECT id, refs FROM chunks"):
            assert refs == counted.get(chunk, 0)

    @invariant()
    def no_ended_row_without_a_snapshot(self) -> None:
        if not self.taken:
            for table in ("inodes", "dirents", "xattrs", "inline_data", "extents"):
                assert self.t.db.one(f"SELECT count(*) FROM {table} WHERE death IS NOT NULL") == (
                    0,
                )

    def teardown(self) -> None:
        assert check(self.t.db) == []
        self.commit()
        replica = MetaDB()
        for txg, statements in self.journal:
            replica.apply(txg, statements)
        for table in ("inodes", "dirents", "xattrs", "inline_data", "extents", "chunks"):
            dump = f"SELECT * FROM {table} ORDER BY 1, 2, 3, 4"
            assert replica.query(dump) == self.t.db.query(dump), table
        assert replica.query("SELECT * FROM snapshots") == self.t.db.query(
            "SELECT * FROM snapshots"
        )


SnapshotMachine.TestCase.settings = settings(
    max_examples=400, stateful_step_count=50, deadline=None
)
test_snapshot_views = SnapshotMachine.TestCase


def test_an_extent_only_a_deleted_snapshot_saw_gives_its_reference_back() -> None:
    t = Tree(MetaDB())
    t.ensure_root(0, 0)
    snaps = SnapshotRows(t.db)
    ino = t.create(ROOT_INO, b"f", stat.S_IFREG | 0o644, 0, 0).ino
    chunk = b"x" * 32
    with t.db.transaction():
        t.db.execute("chunk.upsert", (chunk, 0, 0, 0, 0, 0))
        t.rows.add_extent(ino, 0, 10, chunk, 0)
    t.db.take_pending()
    snaps.take("before", 1, auto=False)
    t.db.take_pending()
    with t.db.transaction():
        t.rows.remove_extent(ino, 0, chunk)
    assert t.db.query("SELECT refs FROM chunks") == [(1,)], "the snapshot still sees it"
    assert t.rows.extents(ino, 0, 10) == []
    assert t.rows.extents(ino, 0, 10, View(snaps.all()[0].txg)) == [(0, 10, chunk, 0)]
    snaps.drop("before")
    assert t.db.query("SELECT refs FROM chunks") == [(0,)]
    assert t.db.query("SELECT count(*) FROM extents") == [(0,)]
