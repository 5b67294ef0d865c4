"""The namespace: inodes, directory entries, links, renames and xattrs, as rows.

Synchronous and pure database logic, each operation one transaction, so POSIX
rules can be tested without a mount. Raises DwfsError subclasses that carry the
errno a syscall should fail with.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from typing import Any

from dwfs.errors import (
    Exists,
    InvalidArgument,
    IsADirectory,
    NameTooLong,
    NoAttribute,
    NotADirectory,
    NotEmpty,
    NotFound,
    NotPermitted,
)
from dwfs.meta import INODE_COLUMNS, MetaDB, TreeRows
from dwfs.vfs import _acl
from dwfs.vfs._attrs import MAX_NAME, ROOT_INO, Attr, now_ns

XATTR_CREATE, XATTR_REPLACE = 1, 2
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2


def check_name(name: bytes) -> None:
    if len(name) > MAX_NAME:
        raise NameTooLong(f"a name is at most {MAX_NAME} bytes")
    if not name or b"/" in name or b"\0" in name:
        raise InvalidArgument("invalid file name")


ATTR_CACHE_ROWS = 65536
"""Inode rows kept in memory before the cache starts over."""


_COLUMN = {name: i for i, name in enumerate(INODE_COLUMNS.split(", "))}


class TreeWatcher:
    """Who is told of the tree's changes: does nothing until a front end sets it."""

    def __init__(self) -> None:
        self.changed: Callable[[int], None] = lambda ino: None
        """An inode's row changed (or it went)."""
        self.xattrs_changed: Callable[[int], None] = lambda ino: None
        """An inode's xattrs changed (its row may have too)."""
        self.born_bare: Callable[[int], object] = lambda ino: None
        """A new inode has no xattr (none inherited), until xattrs_changed."""
        self.renamed: Callable[[int, bytes], None] = lambda parent, name: None
        """A name in a directory came, went or names another inode now."""
        self.reset: Callable[[], None] = lambda: None
        """Anything may have changed (a restore, a rollback, a transaction undone)."""


