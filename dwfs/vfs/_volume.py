"""A mounted filesystem's semantics: inodes, lookup counts, handles, data, commits.

Volume is what the FUSE and WinFsp adapters call; it owns every piece of state
the kernel can refer to (inode numbers, lookup counts, file handles) and the
POSIX rules (in Tree and FileData). open_volume() is the only way to get one:
it unlocks the pool, replays the metadata and runs the background committer in
its nursery, and on exit stores every unstored write, commits and checkpoints.

Durability: fsync, fdatasync and fsyncdir store the file's writes and commit
the txg (group commit). Every COMMIT_INTERVAL seconds unstored writes are
stored and committed anyway, as ext4 does with its default commit=5.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import logging
import os
import stat
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import trio

from dwfs import _accel, snapshots
from dwfs.chunks import WATCH_EVERY, Credential, Pool, PoolWatch, open_pool
from dwfs.errors import (
    InvalidArgument,
    IsADirectory,
    NoAttribute,
    NoSpace,
    NoSuchOffset,
    NotADirectory,
    NotFound,
    NotPermitted,
    NotSupported,
    find_dwfs_error,
)
from dwfs.meta import Metadata
from dwfs.snapshots import Compactor, collect_garbage
from dwfs.types import Buffer, Plain
from dwfs.vfs import _snapshot_tree as snapdir
from dwfs.vfs._attrs import ROOT_INO, Attr, now_ns
from dwfs.vfs._budget import WriteBudget
from dwfs.vfs._dirty import DirtyMap
from dwfs.vfs._extents import seek
from dwfs.vfs._files import FileData, FileState
from dwfs.vfs._remote_ops import NAMES as REMOTE_XATTRS
from dwfs.vfs._remote_ops import PINNED, RemoteOps
from dwfs.vfs._snapshot_ops import SnapshotOps
from dwfs.vfs._snapshot_tree import SnapshotTree, is_snapshot_ino
from dwfs.vfs._stats import Activity
from dwfs.vfs._tree import Tree

CAPABILITY = b"security.capability"
FALLOC_KEEP_SIZE, FALLOC_PUNCH_HOLE, FALLOC_ZERO_RANGE = 0x01, 0x02, 0x10
"""fallocate(2)'s modes dwfs takes (linux/falloc.h); collapse and insert range are refused."""
SHARE_MIN = 64 * 1024
"""copy_file_range shares chunks from this many bytes on; less is copied as bytes."""
COPY_PIECE = 1 << 20

log = logging.getLogger(__name__)

COMMIT_INTERVAL = 5.0
IN_USE_SECONDS = 1.0
"""A filesystem that answered a request this recently is in use: a scrub keeps
to its share of the time (it runs at full speed otherwise)."""
DIRTY_LIMIT = 32 * 1024 * 1024
"""Unstored bytes one file may hold before a write stores them."""
FREE_CHECK_EVERY = 0.5
"""Seconds the pool's free space is taken as known, for the write-behind's check."""
BEHIND_AT_ONCE = 64
"""Closed files the write-behind stores side by side: an untar closes hundreds a
second, and each store waits on its own turns of the trio thread (docs/performance.md)."""


@dataclasses.dataclass
class Handle:
    ino: int
    flags: int
    state: FileState | None


@dataclasses.dataclass(frozen=True)
class AttrChanges:
    """What a setattr asks to change; None leaves a field alone."""

    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    size: int | None = None
    atime_ns: int | None = None
    mtime_ns: int | None = None
    ctime_ns: int | None = None
    """Given by a kernel that keeps the file's times itself (kernel_keeps_times)."""


