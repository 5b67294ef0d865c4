"""The native front end: the trio thread receives FUSE requests in C
(dwfs._fuse, over libfuse3's low-level API, without the GIL), takes them as a
batch, and answers each through its Request, which sends the reply with the
GIL released. The only importer of dwfs._fuse.

Requests whose Volume call is synchronous (lookup, getattr, readdir, xattrs,
namespace changes, create) are answered inline, in the order the kernel sent
them, with no task per request. So are open, setattr, write, flush, release
and fsync when the Volume can answer them without waiting (its `*_now` calls:
no truncation, room for the write, nothing to store as chunks, a commit whose
writes went into the intent log), which is most of them: a small file's
create, write, fsync and close never start a task. The rest (and read,
fallocate, lseek, copy_file_range) run as tasks in a nursery, as pyfuse3 runs
every request.
"""

from __future__ import annotations

import errno
import logging
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from dwfs.errors import NoAttribute, NotFound
from dwfs.fuse.errnos import errno_of
from dwfs.fuse.kernel import ATTR_TIMEOUT, open_flags
from dwfs.types import Plain
from dwfs.vfs import COMPUTED_XATTRS, SNAPSHOT_INODES, Attr, AttrChanges, Span, Volume, now_ns

_fuse: types.ModuleType | None
try:
    from dwfs import _fuse
except ImportError:  # built without libfuse3's headers: pyfuse3 serves
    _fuse = None

log = logging.getLogger(__name__)

RECEIVE_AT_ONCE = 16
"""Requests the trio thread takes from /dev/fuse before it handles them."""
WAIT_US = 50
"""While no request is being answered by a task, how long the trio thread waits
in C (GIL released) for the next request before it parks in epoll: a lone
caller's next request usually comes sooner, and parking and waking cost about
half of a small request (docs/performance.md). At most 1 ms in all per pass,
so trio's other tasks still run."""
SPIN_US = 50
"""How long the trio thread retries a receive that found nothing before it
sleeps in ppoll, while no chunk is being loaded: a lone caller's next request
(a stat loop, a random read) comes 10-15 us after the reply on one machine kind
and 20-50 us on another, and sleeping until then costs a vCPU's wake-up; 20 us
halved a stat loop's rate on the second (docs/performance.md). While chunks
load, a read's loaders want both cores, so none; while they are stored, an
untar's requests keep coming between the write-behind's stores, and spinning
for them took it from 1.44x gocryptfs's time to 1.06x."""
YIELD_EVERY = 16
"""Batches handled in a row without parking before one checkpoint, so a steady
stream of requests cannot starve trio's other tasks."""
YIELD_AFTER = 0.0005
"""Seconds of handling in a row without parking before one checkpoint, whatever
the batches: a stream of 1 MiB writes (about 0.7 ms each) kept the write-behind's
flush from starting for 240 ms while 200 MiB piled up unstored. Every hand-over
between the trio thread and a worker (a put's workers taking their next turn, a
put ending) waits for one: at 2 ms they left a sequential write's workers idle
about 5 ms per 32 MiB flush (a checkpoint costs some 7 us)."""
DIRENT_BYTES = 160
"""About what one readdirplus entry takes of the reply (its attributes and name)."""
READ_CACHE_BYTES = 128 * 1024 * 1024
"""Plaintext the C side answers reads from without Python: spans of the chunk
cache's own buffers (held, not copied), so mostly the same memory."""
ENTRY_CACHE = 65536
"""Names, and as many inodes' attributes, the C side answers lookup and getattr
from without Python (about 200 bytes each; a full cache empties, as the tree's
row cache does)."""
WRITES_IN_C_AT_ONCE = 8 * 1024 * 1024
"""Bytes of writes the C side may answer itself between two batches Python
handles (each under 512 KiB; larger ones keep their receive buffer and reach
Python): what it holds copied until Python takes them, and what a file may pass
its own limit of unstored bytes by."""


def available() -> bool:
    """Whether the native front end was built."""
    return _fuse is not None


def attr_tuple(attr: Attr) -> tuple[Any, ...]:
    return (
        attr.ino,
        attr.mode,
        attr.nlink,
        attr.uid,
        attr.gid,
        attr.rdev,
        attr.size,
        attr.blocks,
        attr.atime_ns,
        attr.mtime_ns,
        attr.ctime_ns,
        ATTR_TIMEOUT,
    )


