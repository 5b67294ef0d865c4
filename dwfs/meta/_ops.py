"""The fixed set of write operations on the metadata, each one SQL statement.

The journal records an operation's name and its values, never SQL text, and
replay runs only the statements named here: an authentic record from a former
key holder can change rows, but cannot make replay ATTACH a file, write
outside our tables or run anything else. Every value is a parameter; nothing
is computed by SQL from the clock or from randomness, so replaying the same
operations in order rebuilds the same database.
"""

from __future__ import annotations

import functools
import re

from dwfs.errors import IntegrityError

INODE_FIELDS = ("mode", "uid", "gid", "nlink", "size", "atime", "mtime", "ctime", "rdev", "target")
"""The columns of an inode row that inode.set may assign."""

OPS: dict[str, str] = {
    "counter.next": "UPDATE counters SET value = value + 1 WHERE name = ? RETURNING value - 1",
    "inode.insert": "INSERT INTO inodes (ino, mode, uid, gid, nlink, size, atime, mtime, ctime, "
    "rdev, target, birth) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
    "inode.add_links": "UPDATE inodes SET nlink = nlink + ?, ctime = ? "
    "WHERE ino = ? AND death IS NULL",
    "inode.touch_dir": "UPDATE inodes SET mtime = ?, ctime = ?, nlink = nlink + ? "
    "WHERE ino = ? AND death IS NULL",
    "inode.delete": "DELETE FROM inodes WHERE ino = ?",
    "dirent.insert": "INSERT INTO dirents (parent, name, cookie, ino, birth) VALUES (?,?,?,?,?)",
    "dirent.delete": "DELETE FROM dirents WHERE parent = ? AND name = ? AND death IS NULL",
    "dirent.repoint": "UPDATE dirents SET ino = ? WHERE parent = ? AND name = ? AND death IS NULL",
    "xattr.insert": "INSERT INTO xattrs (ino, name, value, birth) VALUES (?,?,?,?)",
    "xattr.update": "UPDATE xattrs SET value = ? WHERE ino = ? AND name = ? AND death IS NULL",
    "xattr.delete": "DELETE FROM xattrs WHERE ino = ? AND name = ? AND death IS NULL",
    "xattr.delete_all": "DELETE FROM xattrs WHERE ino = ?",
    "inline.set": "INSERT INTO inline_data (ino, data, birth) VALUES (?,?,?) "
    "ON CONFLICT (ino) WHERE death IS NULL DO UPDATE SET data = excluded.data",
    "inline.delete": "DELETE FROM inline_data WHERE ino = ? AND death IS NULL",
    "inline.delete_all": "DELETE FROM inline_data WHERE ino = ?",
    "extent.insert": "INSERT INTO extents (ino, off, len, chunk, chunk_off, birth) "
    "VALUES (?,?,?,?,?,?)",
    "extent.delete": "DELETE FROM extents WHERE ino = ? AND off = ? AND death IS NULL",
    "extent.delete_all": "DELETE FROM extents WHERE ino = ?",
    "chunk.upsert": "INSERT INTO chunks (id, seq, segment, offset, shard_len, sealed_len, refs) "
    "VALUES (?,?,?,?,?,?,0) ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, "
    "segment = excluded.segment, offset = excluded.offset, "
    "shard_len = excluded.shard_len, sealed_len = excluded.sealed_len",
    "chunk.ref": "UPDATE chunks SET refs = refs + 1 WHERE id = ?",
    "chunk.unref": "UPDATE chunks SET refs = refs - 1 WHERE id = ?",
    "chunk.move": "UPDATE chunks SET seq = ?, segment = ?, offset = ?, shard_len = ?, "
    "sealed_len = ? WHERE id = ?",
    "chunk.drop_dead": "DELETE FROM chunks WHERE segment = ? AND refs <= 0",
    "logged.insert": "INSERT INTO logged (seq, ino, off, data) VALUES (?,?,?,?)",
    "logged.forget": "DELETE FROM logged WHERE ino = ? AND seq < ?",
    "logged.cut": "DELETE FROM logged WHERE ino = ? AND off >= ?",
    "logged.clip": "UPDATE logged SET data = substr(data, 1, ? - off) "
    "WHERE ino = ? AND off < ? AND off + length(data) > ?",
    "logged.delete_all": "DELETE FROM logged WHERE ino = ?",
}

