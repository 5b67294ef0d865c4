"""fsck's checks: a sound tree passes, each broken invariant is named, and the
repairs fix exactly the ones that need no guess."""

from __future__ import annotations

import stat
from collections.abc import Callable

from dwfs.meta import MetaDB, TreeRows, check, repair

DIR = stat.S_IFDIR | 0o755
FILE = stat.S_IFREG | 0o644


def sound() -> tuple[MetaDB, TreeRows]:
    db = MetaDB()
    rows = TreeRows(db)
    rows.insert_inode((1, DIR, 0, 0, 2, 0, 0, 0, 0, 0, None))
    rows.insert_inode((2, FILE, 0, 0, 1, 20, 0, 0, 0, 0, None))
    rows.add_dirent(1, b"f", 2)
    db.execute("chunk.upsert", (b"c" * 32, 0, 0, 0, 0, 0))
    rows.add_extent(2, 0, 10, b"c" * 32, 0)
    return db, rows


def kinds(db: MetaDB) -> set[str]:
    return {p.kind for p in check(db)}


def test_a_sound_tree_passes() -> None:
    db, _ = sound()
    assert check(db) == []


def test_each_broken_invariant_is_named() -> None:
    breakages: dict[str, Callable[[MetaDB, TreeRows], object]] = {
        "reference count": lambda db, rows: db.execute("chunk.set_refs", (5, b"c" * 32)),
        "entry without inode": lambda db, rows: rows.add_dirent(1, b"ghost", 99),
        "link count": lambda db, rows: rows.set_inode(2, {"nlink": 3}),
        "orphan": lambda db, rows: rows.insert_inode((3, FILE, 0, 0, 0, 0, 0, 0, 0, 0, None)),
        "content past the size": lambda db, rows: rows.set_inode(2, {"size": 5}),
        "overlapping extents": lambda db, rows: rows.add_extent(2, 5, 10, b"c" * 32, 0),
        "inline data and extents": lambda db, rows: rows.set_inline(2, b"x"),
        "ended extents row no snapshot sees": lambda db, rows: db.execute("extent.end", (2, 0, 7)),
    }
    for kind, brk in breakages.items():
        db, rows = sound()
        brk(db, rows)
        assert kind in kinds(db), kind


def test_extents_that_start_together_overlap_too() -> None:
    """An extent stored twice at the same offset (a flush that added what it
    should have replaced) overlaps itself, as one starting inside another does."""
    for off, length in ((0, 10), (0, 4), (3, 2)):
        db, rows = sound()
        rows.add_extent(2, off, length, b"c" * 32, 0)
        assert [p.kind for p in check(db)].count("overlapping extents") == 1, (off, length)
    db, rows = sound()
    rows.add_extent(2, 10, 10, b"c" * 32, 0)  # right after the first: no overlap
    assert "overlapping extents" not in kinds(db)


def test_repair_fixes_what_needs_no_guess_and_reports_the_rest() -> None:
    db, rows = sound()
    db.execute("chunk.set_refs", (5, b"c" * 32))
    rows.set_inode(2, {"nlink": 3})
    rows.insert_inode((3, FILE, 0, 0, 0, 0, 0, 0, 0, 0, None))
    rows.add_dirent(1, b"ghost", 99)
    assert repair(db, rows) >= 3
    assert kinds(db) == {"entry without inode"}, "which entry is wrong needs a person"
    assert db.one("SELECT refs FROM chunks") == (1,)
