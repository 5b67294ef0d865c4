"""Images made before snapshots (one inode row per inode, keyed by it) load into
the versioned schema with every row kept, and hostile images never get to run
a migration."""

from __future__ import annotations

import sqlite3

import pytest

from dwfs.errors import IntegrityError
from dwfs.meta import MetaDB
from dwfs.meta._schema import SCHEMA

OLD_INODES = """CREATE TABLE inodes(
    ino INTEGER PRIMARY KEY, mode INT NOT NULL, uid INT NOT NULL, gid INT NOT NULL,
    nlink INT NOT NULL, size INT NOT NULL, atime INT NOT NULL, mtime INT NOT NULL,
    ctime INT NOT NULL, rdev INT NOT NULL, target BLOB, birth INT NOT NULL, death INT);
"""


def old_image() -> bytes:
    """A database as the release before snapshots made it."""
    start = SCHEMA.index("CREATE TABLE inodes(")
    end = SCHEMA.index("CREATE TABLE dirents(")
    schema = (
        SCHEMA[:start]
        + OLD_INODES
        + SCHEMA[end : SCHEMA.index("CREATE TABLE IF NOT EXISTS snapshots")]
    )
    conn = sqlite3.connect(":memory:")
    conn.executescript(schema)
    conn.execute("INSERT INTO inodes VALUES (1, 16877, 0, 0, 2, 0, 1, 2, 3, 0, NULL, 1, NULL)")
    conn.execute("INSERT INTO inodes VALUES (7, 33188, 5, 5, 1, 9, 1, 2, 3, 0, NULL, 4, NULL)")
    conn.execute("INSERT INTO dirents VALUES (1, 'f', 3, 7, 4, NULL)")
    image = conn.serialize()
    conn.close()
    return image


def test_an_image_from_before_snapshots_loads_with_every_row() -> None:
    db = MetaDB(old_image(), txg=10)
    assert db.query("SELECT ino, uid, size, birth FROM inodes ORDER BY ino") == [
        (1, 0, 0, 1),
        (7, 5, 9, 4),
    ]
    assert db.query("SELECT count(*) FROM snapshots") == [(0,)]
    db.execute("inode.keep", (7, 11))  # a second version of inode 7 now fits
    assert db.query("SELECT count(*) FROM inodes WHERE ino = 7") == [(2,)]
    again = MetaDB(db.image(), txg=11)
    assert again.query("SELECT count(*) FROM inodes") == [(3,)]


def test_an_image_with_a_trigger_is_refused_before_any_migration() -> None:
    evil = sqlite3.connect(":memory:")
    evil.deserialize(old_image())
    evil.execute("CREATE TRIGGER t AFTER INSERT ON inodes BEGIN DELETE FROM dirents; END")
    with pytest.raises(IntegrityError, match="triggers or views"):
        MetaDB(evil.serialize())
