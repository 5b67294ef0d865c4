"""The namespace on a real in-memory metadata database: cached inode rows stay
true to the database, and the journaled statements rebuild it exactly."""

from __future__ import annotations

import stat
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dwfs.errors import Exists, NotFound
from dwfs.meta import MetaDB
from dwfs.vfs import _acl
from dwfs.vfs._attrs import ROOT_INO
from dwfs.vfs._tree import Tree


def tree() -> Tree:
    t = Tree(MetaDB())
    t.ensure_root(0, 0)
    return t


def fresh(t: Tree, ino: int) -> tuple[object, ...]:
    row = t.db.one("SELECT mode, uid, nlink, size, mtime, ctime FROM inodes WHERE ino = ?", (ino,))
    assert row is not None
    return row


def cached(t: Tree, ino: int) -> tuple[object, ...]:
    a = t.attr(ino)
    return (a.mode, a.uid, a.nlink, a.size, a.mtime_ns, a.ctime_ns)


def test_cached_rows_follow_every_change() -> None:
    t = tree()
    f = t.create(ROOT_INO, b"f", stat.S_IFREG | 0o644, 1, 1)
    d = t.create(ROOT_INO, b"d", stat.S_IFDIR | 0o755, 1, 1)
    steps: list[Callable[[], object]] = [
        lambda: t.link(f.ino, d.ino, b"g"),
        lambda: t.set_fields(f.ino, size=42, uid=7),
        lambda: t.chmod(f.ino, 0o600),
        lambda: t.rename(ROOT_INO, b"f", d.ino, b"h", 0),
        lambda: t.create(d.ino, b"sub", stat.S_IFDIR | 0o755, 1, 1),
        lambda: t.unlink(d.ino, b"g"),
    ]
    for step in steps:
        for ino in (f.ino, d.ino, ROOT_INO):
            t.attr(ino)
        step()
        for ino in (f.ino, d.ino, ROOT_INO):
            assert cached(t, ino) == fresh(t, ino)
    t.unlink(d.ino, b"h")
    t.purge(f.ino)
    with pytest.raises(NotFound):
        t.attr(f.ino)


@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["mode", "uid", "gid", "size", "atime", "mtime", "ctime", "rdev"]),
            st.integers(0, 2**62),
            min_size=1,
        ),
        max_size=8,
    )
)
def test_assigned_fields_reach_the_cached_row(changes: list[dict[str, int]]) -> None:
    t = tree()
    ino = t.create(ROOT_INO, b"f", stat.S_IFREG | 0o644, 1, 1).ino
    columns = "ino, mode, uid, gid, nlink, size, atime, mtime, ctime, rdev, target"
    for fields in changes:
        t.attr(ino)
        t.set_fields(ino, **fields)
        a = t.attr(ino)
        row = t.db.one(f"SELECT {columns} FROM inodes WHERE ino = ?", (ino,))
        assert row is not None
        assert (a.ino, a.mode, a.uid, a.gid, a.nlink, a.size) == row[:6]
        assert (a.atime_ns, a.mtime_ns, a.ctime_ns, a.rdev) == row[6:10]


def test_a_rolled_back_create_leaves_no_cached_inode() -> None:
    t = tree()
    before = cached(t, ROOT_INO)
    with pytest.raises(RuntimeError), t.db.transaction():
        ino = t.create(ROOT_INO, b"f", stat.S_IFREG | 0o644, 1, 1).ino
        raise RuntimeError("the operation fails after the insert")
    with pytest.raises(NotFound):
        t.attr(ino)
    assert cached(t, ROOT_INO) == before == fresh(t, ROOT_INO)


def test_journaled_statements_rebuild_the_same_tree() -> None:
    t = tree()
    for i in range(5):
        t.create(ROOT_INO, b"f%d" % i, stat.S_IFREG | 0o644, 1, 1)
    t.create(ROOT_INO, b"d", stat.S_IFDIR | 0o755, 1, 1)
    txg, statements = t.db.take_pending()
    replica = MetaDB()
    replica.apply(txg, statements)
    dump = "SELECT * FROM inodes ORDER BY ino"
    assert replica.query(dump) == t.db.query(dump)
    entries = "SELECT parent, name, cookie, ino FROM dirents ORDER BY cookie"
    assert replica.query(entries) == t.db.query(entries)
    assert replica.query("SELECT * FROM counters") == t.db.query("SELECT * FROM counters")


def everything(t: Tree, ino: int) -> tuple[object, ...]:
    """Rows, counters, journal and cached attributes: what a refused change must keep."""
    return (
        t.db.query("SELECT * FROM inodes ORDER BY ino"),
        t.db.query("SELECT * FROM dirents ORDER BY parent, name"),
        t.db.query("SELECT * FROM counters ORDER BY name"),
        t.db.pending_statements,
        cached(t, ROOT_INO),
        cached(t, ino),
    )


def test_a_taken_name_is_refused_and_changes_nothing() -> None:
    """create and link learn that a name is taken from the unique index on
    live names, after their first inserts: those must roll back whole."""
    t = tree()
    f = t.create(ROOT_INO, b"f", stat.S_IFREG | 0o644, 1, 1).ino
    g = t.create(ROOT_INO, b"g", stat.S_IFREG | 0o644, 1, 1).ino
    state = everything(t, g)
    for mode in (stat.S_IFREG | 0o644, stat.S_IFDIR | 0o755, stat.S_IFLNK | 0o777):
        with pytest.raises(Exists):
            t.create(ROOT_INO, b"f", mode, 1, 1, target=b"x")
    with pytest.raises(Exists):
        t.link(g, ROOT_INO, b"f")
    assert state == everything(t, g)
    assert t.lookup(ROOT_INO, b"f") == f


def test_acls_are_asked_for_only_once_some_inode_has_one() -> None:
    """Creates ask for the parent's default ACL, chmods for the access ACL, but
    only after an inode of the pool has one by that name; then inheritance and
    chmod work on them as before, also for a new Tree over the same rows (as
    after a remount)."""
    t = tree()
    plain = t.create(ROOT_INO, b"plain", stat.S_IFDIR | 0o755, 1, 1).ino
    t.chmod(plain, 0o700)  # the first create and chmod ask whether any ACL exists
    asked: list[str] = []
    t.db.conn.set_trace_callback(asked.append)
    for i in range(3):
        f = t.create(plain, b"f%d" % i, stat.S_IFREG | 0o644, 1, 1).ino
        t.chmod(f, 0o600)
    t.db.conn.set_trace_callback(None)
    assert not [q for q in asked if "FROM xattrs" in q]
    entries = [(_acl.USER_OBJ, 7, 0), (_acl.GROUP_OBJ, 5, 0), (_acl.GROUP, 7, 42)]
    default = _acl.encode([*entries, (_acl.MASK, 7, 0), (_acl.OTHER, 0, 0)])
    shared = t.create(ROOT_INO, b"shared", stat.S_IFDIR | 0o755, 1, 1).ino
    t.setxattr(shared, _acl.DEFAULT, default, 0)
    for each in (t, Tree(t.db)):
        g = each.create(shared, b"g%d" % id(each), stat.S_IFREG | 0o666, 1, 1).ino
        access = each.getxattr(g, _acl.ACCESS)
        assert {(_acl.GROUP, 7, 42), (_acl.MASK, 6, 0)} <= set(_acl.decode(access))
        each.chmod(g, 0o640)
        assert (_acl.MASK, 4, 0) in _acl.decode(each.getxattr(g, _acl.ACCESS))
        assert stat.S_IMODE(each.attr(g).mode) == 0o640