_COLUMNS = {
    "inodes": "ino, mode, uid, gid, nlink, size, atime, mtime, ctime, rdev, target",
    "dirents": "parent, name, cookie, ino",
    "xattrs": "ino, name, value",
    "inline_data": "ino, data",
    "extents": "ino, off, len, chunk, chunk_off",
}
"""The columns of each versioned table, birth and death aside."""
ROW_KEYS = {
    "inode": ("inodes", "ino = ?1", 2),
    "dirent": ("dirents", "parent = ?1 AND name = ?2", 3),
    "xattr": ("xattrs", "ino = ?1 AND name = ?2", 3),
    "inline": ("inline_data", "ino = ?1", 2),
    "extent": ("extents", "ino = ?1 AND off = ?2", 3),
}
"""(table, the live row's key, the number of the parameter holding the open txg)."""
_UNPINNED = "(birth > ?3 OR birth >= ?2)"
"""Rows no snapshot sees: born after the newest snapshot (?3), or in the open txg (?2)."""


def _versioning() -> dict[str, str]:
    """The operations that keep what snapshots see: `keep` copies a live row as
    ended now, `renew` makes the live row's birth now (the two precede an
    update in place), `end` ends a live row; and, over all rows of an inode,
    the deletion of those no snapshot sees and the ending of the rest; and the
    deletion of ended rows only the snapshot between ?1 and ?3 (at ?2) saw."""
    ops = {}
    for kind, (table, key, now) in ROW_KEYS.items():
        columns = _COLUMNS[table]
        live = f"{key} AND death IS NULL"
        if kind != "extent":  # extents are never updated in place
            ops[f"{kind}.keep"] = (
                f"INSERT INTO {table} ({columns}, birth, death) "
                f"SELECT {columns}, birth, ?{now} FROM {table} WHERE {live}"
            )
            ops[f"{kind}.renew"] = f"UPDATE {table} SET birth = ?{now} WHERE {live}"
        ops[f"{kind}.end"] = f"UPDATE {table} SET death = ?{now} WHERE {live}"
        ops[f"{kind}.forget_between"] = (
            f"DELETE FROM {table} WHERE death IS NOT NULL AND death > ?2 AND death <= ?3 "
            "AND birth > ?1 AND birth <= ?2"
        )
    for kind in ("inode", "xattr", "inline", "extent"):
        table = ROW_KEYS[kind][0]
        ops[f"{kind}.delete_unpinned"] = (
            f"DELETE FROM {table} WHERE ino = ?1 AND death IS NULL AND {_UNPINNED}"
        )
        ops[f"{kind}.end_all"] = f"UPDATE {table} SET death = ?2 WHERE ino = ?1 AND death IS NULL"
    ops["extent.unref_unpinned"] = _count_refs(f"ino = ?1 AND death IS NULL AND {_UNPINNED}")
    ops["extent.unref_between"] = _count_refs(
        "death IS NOT NULL AND death > ?2 AND death <= ?3 AND birth > ?1 AND birth <= ?2"
    )
    return ops


def _count_refs(extents: str, sign: str = "-") -> str:
    """Take one reference from each chunk per extent row that `extents` selects
    (with sign "+", add one)."""
    return (
        f"UPDATE chunks SET refs = refs {sign} (SELECT count(*) FROM extents "
        f"WHERE chunk = chunks.id AND {extents}) "
        f"WHERE id IN (SELECT chunk FROM extents WHERE {extents})"
    )


def arity(name: str) -> int:
    """How many values operation `name` takes."""
    return _ARITY[name]


def _arity(sql: str) -> int:
    numbered = [int(n) for n in re.findall(r"\?(\d+)", sql)]
    return max(numbered) if numbered else sql.count("?")


_SEEN_AT_2 = "birth <= ?2 AND (death IS NULL OR death > ?2)"
SUBTREE = "sub"
"""The name of the recursive view of a subtree in the copy operations (SQLite's
authorizer reports reads through it under this name)."""
_SUBTREE = (
    f"WITH RECURSIVE {SUBTREE}(ino) AS (SELECT ?1 UNION SELECT d.ino FROM dirents d "
    f"JOIN {SUBTREE} ON d.parent = {SUBTREE}.ino "
    "WHERE d.birth <= ?2 AND (d.death IS NULL OR d.death > ?2)) "
)
_MAPPED = "CASE {0} WHEN ?1 THEN ?6 ELSE {0} + ?3 END"


