"""Statements about one inode find its rows through an index: a scan of a whole
table per inode makes deleting n files cost n squared (a purge of 10,000 small
files, each with a row in inline_data, scanned it 10,000 times), and so do
statements about one pack of the remote tier (a repack asks for each one's rows)."""

from __future__ import annotations

import re

import pytest

from dwfs.meta import MetaDB
from dwfs.meta._ops import OPS
from dwfs.meta._rows import View

PER_INODE = sorted(
    name for name, sql in OPS.items() if re.search(r"\bWHERE ino = \?", sql) and "sub" not in sql
)
PER_PACK = sorted(name for name, sql in OPS.items() if "WHERE pack = ?" in sql)


def plan(db: MetaDB, sql: str) -> list[str]:
    numbered = [int(n) for n in re.findall(r"\?(\d+)", sql)]
    arity = max(numbered) if numbered else sql.count("?")
    return [row[-1] for row in db.conn.execute("EXPLAIN QUERY PLAN " + sql, (1,) * arity)]


def test_the_per_inode_and_per_pack_statements_are_found() -> None:
    assert {"inline.delete_all", "xattr.delete_all", "extent.delete_all", "inode.delete"} <= set(
        PER_INODE
    )
    assert "remote.drop_dead_in" in PER_PACK


@pytest.mark.parametrize("name", PER_INODE)
def test_a_per_inode_statement_searches_an_index(name: str) -> None:
    steps = plan(MetaDB(), OPS[name])
    assert not [s for s in steps if s.startswith("SCAN")], steps


@pytest.mark.parametrize("name", PER_PACK)
def test_a_per_pack_statement_searches_the_remote_by_pack(name: str) -> None:
    """Nor does it scan another table: `id NOT IN (SELECT id FROM chunks ...)`
    listed every live chunk once per pack, 0.35 s per pack of a repack with
    200,000 chunks, all on the trio thread."""
    steps = plan(MetaDB(), OPS[name])
    assert not [s for s in steps if s.startswith("SCAN")], steps


@pytest.mark.parametrize("table", ["inline_data", "xattrs", "extents", "inodes"])
def test_a_snapshot_s_view_of_one_inode_searches_an_index(table: str) -> None:
    seen, _ = View(txg=5).where()
    steps = plan(MetaDB(), f"SELECT * FROM {table} WHERE {seen} AND ino = ?")
    assert steps and all(s.startswith("SEARCH") for s in steps), steps


def test_an_image_from_before_these_indexes_gains_them_when_loaded() -> None:
    db = MetaDB()
    db.conn.set_authorizer(None)
    db.conn.execute("DROP INDEX inline_by_ino")
    db.conn.execute("DROP INDEX xattrs_by_ino")
    again = MetaDB(db.conn.serialize())
    assert not [s for s in plan(again, OPS["inline.delete_all"]) if s.startswith("SCAN")]
