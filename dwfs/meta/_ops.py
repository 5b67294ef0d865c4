"""The fixed set of write operations on the metadata, each one SQL statement.

The journal records an operation's name and its values, never SQL text, and
replay runs only the statements named here: an authentic record from a former
key holder can change rows, but cannot make replay ATTACH a file, write
outside our tables or run anything else. Every value is a parameter; nothing
is computed by SQL from the clock or from randomness, so replaying the same
operations in order rebuilds the same database.
"""

from __future__ import annotations

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
_ARITY = {name: sql.count("?") for name, sql in OPS.items()}
INODE_SET = "inode.set"
"""Assigns some of INODE_FIELDS of one live inode: values (ino, name, value, ...)."""


def inode_set_sql(names: tuple[str, ...]) -> str:
    """The statement of inode.set for these columns (each checked against INODE_FIELDS).

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
