"""The metadata's invariants, checked against themselves (dwfsctl fsck).

Each check is one query that lists what breaks an invariant, so a test that
ends with a check fails at the change that broke it. Repairs are offered only
where the right answer is certain: reference counts and link counts recounted
from the rows, ended rows no snapshot sees deleted, orphans purged.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from dwfs.meta._db import MetaDB
from dwfs.meta._ops import UNSEEN_ENDED, VERSIONED_TABLES
from dwfs.meta._rows import TreeRows

_DIR = "({0}.mode & 61440) = 16384"
_REG = "({0}.mode & 61440) = 32768"

CHECKS: dict[str, tuple[str, str]] = {
    "reference count": (
        "SELECT hex(c.id), c.refs, (SELECT count(*) FROM extents e WHERE e.chunk = c.id) AS n "
        "FROM chunks c WHERE c.refs != n",
        "chunk {0}: {1} references recorded, {2} extent rows",
    ),
    "extent without chunk": (
        "SELECT ino, off, hex(chunk) FROM extents WHERE chunk NOT IN (SELECT id FROM chunks)",
        "inode {0} at {1}: chunk {2} is not in the chunk table",
    ),
    "chunk nowhere": (
        "SELECT hex(c.id) FROM chunks c WHERE c.refs > 0 AND c.segment < 0 AND NOT EXISTS "
        "(SELECT 1 FROM remote r WHERE r.id = c.id)",
        "chunk {0} has no local copy and is not on the remote",
    ),
    "entry without inode": (
        "SELECT d.parent, d.name, d.ino FROM dirents d WHERE d.death IS NULL AND NOT EXISTS "
        "(SELECT 1 FROM inodes i WHERE i.ino = d.ino AND i.death IS NULL)",
        "entry {1!r} in directory {0} names inode {2}, which does not exist",
    ),
    "entry outside a directory": (
        "SELECT d.parent, d.name FROM dirents d WHERE d.death IS NULL AND NOT EXISTS "
        "(SELECT 1 FROM inodes i WHERE i.ino = d.parent AND i.death IS NULL AND "
        f"{_DIR.format('i')})",
        "entry {1!r} is in {0}, which is not a directory",
    ),
    "snapshot entry without inode": (
        "SELECT s.name, d.parent, d.name, d.ino FROM snapshots s JOIN dirents d "
        "ON d.birth <= s.txg AND (d.death IS NULL OR d.death > s.txg) WHERE NOT EXISTS "
        "(SELECT 1 FROM inodes i WHERE i.ino = d.ino AND i.birth <= s.txg "
        "AND (i.death IS NULL OR i.death > s.txg))",
        "snapshot {0}: entry {2!r} in {1} names inode {3}, which it does not hold",
    ),
    "link count": (
        "SELECT ino, nlink, CASE WHEN i.mode & 61440 = 16384 THEN 2 + (SELECT count(*) "
        "FROM dirents d JOIN inodes c ON c.ino = d.ino AND c.death IS NULL "
        f"WHERE d.parent = i.ino AND d.death IS NULL AND {_DIR.format('c')}) ELSE (SELECT count(*) "
        "FROM dirents d WHERE d.ino = i.ino AND d.death IS NULL) END AS n "
        "FROM inodes i WHERE death IS NULL AND nlink != n AND nlink != 0",
        "inode {0}: link count {1}, {2} entries",
    ),
    "orphan": (
        "SELECT ino FROM inodes i WHERE death IS NULL AND nlink = 0 AND NOT EXISTS "
        "(SELECT 1 FROM dirents d WHERE d.ino = i.ino AND d.death IS NULL)",
        "inode {0} has no name left and was not removed",
    ),
    "content past the size": (
        "SELECT i.ino, i.size, max(e.off + e.len) AS n FROM inodes i JOIN extents e "
        "ON e.ino = i.ino AND e.death IS NULL WHERE i.death IS NULL GROUP BY i.ino "
        "HAVING n > i.size",
        "inode {0}: size {1}, extents up to {2}",
    ),
    "overlapping extents": (
        "SELECT a.ino, a.off, b.off FROM extents a JOIN extents b ON a.ino = b.ino "
        "AND a.death IS NULL AND b.death IS NULL AND b.off >= a.off AND b.off < a.off + a.len "
        "AND (b.off > a.off OR b.rowid > a.rowid)",
        "inode {0}: the extents at {1} and {2} overlap",
    ),
    "inline data and extents": (
        "SELECT t.ino FROM inline_data t WHERE t.death IS NULL AND EXISTS "
        "(SELECT 1 FROM extents e WHERE e.ino = t.ino AND e.death IS NULL)",
        "inode {0} has both inline data and extents",
    ),
    "contents of a non-file": (
        f"SELECT i.ino FROM inodes i WHERE i.death IS NULL AND NOT {_REG.format('i')} AND EXISTS "
        "(SELECT 1 FROM extents e WHERE e.ino = i.ino AND e.death IS NULL)",
        "inode {0} is not a regular file but has extents",
    ),
}
for _table in VERSIONED_TABLES:
    CHECKS[f"ended {_table} row no snapshot sees"] = (
        f"SELECT count(*) AS n FROM {_table} WHERE {UNSEEN_ENDED.format(_table)} HAVING n > 0",
        f"{{0}} ended {_table} rows no snapshot sees",
    )

REPAIRABLE = frozenset(
    {"reference count", "link count", "orphan"}
    | {f"ended {table} row no snapshot sees" for table in VERSIONED_TABLES}
)


@dataclasses.dataclass(frozen=True)
class Problem:
    kind: str
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "detail": self.detail, "repairable": self.kind in REPAIRABLE}


def check(db: MetaDB, open_inodes: frozenset[int] = frozenset()) -> list[Problem]:
    """Every broken invariant (an inode open now may be an orphan: it goes at its
    last close)."""
    problems = []
    for kind, (sql, detail) in CHECKS.items():
        for row in db.query(sql):
            if kind == "orphan" and int(row[0]) in open_inodes:
                continue
            shown = [bytes(v) if isinstance(v, bytes | memoryview) else v for v in row]
            problems.append(Problem(kind, detail.format(*shown)))
    return problems


def repair(db: MetaDB, rows: TreeRows, open_inodes: frozenset[int] = frozenset()) -> int:
    """Fix what can be fixed without guessing; how many fixes."""
    fixes = 0
    with db.transaction():
        for ino in [int(r[0]) for r in db.query(CHECKS["orphan"][0])]:
            if ino not in open_inodes:
                rows.purge(ino)
                fixes += 1
        for table in VERSIONED_TABLES:
            if table == "extents":
                fixes += db.execute("extents.unref_unseen_ended")
            fixes += db.execute(f"{table}.drop_unseen_ended")
        for ino, _, n in db.query(CHECKS["link count"][0]):
            rows.set_inode(int(ino), {"nlink": int(n)})
            fixes += 1
        for chunk, _, n in db.query(
            "SELECT c.id, c.refs, (SELECT count(*) FROM extents e WHERE e.chunk = c.id) AS n "
            "FROM chunks c WHERE c.refs != n"
        ):
            db.execute("chunk.set_refs", (int(n), bytes(chunk)))
            fixes += 1
    return fixes