def _copying() -> dict[str, str]:
    """Copies of a subtree as a snapshot shows it into live rows, sharing chunks.

    Parameters: ?1 the subtree's root, ?2 the snapshot's txg, ?3 the amount added
    to every other inode number, ?4 the open txg, ?5 the amount added to every
    entry's cookie, ?6 the inode number the root becomes (each operation takes
    the first of these it needs, see arity()). The root's own inode row
    is the caller's to write (a restore makes a new one, a rollback keeps the
    root's); everything else comes out whole, so a restore or a rollback is a few
    operations however big the tree, and a crash leaves all or none of it."""
    ino = _MAPPED.format("ino")
    inode_columns = _COLUMNS["inodes"].replace("ino, ", "", 1)
    ops = {
        "copy.inodes": f"{_SUBTREE}INSERT INTO inodes (ino, {inode_columns}, birth) "
        f"SELECT ino + ?3, {inode_columns}, ?4 FROM inodes "
        f"WHERE {_SEEN_AT_2} AND ino IN sub AND ino != ?1",
        "copy.dirents": f"{_SUBTREE}INSERT INTO dirents (parent, name, cookie, ino, birth) "
        f"SELECT {_MAPPED.format('parent')}, name, cookie + ?5, ino + ?3, ?4 FROM dirents "
        f"WHERE {_SEEN_AT_2} AND parent IN sub",
        "copy.refs": f"{_SUBTREE}UPDATE chunks SET refs = refs + (SELECT count(*) FROM extents "
        f"WHERE chunk = chunks.id AND {_SEEN_AT_2} AND ino IN sub) "
        f"WHERE id IN (SELECT chunk FROM extents WHERE {_SEEN_AT_2} AND ino IN sub)",
    }
    for table in ("xattrs", "inline_data", "extents"):
        rest = _COLUMNS[table].replace("ino, ", "", 1)
        ops[f"copy.{table}"] = (
            f"{_SUBTREE}INSERT INTO {table} (ino, {rest}, birth) "
            f"SELECT {ino}, {rest}, ?4 FROM {table} WHERE {_SEEN_AT_2} AND ino IN sub"
        )
    return ops


def _rolling_back() -> dict[str, str]:
    """What a rollback needs besides copying (?1 the open txg, ?2 the newest
    snapshot's txg, ?3 the root, whose inode stays): keeping an open file's rows
    alive (those a snapshot sees copied as ended now, each copy of an extent
    holding a reference to its chunk, and all renewed: born now),
    deleting the live rows no snapshot sees and ending the others, except those
    born now; and link counts recounted from the entries."""
    ops = {}
    for kind in ("xattr", "inline", "extent"):
        table = ROW_KEYS[kind][0]
        columns = _COLUMNS[table]
        live = "ino = ?3 AND death IS NULL"
        ops[f"{kind}.keep_all"] = (
            f"INSERT INTO {table} ({columns}, birth, death) "
            f"SELECT {columns}, birth, ?1 FROM {table} WHERE {live} AND birth <= ?2"
        )
        ops[f"{kind}.renew_all"] = f"UPDATE {table} SET birth = ?1 WHERE {live}"
    for table in ("dirents", "xattrs", "inline_data", "extents", "inodes"):
        spare, root = (" AND ino != ?3", " AND ino != ?2") if table == "inodes" else ("", "")
        ops[f"{table}.drop_unseen"] = (
            f"DELETE FROM {table} WHERE death IS NULL AND birth > ?2 AND birth < ?1{spare}"
        )
        ops[f"{table}.end_older"] = (
            f"UPDATE {table} SET death = ?1 WHERE death IS NULL AND birth < ?1{root}"
        )
    ops["extents.unref_unseen"] = _count_refs("death IS NULL AND birth > ?2 AND birth < ?1")
    ops["extent.ref_kept"] = _count_refs("ino = ?3 AND death = ?1", "+")
    directory = "({0}mode & 61440) = 16384"
    ops["inodes.recount"] = (
        f"UPDATE inodes SET nlink = CASE WHEN {directory.format('')} THEN 2 + (SELECT count(*) "
        "FROM dirents d JOIN inodes c ON c.ino = d.ino AND c.death IS NULL "
        f"WHERE d.parent = inodes.ino AND d.death IS NULL AND {directory.format('c.')}) "
        "ELSE (SELECT count(*) FROM dirents d WHERE d.ino = inodes.ino AND d.death IS NULL) "
        "END WHERE death IS NULL AND (birth = ?1 OR ino = ?2)"
    )
    ops["counter.raise"] = "UPDATE counters SET value = max(value, ?2) WHERE name = ?1"
    return ops


VERSIONED_TABLES = ("inodes", "dirents", "xattrs", "inline_data", "extents")
"""The tables whose rows carry birth and death."""
UNSEEN_ENDED = (
    "death IS NOT NULL AND NOT EXISTS (SELECT 1 FROM snapshots s "
    "WHERE s.txg >= {0}.birth AND s.txg < {0}.death)"
)
"""Ended rows of table {0} that no snapshot sees (nothing should keep them)."""


def _repairing() -> dict[str, str]:
    """fsck's repairs: ended rows no snapshot sees deleted (extents' chunk
    references first), a chunk's reference count set."""
    ops = {
        f"{table}.drop_unseen_ended": f"DELETE FROM {table} WHERE {UNSEEN_ENDED.format(table)}"
        for table in VERSIONED_TABLES
    }
    ops["extents.unref_unseen_ended"] = _count_refs(UNSEEN_ENDED.format("extents"))
    ops["chunk.set_refs"] = "UPDATE chunks SET refs = ? WHERE id = ?"
    return ops