class Volume:
    def __init__(self, pool: Pool, meta: Metadata) -> None:
        self.pool = pool
        self.meta = meta
        self.db = meta.db
        self.tree = Tree(meta.db)
        self.data = FileData(self.tree, pool.store)
        self.snapshot_tree = SnapshotTree(self.tree.rows, meta.snapshot_rows)
        self.snapshots = SnapshotOps(self)
        self.remote = RemoteOps(self)
        self.forget_name: Callable[[int, bytes], None] = lambda parent, name: None
        """Set by the adapter: tell the kernel to drop what it caches of parent/name
        (a name that came or went other than through a request of its own)."""
        self.capability_set: Callable[[], None] = lambda: None
        """Set by the adapter: from now on an inode may carry security.capability
        (until then the adapter may answer its getxattr, which the kernel asks
        before every write, with ENODATA itself)."""
        self.front_end: Callable[[], dict[str, Any]] = lambda: {}
        """Set by the adapter: its name and what it answered without the vfs, for status."""
        self.kernel_keeps_times = False
        """Set by the adapter: the kernel stamps a regular file's mtime and ctime
        itself and sends them in a setattr (FUSE's writeback cache), so a write
        does not stamp them here; stamping its arrival, later than the write(),
        would store a time the kernel never showed."""
        self.flush_failed: Callable[[], None] = lambda: None
        """Set by the adapter: a file's store in the background failed, so the
        window flushes_answerable_until gave is over (its close must report)."""
        self.forget_inode: Callable[[int], None] = lambda ino: None
        """Set by the adapter: tell the kernel to drop a directory's cached attributes
        (a directory's: a file's could wait on its dirty pages)."""
        self.tree_watcher = self.tree.watcher
        """Told of every change of the tree; its hooks are set by an adapter that
        keeps its own copy of names and attributes (the native front end answers
        lookups in C). Only inodes below SNAPSHOT_INODES are stored: the snapshots'
        attributes derive from the live root's, so no such copy may keep them."""
        self.ahead_watcher = self.data.ahead
        """Told of read-ahead into live files; its hooks are set by an adapter that
        answers the reads of those bytes itself, waiting for them if they are
        still loading (the native front end's reads waiting in C)."""
        self._lookups: dict[int, int] = {}
        self._forgotten: set[int] = set()
        self._files: dict[int, FileState] = {}
        self._handles: dict[int, Handle] = {}
        self._fh = itertools.count(1)
        self._background: trio.Nursery | None = None
        self._compactor = Compactor(meta, pool)
        self.budget = WriteBudget()
        self._behind: dict[int, FileState] = {}
        """Closed files whose writes the write-behind stores, oldest first."""
        self._storing: dict[int, FileState] = {}
        """The files the write-behind is storing now (taken from _behind)."""
        self._behind_wake = trio.Event()
        self._roomy_until = 0.0
        """Until when the pool is known to have room for every unstored write."""
        self.activity = Activity()
        """Requests (the adapter records them) and bytes through this mount."""
        pool.scrubber.in_use = functools.partial(self.activity.recent, IN_USE_SECONDS)

    # -- attributes and lookup counts -----------------------------------------------

    def attr(self, ino: int) -> Attr:
        if is_snapshot_ino(ino):
            return self.snapshot_tree.attr(ino, self.tree.attr(ROOT_INO))
        attr = self.tree.attr(ino)
        state = self._files.get(ino)
        if state is not None:
            attr.size, attr.mtime_ns = state.size, state.mtime_ns
            attr.ctime_ns = max(attr.ctime_ns, state.mtime_ns)
        return attr

    def _referenced(self, ino: int) -> Attr:
        self._lookups[ino] = self._lookups.get(ino, 0) + 1
        return self.attr(ino)

    def lookup(self, parent: int, name: bytes) -> Attr:
        if is_snapshot_ino(parent):
            return self._referenced(self.snapshot_tree.lookup(parent, name))
        if parent == ROOT_INO and name == snapdir.NAME:
            return self._referenced(snapdir.DIR_INO)
        return self._referenced(self.tree.lookup(parent, name))

    def open_inodes(self) -> frozenset[int]:
        """The files open now (they may be unlinked, and live until their last close)."""
        return frozenset(self._files)

    def check_writable(self, parent: int, *names: bytes) -> None:
        """Refuse changes under .snapshots, and to .snapshots itself."""
        if is_snapshot_ino(parent) or (parent == ROOT_INO and snapdir.NAME in names):
            raise snapdir.refuse()

    def forget(self, ino: int, count: int) -> None:
        """The kernel dropped references. An inode left with no links is purged at
        the next commit, with the others in one transaction: the kernel sends a
        forget after every unlink, and purging there put a transaction between
        each unlink and the next request."""
        left = self._lookups.get(ino, 0) - count
        if left > 0:
            self._lookups[ino] = left
            return
        self._lookups.pop(ino, None)
        self._forgotten.add(ino)

    def purge_forgotten(self) -> None:
        """Delete the forgotten inodes that nothing names or holds any more."""
        forgotten, self._forgotten = self._forgotten, set()
        if not forgotten:
            return
        with self.db.transaction():
            for ino in forgotten:
                self._maybe_purge(ino)

    def _maybe_purge(self, ino: int) -> None:
        if ino == ROOT_INO or is_snapshot_ino(ino) or self._lookups.get(ino) or ino in self._files:
            return
        try:
            attr = self.tree.attr(ino)
        except NotFound:
            return
        if attr.nlink == 0:
            self.tree.purge(ino)

    # -- the namespace ----------------------------------------------------------------

    def create_node(
        self,
        parent: int,
        name: bytes,
        mode: int,
        uid: int,
        gid: int,
        rdev: int = 0,
        umask: int = 0,
    ) -> Attr:
        self.check_writable(parent, name)
        attr = self.tree.create(parent, name, mode, uid, gid, rdev, umask=umask)
        self.remote.inherit_pin(parent, attr.ino)
        return self._referenced(attr.ino)

    def symlink(self, parent: int, name: bytes, target: bytes, uid: int, gid: int) -> Attr:
        self.check_writable(parent, name)
        attr = self.tree.create(parent, name, stat.S_IFLNK | 0o777, uid, gid, target=target)
        return self._referenced(attr.ino)

    def readlink(self, ino: int) -> bytes:
        attr = self.attr(ino)
        if attr.target is None:
            raise InvalidArgument("not a symbolic link")
        return attr.target

    def link(self, ino: int, parent: int, name: bytes) -> Attr:
        self.check_writable(ino)
        self.check_writable(parent, name)
        return self._referenced(self.tree.link(ino, parent, name).ino)

    def unlink(self, parent: int, name: bytes) -> None:
        self.check_writable(parent, name)
        self._maybe_purge(self.tree.unlink(parent, name))

    def rmdir(self, parent: int, name: bytes) -> None:
        self.check_writable(parent, name)
        self._maybe_purge(self.tree.rmdir(parent, name))

    def rename(self, p_old: int, n_old: bytes, p_new: int, n_new: bytes, flags: int) -> None:
        self.check_writable(p_old, n_old)
        self.check_writable(p_new, n_new)
        dropped = self.tree.rename(p_old, n_old, p_new, n_new, flags)
        if dropped is not None:
            self._maybe_purge(dropped)

    def entries(self, ino: int, after: int, limit: int = 256) -> list[tuple[int, bytes, Attr]]:
        """(cookie, name, attributes) of directory entries after cookie `after`;
        '.' is cookie 1 and '..' cookie 2."""
        self.opendir(ino)
        snapshot = is_snapshot_ino(ino)
        out: list[tuple[int, bytes, Attr]] = []
        if after < 1:
            out.append((1, b".", self.attr(ino)))
        if after < 2:
            parent = self.snapshot_tree.parent_of(ino) if snapshot else self.tree.parent_of(ino)
            out.append((2, b"..", self.attr(parent)))
        tree = self.snapshot_tree if snapshot else self.tree
        for cookie, name, child in tree.entries(ino, max(after, 2), limit):
            out.append((cookie, name, self.attr(child)))
        return out

    def opendir(self, ino: int) -> int:
        """A handle for reading a directory: the directory's inode number."""
        if not self.attr(ino).is_dir:
            raise NotADirectory("not a directory")
        return ino

    def count_lookup(self, ino: int) -> None:
        """The kernel took a reference through a readdirplus reply."""
        self._lookups[ino] = self._lookups.get(ino, 0) + 1

    # -- attributes -------------------------------------------------------------------

    async def setattr(self, ino: int, changes: AttrChanges) -> Attr:
        if changes.size is not None:
            await self._truncate(ino, changes.size)
        return self._set_fields(ino, changes)

    def setattr_now(self, ino: int, changes: AttrChanges) -> Attr | None:
        """setattr, when it need not wait (no size to set): the new attributes, or
        None (setattr() then). The kernel's writeback cache sends one with the times
        at every close after a write and at every unlink."""
        return None if changes.size is not None else self._set_fields(ino, changes)

    async def _truncate(self, ino: int, size: int) -> None:
        self.check_writable(ino)
        attr = self.tree.attr(ino)
        if attr.is_dir:
            raise IsADirectory("is a directory")
        if not attr.is_reg:
            raise InvalidArgument("only regular files have a size to set")
        state = self._state(ino)
        try:
            await self.data.truncate(ino, state, size)
        finally:
            self._release_state(ino)

    def _set_fields(self, ino: int, changes: AttrChanges) -> Attr:
        """Every change but the size."""
        self.check_writable(ino)
        fields: dict[str, Any] = {}
        for name in ("uid", "gid"):
            if getattr(changes, name) is not None:
                fields[name] = getattr(changes, name)
        if changes.atime_ns is not None:
            fields["atime"] = changes.atime_ns
        if changes.mtime_ns is not None:
            fields["mtime"] = changes.mtime_ns
            if ino in self._files:
                self._files[ino].mtime_ns = changes.mtime_ns
        fields["ctime"] = now_ns() if changes.ctime_ns is None else changes.ctime_ns
        if changes.mode is None:
            self.tree.set_fields(ino, **fields)
        else:
            with self.db.transaction():
                self.tree.chmod(ino, changes.mode, **fields)
        return self.attr(ino)

    # -- open files ---------------------------------------------------------------------

    def store_loading(self) -> bool:
        """Whether chunks are being loaded: a read's work, which needs the CPU a
        front end could otherwise spend waiting for the next request."""
        return self.pool.store.loading()

    def has_unstored_writes(self, ino: int) -> bool:
        """Whether an open file holds writes not stored as chunks yet."""
        state = self._files.get(ino)
        return state is not None and bool(state.dirty or state.flushing)

    def _state(self, ino: int) -> FileState:
        state = self._files.get(ino)
        if state is None:
            attr = self.tree.attr(ino)
            state = self._files[ino] = FileState(attr.size, attr.mtime_ns)
        state.handles += 1
        return state

    def _release_state(self, ino: int) -> None:
        state = self._files[ino]
        state.handles -= 1
        if not state.busy:
            del self._files[ino]
            self._maybe_purge(ino)

    async def open(self, ino: int, flags: int) -> int:
        fh = self._open(ino, flags)
        state = self._handles[fh].state
        if state is not None and _truncates(flags):
            await self.data.truncate(ino, state, 0)
        return fh

    def open_now(self, ino: int, flags: int) -> int | None:
        """open, when it need not wait (nothing to truncate): the handle, or None
        (open() then)."""
        return None if _truncates(flags) else self._open(ino, flags)

    def _open(self, ino: int, flags: int) -> int:
        if is_snapshot_ino(ino) and (flags & os.O_ACCMODE != os.O_RDONLY or flags & os.O_TRUNC):
            raise snapdir.refuse()
        attr = self.attr(ino)
        if attr.is_dir and flags & os.O_ACCMODE != os.O_RDONLY:
            raise IsADirectory("is a directory")
        state = self._state(ino) if attr.is_reg and not is_snapshot_ino(ino) else None
        fh = next(self._fh)
        self._handles[fh] = Handle(ino, flags, state)
        return fh

    def create(
        self, parent: int, name: bytes, mode: int, flags: int, uid: int, gid: int, umask: int = 0
    ) -> tuple[int, Attr]:
        """Make a regular file and open it (a new file has nothing to truncate)."""
        mode = stat.S_IFREG | stat.S_IMODE(mode)
        attr = self.create_node(parent, name, mode, uid, gid, umask=umask)
        fh = self._open(attr.ino, flags & ~os.O_TRUNC)
        self._files[attr.ino].new = True
        return fh, attr

    def inode_of(self, fh: int) -> int | None:
        """The inode an open handle is of (None: no such handle)."""
        handle = self._handles.get(fh)
        return None if handle is None else handle.ino

    def _handle(self, fh: int) -> Handle:
        try:
            return self._handles[fh]
        except KeyError:
            raise InvalidArgument(f"no open file handle {fh}") from None

    async def read(self, fh: int, off: int, length: int) -> bytes:
        return _accel.join(await self.read_pieces(fh, off, length))

    async def read_pieces(self, fh: int, off: int, length: int) -> list[Buffer]:
        """What read() returns, as pieces to send in order: for an adapter that
        replies with a vector, which saves copying a clean read into one buffer."""
        handle = self._handle(fh)
        if is_snapshot_ino(handle.ino):
            view, ino = self.snapshot_tree.locate(handle.ino)
            size = self.attr(handle.ino).size
            pieces = await self.data.read(ino, None, size, off, length, view)
        else:
            size = handle.state.size if handle.state else self.tree.attr(handle.ino).size
            pieces = await self.data.read(handle.ino, handle.state, size, off, length)
        self.activity.bytes_read += sum(len(p) for p in pieces)
        return pieces

    def stable_extents(self, fh: int, start: int, end: int) -> list[tuple[int, Plain, int, int]]:
        """What an adapter may answer reads of a live file with itself, around a
        read of [start, end) just answered, until a request changes the file's
        content: see FileData.stable_extents. Inode numbers are never reused and
        only requests on a live inode change its bytes (a rollback or a restore
        makes new inodes), so the adapter sees every change coming."""
        handle = self._handle(fh)
        if handle.state is None or is_snapshot_ino(handle.ino):
            return []
        return self.data.stable_extents(handle.ino, handle.state, start, end)

    def note_read(self, fh: int, off: int, length: int) -> None:
        """A read the adapter answered itself (from bytes read ahead): a
        sequential reader's read-ahead goes on from it."""
        handle = self._handles.get(fh)
        if handle is None or handle.state is None or is_snapshot_ino(handle.ino):
            return
        end = min(off + length, handle.state.size)
        if off < end:
            self.data.note_read(handle.ino, handle.state, off, end)

    async def write(self, fh: int, off: int, data: bytes) -> int:
        taken = self.write_now(fh, off, data)
        if taken is not None:
            return taken
        handle, state = self._file(fh)
        await self._make_room(len(data))
        self._take(handle, state, off, data)
        if state.dirty.nbytes > DIRTY_LIMIT:
            if self._can_flush_behind(state):
                self._background_flush(handle.ino, state)
            else:
                await self.data.flush(handle.ino, state)  # one flush at a time per file
        return len(data)

    def write_now(self, fh: int, off: int, data: bytes) -> int | None:
        """Take a write without waiting: its length, or None when it must wait for
        room among the unstored bytes or for a flush of the file (write() then)."""
        handle, state = self._file(fh)
        if not self.budget.room_for(len(data)):
            return None
        if state.dirty.nbytes + len(data) > DIRTY_LIMIT and not self._can_flush_behind(state):
            return None
        self._take_behind(handle, state, off, data)
        return len(data)

    def write_room(self) -> int:
        """Bytes of writes the budget has room for now: what an adapter may
        answer itself, handing each to write_answered, before it asks again."""
        return self.budget.room()

    def write_answered(self, fh: int, off: int, data: bytes) -> None:
        """A write the adapter answered itself within the room write_room gave:
        taken as write_now takes one, but never declined, so the file may pass
        its own limit (DIRTY_LIMIT) by what the adapter answers before it asks
        again; a store of the file starts behind it as soon as none runs."""
        handle, state = self._file(fh)
        self._take_behind(handle, state, off, data)

    def _take_behind(self, handle: Handle, state: FileState, off: int, data: bytes) -> None:
        """Take a write, and start storing the file behind the writer once it
        holds more than DIRTY_LIMIT unstored, unless a store of it runs."""
        self._take(handle, state, off, data)
        if state.dirty.nbytes > DIRTY_LIMIT and self._can_flush_behind(state):
            self._background_flush(handle.ino, state)

    def _file(self, fh: int) -> tuple[Handle, FileState]:
        handle = self._handle(fh)
        if handle.state is None:
            raise InvalidArgument("not a regular file")
        return handle, handle.state

    def _take(self, handle: Handle, state: FileState, off: int, data: bytes) -> None:
        self.activity.bytes_written += len(data)
        if handle.flags & os.O_APPEND:
            off = state.size
        state.write(off, data)
        self._count(handle.ino, state)
        state.size = max(state.size, off + len(data))
        if not self.kernel_keeps_times:
            state.mtime_ns = now_ns()
        state.changed = True

    def _can_flush_behind(self, state: FileState) -> bool:
        """Whether a store of the file behind its writer can start, or one that
        will take the writes coming now is about to."""
        free = not state.lock.locked() or state.flush_queued
        return free and self._background is not None

    def _background_flush(self, ino: int, state: FileState) -> None:
        """Start a store of the file behind its writer, unless one is starting."""
        assert self._background is not None
        if state.flush_queued:
            return
        state.flush_queued = True
        self._background.start_soon(self._flush_behind, ino, state)

    async def _flush_behind(self, ino: int, state: FileState) -> None:
        state.flush_queued = False
        await self._flush_quietly(ino, state)

    async def _make_room(self, nbytes: int) -> None:
        """Store other writes until nbytes more fit the budget (back-pressure).

        Raises:
            DwfsError: storing failed (a full pool): this write is refused, not
                taken and lost later.
        """
        while not self.budget.room_for(nbytes):
            ino = self.budget.largest()
            state = self._files.get(ino)
            if state is None:
                self.budget.update(ino, 0)
                continue
            await self.data.flush(ino, state)
            self._count(ino, state)

    def _count(self, ino: int, state: FileState) -> None:
        self.budget.update(ino, state.unstored)

    async def _flush_quietly(self, ino: int, state: FileState) -> bool:
        """Store a file's writes in the background (the write-behind, the timer, a
        file past its share of the budget); whether that worked. On a DwfsError (a
        full pool, say) the writes stay unstored, and the writer meets the error
        at close or fsync, which flush again."""
        try:
            await self.data.flush(ino, state)
        except Exception as exc:
            if find_dwfs_error(exc) is None:
                raise
            log.warning("writes to inode %d not stored yet: %s", ino, exc)
            state.failed = True
            self.flush_failed()
            return False
        finally:
            self._count(ino, state)
        state.failed = False
        return True

    async def flush(self, fh: int) -> None:
        """Store the file's writes (close(2) does this), unless an fsync logged them
        all (they are durable already, and the 5-second timer stores them with
        others', so a program that writes, fsyncs and closes many small files
        does not sync stripes for each) or the write-behind takes them."""
        if not self.flush_now(fh):
            handle = self._handle(fh)
            assert handle.state is not None
            await self.data.flush(handle.ino, handle.state)

    def flush_now(self, fh: int) -> bool:
        """flush without waiting, when that stores no chunk or the write-behind
        can store them: whether it did."""
        handle = self._handle(fh)
        if handle.state is None or _all_logged(handle.state):
            return True
        return self.data.flush_now(handle.ino, handle.state) or self._leave_behind(
            handle.ino, handle.state
        )

    def _leave_behind(self, ino: int, state: FileState) -> bool:
        """Give a closed file's writes to the write-behind instead of storing them
        before close() returns (as ext4 leaves them to writeback), when storing
        them later cannot meet an error close() would have reported: the pool has
        room for every unstored write, and the file's last flush did not fail.
        Whether it did. The writes stay readable meanwhile, fsync still makes
        them durable, and the next commit interval would store them anyway."""
        if state.failed or self._background is None or not self._roomy():
            return False
        self._put_behind(ino, state)
        return True

    def _put_behind(self, ino: int, state: FileState) -> None:
        state.behind = True
        self._behind[ino] = state
        self._behind_wake.set()

    def flushes_answerable_until(self) -> float:
        """Until when (time.monotonic()) flush_now would answer every flush at
        once with success, so that an adapter may answer closes itself and hand
        them to flush_answered: the pool has room for every unstored write (known
        for FREE_CHECK_EVERY, as flush_now takes it) and no file's last store
        failed (flush_failed ends the window early). 0 when that is not so."""
        if self._background is None or not self._roomy():
            return 0.0
        if any(state.failed for state in self._files.values()):
            return 0.0
        return self._roomy_until

    def flush_answered(self, fh: int) -> None:
        """A flush the adapter answered with success inside a window
        flushes_answerable_until gave: made as flush_now makes it. Should that
        decline (the window closed, or a store of the file failed, while the
        flush was on its way), the write-behind takes the writes all the same,
        and a failure reaches the writer at its next fsync, as one of writes
        left behind does."""
        if self.flush_now(fh):
            return
        handle = self._handle(fh)
        if handle.state is not None and self._background is not None:
            self._put_behind(handle.ino, handle.state)

    def _roomy(self) -> bool:
        now = time.monotonic()
        if now >= self._roomy_until:
            if not self.budget.covered_by(self.statfs()["free"]):
                return False
            self._roomy_until = now + FREE_CHECK_EVERY
        return True

    async def run_write_behind(
        self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Store closed files' writes, oldest first, while the writers go on:
        up to BEHIND_AT_ONCE files side by side, so that one file's store
        waiting for its turn does not keep the others waiting behind it."""
        task_status.started()
        while True:
            await self._behind_wake.wait()
            self._behind_wake = trio.Event()
            while self._behind:
                async with trio.open_nursery() as nursery:
                    for _ in range(min(BEHIND_AT_ONCE, len(self._behind))):
                        ino = next(iter(self._behind))
                        self._storing[ino] = self._behind.pop(ino)
                        nursery.start_soon(self._store_behind, ino)

    async def _store_behind(self, ino: int) -> None:
        state = self._storing[ino]
        try:
            await self._flush_quietly(ino, state)
        finally:
            del self._storing[ino]
        self._settle(ino, state)

    async def _store_left_behind(self) -> None:
        """Store now what closes left to the write-behind, so that an fsync makes
        every change before it durable, as it did when close() stored; a file
        that fails keeps its writes, and reports at its own close or fsync."""
        for ino, state in [*self._storing.items(), *self._behind.items()]:
            await self._flush_quietly(ino, state)

    def release_now(self, fh: int) -> bool:
        """release without waiting, when the file has nothing to store (the
        flush before it stored it): whether it did."""
        handle = self._handles.get(fh)
        if handle is None:
            return True
        state = handle.state
        if state is not None and not _all_logged(state) and not state.behind and _unsettled(state):
            return False
        del self._handles[fh]
        if state is not None:
            self._release_state(handle.ino)
        return True

    async def release(self, fh: int) -> None:
        if self.release_now(fh):
            return
        handle = self._handles.pop(fh)
        if handle.state is not None:
            try:
                if not _all_logged(handle.state):
                    await self.data.flush(handle.ino, handle.state)
            except Exception as exc:
                if find_dwfs_error(exc) is None:
                    raise
                # close() already reported this (flush comes first); keeping the bytes
                # would only fail again, so they go, as a full ext4 drops a write.
                log.warning("writes to inode %d dropped at release: %s", handle.ino, exc)
                if handle.state.handles == 1:
                    handle.state.dirty = DirtyMap()
                    handle.state.changed = False
                    self.data.forget_logged(handle.ino)
                    handle.state.size = self.tree.attr(handle.ino).size
            finally:
                self._release_state(handle.ino)

    # -- sparse files and copies without copying ---------------------------------------

    async def seek(self, fh: int, off: int, whence: int) -> int:
        """lseek's SEEK_DATA and SEEK_HOLE (the kernel answers the other whences)."""
        if whence not in (os.SEEK_DATA, os.SEEK_HOLE):
            raise InvalidArgument("only SEEK_DATA and SEEK_HOLE come here")
        handle = self._handle(fh)
        if handle.state is None:  # a file in a snapshot: all of it counts as data
            size = self.attr(handle.ino).size
            ranges = [(0, size)]
        else:
            size = handle.state.size
            ranges = await self.data.data_ranges(handle.ino, handle.state, size)
        found = seek(ranges, size, off, whence == os.SEEK_HOLE)
        if found is None:
            raise NoSuchOffset("no data at or after this offset")
        return found

    async def fallocate(self, fh: int, mode: int, off: int, length: int) -> None:
        """fallocate(2): allocate (space is checked, not reserved: chunks are
        written only when data is), punch hole, zero range; each with or without
        keeping the size."""
        handle = self._handle(fh)
        self.check_writable(handle.ino)
        state = handle.state
        if state is None:
            raise InvalidArgument("not a regular file")
        if off < 0 or length <= 0:
            raise InvalidArgument("offset and length must be positive")
        keep, what, end = mode & FALLOC_KEEP_SIZE, mode & ~FALLOC_KEEP_SIZE, off + length
        if what == 0:
            if self.statfs()["free"] < max(0, end - state.size):
                raise NoSpace("not enough free space for the range to allocate")
        elif (what == FALLOC_PUNCH_HOLE and keep) or what == FALLOC_ZERO_RANGE:
            await self.data.punch(handle.ino, state, off, end)
        else:
            raise NotSupported("dwfs takes fallocate's allocate, punch hole and zero range")
        if not keep and end > state.size:
            await self.data.truncate(handle.ino, state, end)

    async def copy_range(
        self, fh_in: int, off_in: int, fh_out: int, off_out: int, length: int
    ) -> int:
        """copy_file_range(2): the destination points at the source's chunks
        (deduplicated from the start, nothing read or stored) where both are
        stored as chunks; bytes are copied otherwise. How many bytes it copied."""
        src, dst = self._handle(fh_in), self._handle(fh_out)
        self.check_writable(dst.ino)
        if dst.state is None:
            raise InvalidArgument("not a regular file")
        length = max(0, min(length, self.attr(src.ino).size - off_in))
        if length == 0:
            return 0
        if (
            length >= SHARE_MIN
            and src.state is not None
            and await self.data.share(
                src.ino, src.state, off_in, dst.ino, dst.state, off_out, length
            )
        ):
            return length
        done = 0
        while done < length:
            data = await self.read(fh_in, off_in + done, min(COPY_PIECE, length - done))
            if not data:
                break
            done += await self.write(fh_out, off_out + done, data)
        return done

    def fsync_now(self, fh: int | None) -> bool:
        """fsync without waiting, when the file's writes go into the intent log,
        no closed file waits for the write-behind and the commit can run on this
        thread (Metadata.commit_now): whether it did."""
        return (
            self._unlogged(fh) is None
            and not self._behind
            and not self._storing
            and self.meta.commit_now()
        )

    async def fsync(self, fh: int | None) -> None:
        """Make the file's writes and every change so far durable (fsync, fdatasync
        and fsyncdir alike): small writes go into the journal record itself (the
        intent log, as ZFS's ZIL), larger ones are stored as chunks first."""
        unlogged = self._unlogged(fh)
        if unlogged is not None:
            await self.data.flush(*unlogged)
        await self._store_left_behind()
        await self.meta.commit()

    def _unlogged(self, fh: int | None) -> tuple[int, FileState] | None:
        """Put the file's unstored writes into the intent log; the file, when they
        are too many for it and must be stored as chunks first."""
        if fh is None:
            return None
        handle = self._handle(fh)
        state = handle.state
        if state is None or self.data.log_unstored(handle.ino, state):
            return None
        return handle.ino, state

    async def sync_all(self) -> None:
        """Store every file's writes and commit: what a timer, syncfs and unmount do.

        A file whose writes cannot be stored (a full pool) keeps them for its next
        flush and does not hold back the others.
        """
        for ino, state in list(self._files.items()):
            if await self._flush_quietly(ino, state):
                self._settle(ino, state)
        self.purge_forgotten()
        await self.meta.commit()

    def _settle(self, ino: int, state: FileState) -> None:
        """Forget a stored file's state once nothing holds it (and the file, once
        nothing names it either)."""
        if not state.busy and self._files.get(ino) is state:
            del self._files[ino]
            self._maybe_purge(ino)

    # -- maintenance ------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """What this mount did and how its caches and stores fared, for
        `dwfsctl stats` and the metrics listener."""
        store, cache, meta = self.pool.store, self.pool.store.cache, self.meta
        looked = cache.hits + cache.misses
        stored = store.stats.chunks_written + store.stats.chunks_deduplicated
        return {
            "pool": self.pool.id,
            **self.activity.to_json(),
            "front_end": self.front_end(),
            "chunk_cache": {
                "hits": cache.hits,
                "misses": cache.misses,
                "hit_rate": round(cache.hits / looked, 4) if looked else None,
                "bytes": cache.size,
                "capacity": cache.capacity,
            },
            "store": {
                **dataclasses.asdict(store.stats),
                "dedup_ratio": round(stored / store.stats.chunks_written, 4)
                if store.stats.chunks_written
                else None,
                "compression_ratio": round(store.stats.bytes_in / store.stats.bytes_sealed, 4)
                if store.stats.bytes_sealed
                else None,
            },
            "journal": {
                "records": meta.records,
                "bytes_since_checkpoint": meta.journal_bytes,
                "checkpoints": meta.checkpoints,
                "txg": meta.durable_txg,
            },
            "capacity": self.pool.capacity(),
            "unstored": self._unstored(),
        }

    def _unstored(self) -> dict[str, int]:
        """Writes not stored as chunks yet: open files' and the write-behind's."""
        held = [state.unstored for state in self._files.values()]
        return {"bytes": sum(held), "files": sum(1 for n in held if n)}

    async def replace(self, old: str, new: Path) -> None:
        """Replace member old by the empty directory new while the pool is in use:
        the new device takes the old one's place at once and a resilver, started
        here in the background, rebuilds what it lacks (dwfsctl status shows it)."""
        await self.pool.replace_live(old, new)
        assert self._background is not None
        self._background.start_soon(_resilver, self.pool)

    # -- checking ---------------------------------------------------------------------

    async def fsck(self, repair: bool = False) -> dict[str, Any]:
        """Check the metadata and read every live chunk, with every write stored
        first (see dwfs.snapshots.fsck); files open now may be unlinked."""
        async with self.snapshots.lock:
            await self.sync_all()
            return await snapshots.fsck(self.meta, self.pool, repair, self.open_inodes())

    # -- xattrs and statfs -------------------------------------------------------------

    def getxattr(self, ino: int, name: bytes) -> bytes:
        if not is_snapshot_ino(ino):
            if name == PINNED:
                return self.remote.pinned_xattr(ino)
            if name in REMOTE_XATTRS and stat.S_ISREG(self.tree.attr(ino).mode):
                return self.remote.xattr(ino, name)
            return self.tree.getxattr(ino, name)
        value = self.snapshot_tree.xattr(ino, name)
        if value is None:
            raise NoAttribute("no such attribute")
        return value

    def capabilities_possible(self) -> bool:
        """Whether any inode may carry security.capability (see capability_set)."""
        return self.tree.rows.xattr_ever_set(CAPABILITY)

    def setxattr(self, ino: int, name: bytes, value: bytes, flags: int) -> None:
        self.check_writable(ino)
        if name == CAPABILITY:
            self.capability_set()
        if name == PINNED:
            self.remote.set_pinned_xattr(ino, value)
            return
        if name in REMOTE_XATTRS:
            raise NotPermitted(f"{name.decode()} is read-only: dwfs keeps it")
        self.tree.setxattr(ino, name, value, flags)

    def bare(self, ino: int) -> bool:
        """Whether a live inode has no stored xattr: then only the computed names
        (COMPUTED_XATTRS) can have a value. True of one purged meanwhile, which
        has none either: a getxattr that found no value then still says so."""
        return not is_snapshot_ino(ino) and not self.tree.rows.xattr_names(ino)

    def listxattr(self, ino: int) -> list[bytes]:
        if is_snapshot_ino(ino):
            return self.snapshot_tree.xattr_names(ino)
        return self.tree.listxattr(ino)

    def removexattr(self, ino: int, name: bytes) -> None:
        self.check_writable(ino)
        self.tree.removexattr(ino, name)

    def statfs(self) -> dict[str, int]:
        capacity = self.pool.capacity()
        return {
            "size": capacity["size"],
            "free": max(min(capacity["free"], capacity["size"] - capacity["used"]), 0),
            "files": self.tree.inode_count(),
        }

    # -- running ------------------------------------------------------------------------

    def purge_orphans(self) -> None:
        for ino in self.tree.orphans():
            self.tree.purge(ino)

    async def run_committer(
        self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Store and commit every COMMIT_INTERVAL seconds, reclaim space (compaction,
        garbage collection), checkpoint when due."""
        task_status.started()
        while True:
            await trio.sleep(COMMIT_INTERVAL)
            try:
                self.remote.record_hydrated()
                await self.sync_all()
                await self.remote.evict_to_fit()
                await self.snapshots.apply_policy()
                await self._compactor.run()
                await collect_garbage(self.meta, self.pool, self.data.active)
                if self.meta.checkpoint_due:
                    await self.meta.checkpoint()
            except Exception:
                log.exception("background commit failed; will retry")

    async def close(self) -> None:
        for fh in list(self._handles):
            await self.release(fh)
        self.remote.record_hydrated()
        await self.sync_all()
        await self.meta.checkpoint()


async def _resilver(pool: Pool) -> None:
    log.info("resilvering devices that missed writes")
    try:
        rewritten = await pool.resilver()
    except Exception:
        log.exception("resilver failed; it will run again at the next mount")
        return
    log.info("resilver done: %d shards rebuilt", rewritten)


async def _watch(pool: Pool) -> None:
    """Turn changes in the pool's devices and capacity into events, for as long
    as it is open. A look that fails is logged and the next one tried: watching
    must never take the mount down."""
    watch = PoolWatch(pool.events)
    while True:
        try:
            watch.look(await trio.to_thread.run_sync(pool.health))
        except Exception:
            log.exception("a look at the pool's health failed; looking again later")
        await trio.sleep(WATCH_EVERY)


def _unsettled(state: FileState) -> bool:
    """Whether the file has writes to store, or a flush of them is under way."""
    return state.lock.locked() or bool(state.dirty) or state.changed


def _truncates(flags: int) -> bool:
    return bool(flags & os.O_TRUNC) and flags & os.O_ACCMODE != os.O_RDONLY


def _all_logged(state: FileState) -> bool:
    """Whether every unstored write of the file is in the intent log already."""
    return state.unlogged is not None and not state.unlogged and bool(state.dirty)


@contextlib.asynccontextmanager
async def open_volume(
    device: Path,
    credential: Credential,
    degraded: bool = False,
    remote_timeout: float | None = None,
    accept_rollback: bool = False,
) -> AsyncIterator[Volume]:
    """Unlock the pool, load its metadata and yield the volume, committer running.

    A pool with members missing or faulted is used only when `degraded` says so:
    writing to part of a pool is what lets two parts grow two histories. Devices
    older than this machine saw them are refused unless `accept_rollback` says
    they were restored on purpose.

    Raises:
        DeviceError: the pool is degraded and `degraded` is false.
    """
    async with open_pool(device, credential, accept_rollback) as pool:
        if not degraded:
            pool.refuse_degraded()
        meta = await Metadata.open(pool)
        volume = Volume(pool, meta)
        volume.remote.connect_saved(remote_timeout)
        volume.tree.ensure_root(os.getuid(), os.getgid())
        volume.purge_orphans()
        for ino in volume.data.logged_files():
            await volume.data.apply_logged(ino)
        await meta.commit()
        async with trio.open_nursery() as nursery:
            volume._background = volume.data.background = nursery
            await nursery.start(pool.store.serve_loaders)
            await nursery.start(volume.run_committer)
            await nursery.start(volume.run_write_behind)
            await nursery.start(volume.remote.run_uploader)
            if pool.needs_resilver:
                nursery.start_soon(_resilver, pool)
            nursery.start_soon(pool.scrubber.serve)
            nursery.start_soon(pool.events.run_hook)
            nursery.start_soon(_watch, pool)
            try:
                yield volume
            finally:
                nursery.cancel_scope.cancel()
                with trio.CancelScope(shield=True):
                    await volume.close()