class Tree:
    """The namespace over the metadata database.

    Inode rows read are cached (getattr, lookup and permission checks read the
    same few rows over and over); every statement that changes an inode row goes
    through this class, which drops the row from the cache (or, for plain
    assignments, updates it), and a rolled-back transaction empties it.
    """

    def __init__(self, db: MetaDB) -> None:
        self.db = db
        self.rows = TreeRows(db)
        self._rows: dict[int, tuple[Any, ...]] = {}
        self.watcher = TreeWatcher()
        """Told of every change of an inode row or a name (a front end that
        answers lookups from its own copy drops what went stale)."""
        db.on_rollback(self._rolled_back)
        self._acls_seen: dict[bytes, bool] = {}
        """Per ACL xattr name, whether any inode has or had one (True is kept
        once set: it errs only towards asking the database)."""

    def _rolled_back(self) -> None:
        self._rows.clear()
        self.watcher.reset()

    # -- reading ----------------------------------------------------------------

    def attr(self, ino: int) -> Attr:
        row = self._rows.get(ino)
        if row is None:
            row = self.rows.inode(ino)
            if row is None:
                raise NotFound(f"inode {ino} does not exist")
            if len(self._rows) >= ATTR_CACHE_ROWS:
                self._rows.clear()
            self._rows[ino] = row
        return Attr.from_row(row)

    def directory(self, ino: int) -> Attr:
        attr = self.attr(ino)
        if not attr.is_dir:
            raise NotADirectory("not a directory")
        return attr

    def find(self, parent: int, name: bytes) -> int | None:
        return self.rows.dirent(parent, name)

    def lookup(self, parent: int, name: bytes) -> int:
        self.directory(parent)
        if name == b".":
            return parent
        if name == b"..":
            return self.parent_of(parent)
        check_name(name)
        ino = self.find(parent, name)
        if ino is None:
            raise NotFound("no such file or directory")
        return ino

    def parent_of(self, ino: int) -> int:
        if ino == ROOT_INO:
            return ROOT_INO
        parent = self.rows.parent_of(ino)
        return ROOT_INO if parent is None else parent

    def entries(self, parent: int, after: int, limit: int) -> list[tuple[int, bytes, int]]:
        """(cookie, name, ino) of entries with cookie > after, in cookie order."""
        return self.rows.entries(parent, after, limit)

    def is_empty(self, ino: int) -> bool:
        return not self.rows.has_entries(ino)

    def inode_count(self) -> int:
        return self.rows.inode_count()

    # -- writing ----------------------------------------------------------------

    def ensure_root(self, uid: int, gid: int) -> None:
        if not self.rows.has_root():
            now = now_ns()
            row = (ROOT_INO, stat.S_IFDIR | 0o755, uid, gid, 2, 0, now, now, now, 0, None)
            self.rows.insert_inode(row)

    def set_fields(self, ino: int, **fields: int | bytes | None) -> None:
        """Assign columns of one inode row; a cached row takes the same values, so
        the getattr that follows (a setattr's reply, say) reads no row again."""
        self.record_fields(ino, **fields)
        self.watcher.changed(ino)

    def record_fields(self, ino: int, **fields: int | bytes | None) -> None:
        """set_fields() of values a stat of the inode already shows, so the
        watcher is not told: the write-behind recording a file's size and times
        from the file's state in memory, which attributes are answered from
        meanwhile."""
        row = self._rows.pop(ino, None)
        self.rows.set_inode(ino, fields)
        self._write_through(ino, row, fields)

    def _add_links(self, ino: int, delta: int) -> None:
        row = self._rows.pop(ino, None)
        now = now_ns()
        self.rows.add_links(ino, delta, now)
        self.watcher.changed(ino)
        if row is not None:
            self._write_through(ino, row, {"nlink": row[_COLUMN["nlink"]] + delta, "ctime": now})

    def _touch_dir(self, ino: int, nlink_delta: int = 0) -> None:
        row = self._rows.pop(ino, None)
        now = now_ns()
        self.rows.touch_dir(ino, now, nlink_delta)
        self.watcher.changed(ino)
        if row is not None:
            nlink = row[_COLUMN["nlink"]] + nlink_delta
            self._write_through(ino, row, {"mtime": now, "ctime": now, "nlink": nlink})

    def _write_through(
        self, ino: int, row: tuple[Any, ...] | None, fields: dict[str, int | bytes | None]
    ) -> None:
        """Put back a row dropped from the cache, with the values just written."""
        if row is not None:
            updated = list(row)
            for name, value in fields.items():
                updated[_COLUMN[name]] = value
            self._rows[ino] = tuple(updated)

    def _add_entry(self, parent: int, name: bytes, ino: int) -> None:
        self.rows.add_dirent(parent, name, ino)
        self.watcher.renamed(parent, name)

    def _remove_entry(self, parent: int, name: bytes) -> None:
        self.rows.remove_dirent(parent, name)
        self.watcher.renamed(parent, name)

    def create(
        self,
        parent: int,
        name: bytes,
        mode: int,
        uid: int,
        gid: int,
        rdev: int = 0,
        target: bytes | None = None,
        umask: int = 0,
    ) -> Attr:
        """A new inode linked at parent/name (regular file, directory, node or symlink).

        The parent's default ACL, if it has one, replaces the umask (see _acl).
        """
        check_name(name)
        with self.db.transaction():
            pattr = self.directory(parent)
            if pattr.mode & stat.S_ISGID:
                gid = pattr.gid
                if stat.S_ISDIR(mode):
                    mode |= stat.S_ISGID
            is_dir = stat.S_ISDIR(mode)
            acls: dict[bytes, bytes | None] = {}
            default = self._acl_of(parent, _acl.DEFAULT)
            if default is not None and not stat.S_ISLNK(mode):
                mode, acls[_acl.ACCESS], acls[_acl.DEFAULT] = _acl.inherit(default, mode, is_dir)
            elif not stat.S_ISLNK(mode):
                mode &= ~(umask & 0o777)
            ino = self.rows.next_ino()
            now = now_ns()
            size = len(target) if target is not None else 0
            row = (ino, mode, uid, gid, 2 if is_dir else 1, size, now, now, now, rdev, target)
            self.rows.insert_inode(row)
            self._rows[ino] = row
            self._add_entry(parent, name, ino)  # Exists when the name is taken
            self._touch_dir(parent, 1 if is_dir else 0)
            inherited = False
            for key, value in acls.items():
                if value is not None:
                    self._insert_xattr(ino, key, value)
                    inherited = True
            if not inherited:
                self.watcher.born_bare(ino)
            return self.attr(ino)

    def link(self, ino: int, parent: int, name: bytes) -> Attr:
        check_name(name)
        with self.db.transaction():
            if self.attr(ino).is_dir:
                raise NotPermitted("hard links to directories are not allowed")
            self.directory(parent)
            self._add_entry(parent, name, ino)  # Exists when the name is taken
            self._add_links(ino, 1)
            self._touch_dir(parent)
            return self.attr(ino)

    def unlink(self, parent: int, name: bytes) -> int:
        """Remove a non-directory entry; the inode it named (its nlink dropped by one)."""
        with self.db.transaction():
            ino = self.lookup(parent, name)
            if self.attr(ino).is_dir:
                raise IsADirectory("is a directory")
            self._remove_entry(parent, name)
            self._add_links(ino, -1)
            self._touch_dir(parent)
            return ino

    def rmdir(self, parent: int, name: bytes) -> int:
        with self.db.transaction():
            if name == b".":
                raise InvalidArgument("cannot remove '.'")
            if name == b"..":
                raise NotEmpty("cannot remove '..'")
            ino = self.lookup(parent, name)
            self.directory(ino)
            if not self.is_empty(ino):
                raise NotEmpty("directory not empty")
            self._remove_entry(parent, name)
            self.set_fields(ino, nlink=0, ctime=now_ns())
            self._touch_dir(parent, -1)
            return ino

    def _is_ancestor(self, ancestor: int, ino: int) -> bool:
        while True:
            if ino == ancestor:
                return True
            if ino == ROOT_INO:
                return False
            ino = self.parent_of(ino)

    def rename(self, p_old: int, n_old: bytes, p_new: int, n_new: bytes, flags: int) -> int | None:
        """Move an entry; the inode whose last link this dropped, if any (to purge)."""
        check_name(n_new)
        with self.db.transaction():
            self.directory(p_new)
            src = self.lookup(p_old, n_old)
            dst = self.find(p_new, n_new)
            src_attr = self.attr(src)
            if src_attr.is_dir and self._is_ancestor(src, p_new):
                raise InvalidArgument("cannot move a directory into itself")
            if flags & RENAME_EXCHANGE:
                if dst is None:
                    raise NotFound("no such file or directory")
                self._exchange(p_old, n_old, src, p_new, n_new, dst)
                return None
            if dst is not None and flags & RENAME_NOREPLACE:
                raise Exists("file exists")
            if dst == src:
                return None
            dropped = None
            if dst is not None:
                dropped = self._replace_target(src_attr, p_new, n_new, dst)
            self._remove_entry(p_old, n_old)
            self._add_entry(p_new, n_new, src)
            delta = 1 if src_attr.is_dir and p_old != p_new else 0
            self._touch_dir(p_old, -delta)
            self._touch_dir(p_new, delta)
            self.set_fields(src, ctime=now_ns())
            return dropped

    def _replace_target(self, src_attr: Attr, parent: int, name: bytes, dst: int) -> int:
        dst_attr = self.attr(dst)
        if src_attr.is_dir and not dst_attr.is_dir:
            raise NotADirectory("not a directory")
        if not src_attr.is_dir and dst_attr.is_dir:
            raise IsADirectory("is a directory")
        if dst_attr.is_dir:
            if not self.is_empty(dst):
                raise NotEmpty("directory not empty")
            self.set_fields(dst, nlink=0, ctime=now_ns())
            self._touch_dir(parent, -1)
        else:
            self._add_links(dst, -1)
        self._remove_entry(parent, name)
        return dst

    def _exchange(self, p1: int, n1: bytes, i1: int, p2: int, n2: bytes, i2: int) -> None:
        a1, a2 = self.attr(i1), self.attr(i2)
        if a2.is_dir and self._is_ancestor(i2, p1):
            raise InvalidArgument("cannot move a directory into itself")
        for parent, name, ino in ((p1, n1, i2), (p2, n2, i1)):
            self.rows.repoint_dirent(parent, name, ino)
            self.watcher.renamed(parent, name)
        if p1 != p2 and a1.is_dir != a2.is_dir:
            moved_to_p2 = 1 if a1.is_dir else -1
            self._touch_dir(p1, -moved_to_p2)
            self._touch_dir(p2, moved_to_p2)
        else:
            self._touch_dir(p1)
            self._touch_dir(p2)
        now = now_ns()
        self.set_fields(i1, ctime=now)
        self.set_fields(i2, ctime=now)

    # -- snapshots ----------------------------------------------------------------

    def restore(self, txg: int, ino: int, parent: int, name: bytes) -> Attr:
        """Link at parent/name a copy of an inode as the snapshot at txg shows it,
        with everything below it, sharing its chunks (no byte is copied)."""
        check_name(name)
        with self.db.transaction():
            self.directory(parent)
            if self.find(parent, name) is not None:
                raise Exists(f"{name.decode(errors='replace')} exists: choose another name")
            new = self.rows.copy_subtree(txg, ino)
            self._add_entry(parent, name, new)
            self._touch_dir(parent, 1 if self.attr(new).is_dir else 0)
            self.rows.recount_links(parent)
            self._rows.clear()
            self.watcher.reset()
            return self.attr(new)

    def roll_back(self, txg: int, keep_open: list[int]) -> None:
        """Make the live tree the snapshot's at txg (see TreeRows.roll_back)."""
        with self.db.transaction():
            self.rows.roll_back(txg, ROOT_INO, keep_open)
            self._rows.clear()
            self.watcher.reset()

    # -- xattrs -------------------------------------------------------------------

    def _xattr(self, ino: int, name: bytes) -> bytes | None:
        return self.rows.xattr(ino, name)

    def _acl_of(self, ino: int, name: bytes) -> bytes | None:
        """An ACL of ino, asked of the database only when some inode has or had
        one by that name: most pools never set an ACL, and every create asks
        for its parent's default ACL and every chmod for the access ACL."""
        seen = self._acls_seen.get(name)
        if seen is None:
            seen = self._acls_seen[name] = self.rows.xattr_ever_set(name)
        return self._xattr(ino, name) if seen else None

    def _insert_xattr(self, ino: int, name: bytes, value: bytes) -> None:
        if name in (_acl.ACCESS, _acl.DEFAULT):
            self._acls_seen[name] = True
        self.rows.insert_xattr(ino, name, value)
        self.watcher.xattrs_changed(ino)

    def getxattr(self, ino: int, name: bytes) -> bytes:
        self.attr(ino)
        value = self._xattr(ino, name)
        if value is None:
            raise NoAttribute("no such attribute")
        return value

    def listxattr(self, ino: int) -> list[bytes]:
        self.attr(ino)
        return self.rows.xattr_names(ino)

    def setxattr(self, ino: int, name: bytes, value: bytes, flags: int) -> None:
        """Set an xattr; a POSIX ACL also sets the mode bits it implies, and an access
        ACL that says no more than the mode is not kept (as ext4 does)."""
        if not name:
            raise InvalidArgument("empty attribute name")
        if len(name) > MAX_NAME:
            raise NameTooLong("an attribute name is at most 255 bytes")
        with self.db.transaction():
            attr = self.attr(ino)
            exists = self._xattr(ino, name) is not None
            if flags & XATTR_CREATE and exists:
                raise Exists("attribute exists")
            if flags & XATTR_REPLACE and not exists:
                raise NoAttribute("no such attribute")
            self.rows.delete_xattr(ino, name)
            self.watcher.xattrs_changed(ino)
            keep = True
            if name in (_acl.ACCESS, _acl.DEFAULT):
                try:
                    bits, equivalent = _acl.mode_bits(value)
                except ValueError:
                    raise InvalidArgument("malformed POSIX ACL") from None
                if name == _acl.DEFAULT and not attr.is_dir:
                    raise NotPermitted("only directories have a default ACL")
                if name == _acl.ACCESS:
                    self.set_fields(ino, mode=(attr.mode & ~0o777) | bits)
                    keep = not equivalent
            if keep:
                self._insert_xattr(ino, name, value)
            self.set_fields(ino, ctime=now_ns())

    def chmod(self, ino: int, mode: int, **fields: int | bytes | None) -> None:
        """Set the mode's permission bits (with other fields of the row, in the
        same statement), and the access ACL's entries that follow them."""
        attr = self.attr(ino)
        self.set_fields(ino, mode=stat.S_IFMT(attr.mode) | stat.S_IMODE(mode), **fields)
        access = self._acl_of(ino, _acl.ACCESS)
        if access is not None:
            self.rows.update_xattr(ino, _acl.ACCESS, _acl.chmod(access, mode))
            self.watcher.xattrs_changed(ino)

    def removexattr(self, ino: int, name: bytes) -> None:
        with self.db.transaction():
            self.attr(ino)
            if not self.rows.delete_xattr(ino, name):
                raise NoAttribute("no such attribute")
            self.watcher.xattrs_changed(ino)
            self.set_fields(ino, ctime=now_ns())

    # -- removal ------------------------------------------------------------------

    def purge(self, ino: int) -> None:
        """Delete an inode that no entry, handle or kernel reference names any more."""
        with self.db.transaction():
            self.rows.purge(ino)
            self._rows.pop(ino, None)
            self.watcher.changed(ino)

    def orphans(self) -> list[int]:
        """Inodes with no links left (their last handle closed in a crash)."""
        return self.rows.orphans()