OPS.update(_versioning())
OPS.update(_copying())
OPS.update(_rolling_back())
OPS.update(_repairing())
OPS.update(
    {
        "snapshot.insert": "INSERT INTO snapshots (name, id, txg, created, auto, held, "
        "held_until) VALUES (?,?,?,?,?,?,?)",
        "snapshot.delete": "DELETE FROM snapshots WHERE name = ?",
        "snapshot.hold": "UPDATE snapshots SET held = ?, held_until = ? WHERE name = ?",
        "setting.set": "INSERT INTO settings (name, value) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        "setting.delete": "DELETE FROM settings WHERE name = ?",
        "remote.add": "INSERT OR REPLACE INTO remote (id, pack, offset, length) VALUES (?,?,?,?)",
        "remote.clear": "DELETE FROM remote",
        "remote.drop_dead_in": "DELETE FROM remote WHERE pack = ? AND NOT EXISTS "
        "(SELECT 1 FROM chunks WHERE chunks.id = remote.id AND refs > 0)",
        "pack.add": "INSERT OR REPLACE INTO packs (pack, bytes) VALUES (?, ?)",
        "pack.estimate": "INSERT OR IGNORE INTO packs (pack, bytes) "
        "SELECT pack, max(offset + length) FROM remote GROUP BY pack",
        "pack.forget_unused": "DELETE FROM packs WHERE pack NOT IN (SELECT pack FROM remote)",
        "pack.clear": "DELETE FROM packs",
        "remote.drop_dead": "DELETE FROM remote WHERE id IN "
        "(SELECT id FROM chunks WHERE segment = ? AND refs <= 0)",
        "pin.add": "INSERT OR IGNORE INTO pins (ino) VALUES (?)",
        "pin.remove": "DELETE FROM pins WHERE ino = ?",
        "chunk.evict": "UPDATE chunks SET seq = 0, segment = -1, offset = 0, shard_len = 0 "
        "WHERE id = ?",
        "chunk.evict_all": "UPDATE chunks SET seq = 0, segment = -1, offset = 0, shard_len = 0 "
        "WHERE segment >= ?",
    }
)
_ARITY = {name: _arity(sql) for name, sql in OPS.items()}
INODE_SET = "inode.set"
"""Assigns some of INODE_FIELDS of one live inode: values (ino, name, value, ...)."""


KEEPING_CHUNKS = frozenset(
    {
        "counter.next",
        "counter.raise",
        INODE_SET,
        "inode.insert",
        "inode.add_links",
        "inode.touch_dir",
        "dirent.insert",
        "dirent.delete",
        "dirent.repoint",
        "xattr.insert",
        "xattr.update",
        "xattr.delete",
        "inline.set",
        "inline.delete",
        "extent.insert",
        "extent.delete",
        "chunk.upsert",
        "chunk.ref",
        "chunk.move",
        "logged.insert",
        "logged.forget",
        "logged.cut",
        "logged.clip",
        "pin.add",
        "pin.remove",
    }
)
"""Operations that end no chunk's life (no reference dropped, no row deleted) and
leave the remote table alone: after a txg of only these, every chunk live before
is still live and on the remote exactly if it was. Most of what writing files
does."""


@functools.lru_cache(maxsize=64)
def inode_set_sql(names: tuple[str, ...]) -> str:
    """The statement of inode.set for these columns (each checked against INODE_FIELDS;
    kept, since a few sets of columns make nearly every call).

    Raises:
        IntegrityError: a name is not an inode field.
    """
    if not names or any(n not in INODE_FIELDS for n in names):
        raise IntegrityError(f"inode.set of columns {names!r}, which are not inode fields")
    assignments = ", ".join(f"{n} = ?" for n in names)
    return f"UPDATE inodes SET {assignments} WHERE ino = ? AND death IS NULL"


def statement(name: str, values: tuple[object, ...]) -> tuple[str, tuple[object, ...]]:
    """The SQL and parameters that operation `name` with `values` runs.

    Raises:
        IntegrityError: an unknown operation, or values of the wrong shape.
    """
    if name == INODE_SET:
        if len(values) < 3 or len(values) % 2 != 1:
            raise IntegrityError("inode.set needs an inode and name/value pairs")
        names = values[1::2]
        if not all(isinstance(n, str) for n in names):
            raise IntegrityError("inode.set column names must be text")
        sql = inode_set_sql(tuple(str(n) for n in names))
        return sql, (*values[2::2], values[0])
    fixed = OPS.get(name)
    if fixed is None:
        raise IntegrityError(f"unknown metadata operation {name[:40]!r}")
    if _ARITY[name] != len(values):
        raise IntegrityError(f"metadata operation {name} takes {_ARITY[name]} values")
    return fixed, values