class Dispatcher:
    """Kernel requests to Volume calls, and their results to replies."""

    def __init__(self, volume: Volume, initialised: trio.Event) -> None:
        self.volume = volume
        self.initialised = initialised
        self.nursery: trio.Nursery | None = None
        self.in_flight = 0
        """Requests being answered by tasks."""
        self.parked: trio.CancelScope | None = None
        """The serve loop's wait in epoll, while it waits there (set by NativeSession)."""
        self.keep: Callable[[int, int, Plain, int, int], bool] = lambda *span: False
        """Hands a span of a file's plaintext to the C side, which answers reads
        of it until the file changes (set by NativeSession)."""
        self.put_attr: Callable[[tuple[Any, ...]], None] = lambda attr: None
        """Hands the C side an inode's attributes as they stand, for it to answer
        getattr and lookups of it until they change (set by NativeSession)."""
        self.applied: Callable[[int, tuple[Any, ...] | None], None] = lambda ino, attr: None
        """Tells the C side a setattr it answered is applied, with the inode's
        attributes as they stand (None: it could not be; set by NativeSession)."""
        self.answer_flushes: Callable[[float], None] = lambda until: None
        """Tells the C side until when (time.monotonic()) it may answer flushes of
        open files itself, as no flush could fail before then (set by NativeSession)."""
        self.answer_writes: Callable[[int], None] = lambda nbytes: None
        """Tells the C side how many bytes of writes it may answer itself before it
        is told again (set by NativeSession)."""
        self.settle: Callable[[], None] = lambda: None
        """Answers the reads waiting in C that spans just kept complete (set by
        NativeSession)."""
        self.bare: Callable[[int], bool] = lambda ino: False
        """Tells the C side an inode has no stored xattr, so it answers getxattr
        and listxattr of it until it changes (set by NativeSession)."""
        self._inline: dict[str, Callable[..., None]] = {
            "init": self.init,
            "forget": self.forget,
            "lookup": self.lookup,
            "getattr": self.getattr,
            "readlink": self.readlink,
            "mknod": self.mknod,
            "mkdir": self.mknod,
            "unlink": self.unlink,
            "rmdir": self.rmdir,
            "symlink": self.symlink,
            "rename": self.rename,
            "link": self.link,
            "opendir": self.opendir,
            "readdirplus": self.readdirplus,
            "releasedir": self.ok,
            "statfs": self.statfs,
            "setxattr": self.setxattr,
            "getxattr": self.getxattr,
            "listxattr": self.listxattr,
            "removexattr": self.removexattr,
            "create": self.create,
        }
        self._at_once: dict[str, Callable[..., bool]] = {
            "setattr": self.setattr_now,
            "open": self.open_now,
            "write": self.write_now,
            "flush": self.flush_now,
            "release": self.release_now,
            "fsync": self.fsync_now,
            "fsyncdir": self.fsyncdir_now,
        }
        self._tasks: dict[str, Callable[..., Any]] = {
            "setattr": self.setattr,
            "open": self.open,
            "read": self.read,
            "write": self.write,
            "flush": self.flush,
            "release": self.release,
            "fsync": self.fsync,
            "fsyncdir": self.fsyncdir,
            "fallocate": self.fallocate,
            "lseek": self.lseek,
            "copy_file_range": self.copy_file_range,
        }

    def handle(self, request: tuple[Any, ...]) -> None:
        req, kind, *args = request
        if kind == "read_seen":  # not a request: a read C answered from bytes read ahead
            self.volume.note_read(*args)
            return
        if kind == "setattr_seen":  # answered in C: its change is for the Volume to make
            self.apply_setattr(*args)
            return
        if kind == "flush_seen":  # answered in C: the flush is for the Volume to make
            self.apply_flush(*args)
            return
        if kind == "write_seen":  # answered in C: the write is for the Volume to take
            self.apply_write(*args)
            return
        began = time.perf_counter()
        inline = self._inline.get(kind)
        if inline is not None:
            try:
                inline(req, *args)
            except Exception as exc:
                self._fail(req, kind, exc)
            self.volume.activity.record(kind, time.perf_counter() - began)
            return
        at_once = self._at_once.get(kind)
        if at_once is not None:
            try:
                done = at_once(req, *args)
            except Exception as exc:
                self._fail(req, kind, exc)
                done = True
            if done:
                self.volume.activity.record(kind, time.perf_counter() - began)
                return
        task = self._tasks.get(kind)
        if task is None or self.nursery is None:
            req.err(errno.ENOSYS)
            return
        self.in_flight += 1
        self.nursery.start_soon(self._run, task, req, kind, args, began)

    async def _run(
        self, task: Callable[..., Any], req: Any, kind: str, args: list[Any], began: float
    ) -> None:
        try:
            await task(req, *args)
        except Exception as exc:
            self._fail(req, kind, exc)
        finally:
            self.in_flight -= 1
            self.volume.activity.record(kind, time.perf_counter() - began)
            if not self.in_flight and self.parked is not None:
                self.parked.cancel()

    def _fail(self, req: Any, kind: str, exc: Exception) -> None:
        code = errno_of(exc, kind)
        if not req.answered:
            req.err(code)

    # -- answered inline ----------------------------------------------------------------

    def init(self, req: Any) -> None:
        self.initialised.set()

    def looked(self, inodes: list[int]) -> None:
        """Lookups the C side answered: the kernel took a reference to each."""
        for ino in inodes:
            self.volume.count_lookup(ino)

    def forget(self, req: Any, pairs: list[tuple[int, int]]) -> None:
        for ino, count in pairs:
            try:
                self.volume.forget(ino, count)
            except Exception as exc:
                errno_of(exc, "forget")

    def lookup(self, req: Any, parent: int, name: bytes) -> None:
        try:
            attr = self.volume.lookup(parent, name)
        except NotFound:
            req.negative(ATTR_TIMEOUT)
            return
        req.entry(attr_tuple(attr))

    def getattr(self, req: Any, ino: int) -> None:
        req.attr(attr_tuple(self.volume.attr(ino)))

    def readlink(self, req: Any, ino: int) -> None:
        req.readlink(self.volume.readlink(ino))

    def mknod(self, req: Any, parent: int, name: bytes, mode: int, rdev: int, *who: int) -> None:
        uid, gid, umask = who
        attr = self.volume.create_node(parent, name, mode, uid, gid, rdev, umask)
        req.entry(attr_tuple(attr))
        self._settled(parent)

    def unlink(self, req: Any, parent: int, name: bytes) -> None:
        self.volume.unlink(parent, name)
        req.err(0)
        self._settled(parent)

    def rmdir(self, req: Any, parent: int, name: bytes) -> None:
        self.volume.rmdir(parent, name)
        req.err(0)
        self._settled(parent)

    def symlink(
        self, req: Any, parent: int, name: bytes, target: bytes, uid: int, gid: int
    ) -> None:
        req.entry(attr_tuple(self.volume.symlink(parent, name, target, uid, gid)))
        self._settled(parent)

    def rename(
        self, req: Any, parent: int, name: bytes, new_parent: int, new_name: bytes, flags: int
    ) -> None:
        self.volume.rename(parent, name, new_parent, new_name, flags)
        req.err(0)
        self._settled(parent)
        if new_parent != parent:
            self._settled(new_parent)

    def link(self, req: Any, ino: int, new_parent: int, new_name: bytes) -> None:
        req.entry(attr_tuple(self.volume.link(ino, new_parent, new_name)))
        self._settled(new_parent)

    def opendir(self, req: Any, ino: int, flags: int) -> None:
        req.open(self.volume.opendir(ino), False)

    def readdirplus(self, req: Any, fh: int, after: int, size: int) -> None:
        entries: list[tuple[bytes, tuple[Any, ...], int]] = []
        room = size
        while room > 0 and (batch := self.volume.entries(fh, after)):
            for cookie, name, attr in batch:
                if room <= 0:
                    break
                entries.append((name, attr_tuple(attr), cookie))
                room -= DIRENT_BYTES + len(name)
                after = cookie
        taken = req.entries(entries)
        for name, fields, _ in entries[:taken]:
            if name not in (b".", b".."):
                self.volume.count_lookup(fields[0])

    def ok(self, req: Any, *args: Any) -> None:
        req.err(0)

    def statfs(self, req: Any, ino: int) -> None:
        info = self.volume.statfs()
        req.statfs(
            (info["size"] // 4096, info["free"] // 4096, info["files"] + 1_000_000, 1_000_000)
        )

    def setxattr(self, req: Any, ino: int, name: bytes, value: bytes, flags: int) -> None:
        self.volume.setxattr(ino, name, value, flags)
        req.err(0)

    def getxattr(self, req: Any, ino: int, name: bytes) -> None:
        try:
            value = self.volume.getxattr(ino, name)
        except NoAttribute:
            if self.volume.bare(ino):
                self.bare(ino)
            raise
        req.xattr(value)

    def listxattr(self, req: Any, ino: int) -> None:
        names = self.volume.listxattr(ino)
        if not names:
            self.bare(ino)
        req.xattr(b"".join(name + b"\0" for name in names))

    def removexattr(self, req: Any, ino: int, name: bytes) -> None:
        self.volume.removexattr(ino, name)
        req.err(0)

    def create(self, req: Any, parent: int, name: bytes, mode: int, flags: int, *who: int) -> None:
        uid, gid, umask = who
        fh, attr = self.volume.create(parent, name, mode, open_flags(flags), uid, gid, umask)
        req.create(fh, attr_tuple(attr))
        self._settled(parent)

    # -- answered inline when the Volume need not wait (True), else from tasks ---------

    def setattr_now(self, req: Any, ino: int, to_set: int, *values: Any) -> bool:
        attr = self.volume.setattr_now(ino, _changes(to_set, *values))
        if attr is not None:
            req.attr(attr_tuple(attr))
        return attr is not None

    def apply_setattr(self, ino: int, to_set: int, *values: Any) -> None:
        """Make the change of a setattr C answered (the kernel has the new
        attributes already), in order with the requests that came after it.
        It cannot fail but for a bug or the metadata's own failure, which is
        logged: the kernel was told of a change that is not kept."""
        attr = None
        try:
            changed = self.volume.setattr_now(ino, _changes(to_set, *values))
            attr = None if changed is None else attr_tuple(changed)
        except Exception as exc:
            log.error("inode %d: a change of its attributes was not kept: %s", ino, exc)
        self.applied(ino, attr)

    def open_now(self, req: Any, ino: int, flags: int) -> bool:
        fh = self.volume.open_now(ino, open_flags(flags))
        if fh is not None:
            req.open(fh, True)
        return fh is not None

    def write_now(self, req: Any, fh: int, off: int, data: memoryview) -> bool:
        taken = self.volume.write_now(fh, off, data)  # type: ignore[arg-type]
        if taken is not None:
            req.written(taken)
            self._settled(self.volume.inode_of(fh))
        return taken is not None

    def apply_write(self, fh: int, off: int, data: memoryview, ino: int) -> None:
        """Take a write C answered (the kernel was told it was taken), in order
        with the requests that came after it, and tell C the inode's attributes
        as they stand. It cannot fail but for a bug or running out of memory
        (C answers only handles Python opened, within the budget's room), which
        is logged: the kernel was told of a write that is not kept."""
        attr = None
        try:
            self.volume.write_answered(fh, off, data)  # type: ignore[arg-type]
            attr = attr_tuple(self.volume.attr(ino))
        except Exception as exc:
            log.error(
                "handle %d: a write of %d bytes at %d was not kept: %s", fh, len(data), off, exc
            )
        self.applied(ino, attr)

    def grant_writes(self) -> None:
        """Tell C how many bytes of writes it may answer before the next batch:
        the budget's room, up to WRITES_IN_C_AT_ONCE."""
        self.answer_writes(min(WRITES_IN_C_AT_ONCE, self.volume.write_room()))

    def flush_now(self, req: Any, fh: int) -> bool:
        done = self.volume.flush_now(fh)
        if done:
            req.err(0)
            self.answer_flushes(self.volume.flushes_answerable_until())
        return done

    def apply_flush(self, fh: int) -> None:
        """Make a flush C answered (close() has returned), in order with the
        requests that came after it. It cannot fail but for a bug or the
        metadata's own failure, which is logged; the writes then stay unstored,
        for the release or the next commit to store."""
        try:
            self.volume.flush_answered(fh)
        except Exception as exc:
            log.error("handle %d: a close's flush was not made: %s", fh, exc)

    def release_now(self, req: Any, fh: int) -> bool:
        ino = self.volume.inode_of(fh)
        done = self.volume.release_now(fh)
        if done:
            req.err(0)
            self._settled(ino)
        return done

    def fsync_now(self, req: Any, fh: int, datasync: int) -> bool:
        done = self.volume.fsync_now(fh)
        if done:
            req.err(0)
        return done

    def fsyncdir_now(self, req: Any, fh: int, datasync: int) -> bool:
        done = self.volume.fsync_now(None)
        if done:
            req.err(0)
        return done

    # -- answered from tasks ------------------------------------------------------------

    async def setattr(self, req: Any, ino: int, to_set: int, *values: Any) -> None:
        req.attr(attr_tuple(await self.volume.setattr(ino, _changes(to_set, *values))))

    async def open(self, req: Any, ino: int, flags: int) -> None:
        req.open(await self.volume.open(ino, open_flags(flags)), True)

    async def read(self, req: Any, fh: int, off: int, size: int, ino: int) -> None:
        req.data(await self.volume.read_pieces(fh, off, size))
        for at, data, start, length in self.volume.stable_extents(fh, off, off + size):
            self.keep(ino, at, data, start, length)
        self.settle()

    async def write(self, req: Any, fh: int, off: int, data: memoryview) -> None:
        req.written(await self.volume.write(fh, off, data))  # type: ignore[arg-type]

    async def flush(self, req: Any, fh: int) -> None:
        await self.volume.flush(fh)
        req.err(0)
        self.answer_flushes(self.volume.flushes_answerable_until())

    async def release(self, req: Any, fh: int) -> None:
        ino = self.volume.inode_of(fh)
        await self.volume.release(fh)
        req.err(0)
        self._settled(ino)

    def _settled(self, ino: int | None) -> None:
        """After the reply to a request that changed an inode (which dropped its
        attributes in C): the attributes as they stand now, for C to answer the
        getattr that follows itself, and its setattrs. A release's file (the
        stats after a write and close: ls -l, make, an untar's own checks), a
        write's (tar sets the times, owner and mode after it), and the directory a
        create, unlink, rename or link changed (the kernel asks for its
        attributes again at the next path walk through it)."""
        if ino is None:
            return
        try:
            attr = self.volume.attr(ino)
        except NotFound:
            return
        self.put_attr(attr_tuple(attr))

    async def fsync(self, req: Any, fh: int, datasync: int) -> None:
        await self.volume.fsync(fh)
        req.err(0)

    async def fsyncdir(self, req: Any, fh: int, datasync: int) -> None:
        await self.volume.fsync(None)
        req.err(0)

    async def fallocate(self, req: Any, fh: int, mode: int, off: int, length: int) -> None:
        await self.volume.fallocate(fh, mode, off, length)
        req.err(0)

    async def lseek(self, req: Any, fh: int, off: int, whence: int) -> None:
        req.offset(await self.volume.seek(fh, off, whence))

    async def copy_file_range(
        self, req: Any, fh_in: int, off_in: int, fh_out: int, off_out: int, length: int, flags: int
    ) -> None:
        if flags:
            req.err(errno.EINVAL)
            return
        req.written(await self.volume.copy_range(fh_in, off_in, fh_out, off_out, length))


def _changes(
    to_set: int,
    mode: int,
    uid: int,
    gid: int,
    size: int,
    atime_ns: int,
    mtime_ns: int,
    ctime_ns: int,
    fh: int | None,
) -> AttrChanges:
    """A setattr request's fields, as the Volume takes them."""
    assert _fuse is not None
    now = now_ns()
    return AttrChanges(
        mode=mode if to_set & _fuse.SET_ATTR_MODE else None,
        uid=uid if to_set & _fuse.SET_ATTR_UID else None,
        gid=gid if to_set & _fuse.SET_ATTR_GID else None,
        size=size if to_set & _fuse.SET_ATTR_SIZE else None,
        atime_ns=_time(to_set, _fuse.SET_ATTR_ATIME, _fuse.SET_ATTR_ATIME_NOW, atime_ns, now),
        mtime_ns=_time(to_set, _fuse.SET_ATTR_MTIME, _fuse.SET_ATTR_MTIME_NOW, mtime_ns, now),
        ctime_ns=ctime_ns if to_set & _fuse.SET_ATTR_CTIME else None,
    )


def _time(to_set: int, given: int, now_flag: int, value: int, now: int) -> int | None:
    if to_set & given:
        return value
    if to_set & now_flag:
        return now
    return None


class NativeSession:
    """A mount served by the native front end."""

    def __init__(self, volume: Volume, mountpoint: Path, options: set[str]) -> None:
        if _fuse is None:
            raise RuntimeError("the native FUSE front end was not built")
        self.initialised = trio.Event()
        self.dispatcher = Dispatcher(volume, self.initialised)
        self._session = _fuse.Session(
            str(mountpoint),
            ",".join(sorted(options)),
            True,
            True,
            True,
            READ_CACHE_BYTES,
            ENTRY_CACHE,
            SNAPSHOT_INODES,
            COMPUTED_XATTRS,
        )
        self.dispatcher.keep = self._session.keep
        self.dispatcher.settle = lambda: self._came(0, []) if self._session.waiting else None
        self.dispatcher.bare = self._session.bare
        self.dispatcher.put_attr = self._session.put_attr
        self.dispatcher.applied = self._session.applied
        self.dispatcher.answer_flushes = self._session.answer_flushes
        self.dispatcher.answer_writes = self._session.answer_writes
        volume.flush_failed = lambda: self._session.answer_flushes(0.0)
        watcher = volume.tree_watcher
        watcher.changed = self._session.drop_attr
        watcher.xattrs_changed = self._session.drop_xattrs
        watcher.born_bare = self._session.bare
        watcher.renamed = self._session.drop_name
        watcher.reset = self._session.drop_all
        volume.ahead_watcher.coming = self._session.promise
        volume.ahead_watcher.came = self._came
        volume.front_end = self.figures
        volume.kernel_keeps_times = True
        volume.forget_name = self._session.inval_entry
        volume.forget_inode = self._session.inval_inode
        self._session.set_no_capabilities(not volume.capabilities_possible())
        volume.capability_set = lambda: self._session.set_no_capabilities(False)
        self._reading = trio.CancelScope()
        self._token = trio.lowlevel.current_trio_token()

    def _came(self, ino: int, spans: list[Span]) -> None:
        """Read-ahead is in: the reads waiting in C for it are answered, or handed
        to Python, which the serve loop must not sleep through. Called on the
        trio thread or a loader's. A span outside its chunk (a bug) is logged,
        not raised into read-ahead, which would end the mount: C has dropped
        the file's spans and handed its reads to Python."""
        try:
            settled = self._session.fulfil(ino, spans)
        except ValueError:
            log.exception("read-ahead of inode %d handed over a span outside its chunk", ino)
            settled = 1
        if not settled:
            return
        if trio.lowlevel.in_trio_run():
            self._unpark()
        else:
            self._token.run_sync_soon(self._unpark)

    def _unpark(self) -> None:
        if self.dispatcher.parked is not None:
            self.dispatcher.parked.cancel()

    def figures(self) -> dict[str, Any]:
        """What the C side answered without Python, for status."""
        return {
            "name": "native",
            "answered_in_c": self._session.answered_in_c,
            "reads_in_c": self._session.reads_in_c + self._session.reads_waited,
            "reads_waited": self._session.reads_waited,
            "setattrs_merged": self._session.setattrs_merged,
            "writes_in_c": self._session.writes_in_c,
            "rejected": self._session.rejected,
            "kernel": self._session.kernel,
        }

    def stop(self) -> None:
        """End serve(), cancelling what is in flight (a signal asked to unmount)."""
        self._reading.cancel()

    async def serve(self) -> bool:
        """Answer requests until the kernel ends the session (True: it was
        unmounted; what is in flight finishes first) or stop() is called (False)."""
        self._session.start()
        async with trio.open_nursery() as handlers:
            self.dispatcher.nursery = handlers
            with self._reading:
                fd = self._session.fuse_fd
                streak, since = 0, time.monotonic()
                while not self._session.ended:
                    busy = self.dispatcher.in_flight or self._session.waiting
                    wait = 0 if busy else WAIT_US
                    spin = 0 if busy or self.dispatcher.volume.store_loading() else SPIN_US
                    self._session.receive(RECEIVE_AT_ONCE, wait, spin)
                    self.dispatcher.looked(self._session.looked())
                    batch = self._session.fetch()
                    if not batch:
                        await self._park(fd)
                        streak, since = 0, time.monotonic()
                        continue
                    for request in batch:
                        self.dispatcher.handle(request)
                    self.dispatcher.grant_writes()
                    streak += 1
                    if streak == YIELD_EVERY or time.monotonic() - since > YIELD_AFTER:
                        await trio.lowlevel.checkpoint()
                        streak, since = 0, time.monotonic()
            if self._reading.cancelled_caught:
                handlers.cancel_scope.cancel()
        return bool(self._session.ended)

    async def _park(self, fd: int) -> None:
        """Wait in epoll for the next request, or until the last task has answered
        its request: its caller's next request is likely on its way, and waiting
        for it in C is cheaper than being woken from epoll (WAIT_US)."""
        with trio.CancelScope() as parked:
            self.dispatcher.parked = parked
            try:
                await trio.lowlevel.wait_readable(fd)
            finally:
                self.dispatcher.parked = None

    def close(self, unmount: bool) -> None:
        """Stop the C threads and unmount, unless the kernel already has."""
        self._session.close(unmount)
