"""pyfuse3 request handlers that only translate: kernel requests to Volume calls,
Volume results to pyfuse3 structures, DwfsError to errno.

pyfuse3 lets only FUSEError out of a handler; any other exception becomes the
errno dwfs.fuse.errnos gives it.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, ParamSpec, TypeVar

import pyfuse3
import trio

from dwfs.errors import NotFound
from dwfs.fuse.errnos import errno_of
from dwfs.fuse.kernel import ATTR_TIMEOUT, open_flags
from dwfs.vfs import Attr, AttrChanges, Volume

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


def translated(fn: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    @functools.wraps(fn)
    async def handler(*args: P.args, **kwargs: P.kwargs) -> R:
        began = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        except pyfuse3.FUSEError:
            raise
        except Exception as exc:
            raise pyfuse3.FUSEError(errno_of(exc, fn.__name__)) from None
        finally:
            operations = args[0]
            assert isinstance(operations, Operations)
            operations.volume.activity.record(fn.__name__, time.perf_counter() - began)

    return handler


def _forget_name(parent: int, name: bytes) -> None:
    pyfuse3.invalidate_entry_async(parent, name, ignore_enoent=True)


def _forget_inode(ino: int) -> None:
    pyfuse3.invalidate_inode(ino, attr_only=True)


def missing() -> pyfuse3.EntryAttributes:
    """A negative entry (inode 0): the kernel answers lookups of the name with
    ENOENT itself until it expires or the name is created through the mount,
    as it does for every other change here (this mount is the only writer)."""
    e = pyfuse3.EntryAttributes()
    e.st_ino = 0
    e.entry_timeout = ATTR_TIMEOUT
    return e


def entry(attr: Attr) -> pyfuse3.EntryAttributes:
    e = pyfuse3.EntryAttributes()
    e.st_ino = attr.ino
    e.generation = 0
    e.entry_timeout = e.attr_timeout = ATTR_TIMEOUT
    e.st_mode, e.st_nlink = attr.mode, attr.nlink
    e.st_uid, e.st_gid, e.st_rdev = attr.uid, attr.gid, attr.rdev
    e.st_size, e.st_blksize, e.st_blocks = attr.size, 4096, attr.blocks
    e.st_atime_ns, e.st_mtime_ns, e.st_ctime_ns = attr.atime_ns, attr.mtime_ns, attr.ctime_ns
    return e


class Operations(pyfuse3.Operations):
    supports_dot_lookup = True
    enable_writeback_cache = True
    enable_acl = True

    def __init__(self, volume: Volume) -> None:
        super().__init__()
        self.volume = volume
        volume.forget_name = _forget_name
        volume.forget_inode = _forget_inode
        volume.kernel_keeps_times = self.enable_writeback_cache
        self.initialised = trio.Event()
        """Set once the kernel's INIT request is answered."""

    def init(self) -> None:
        self.initialised.set()

    @translated
    async def lookup(self, parent_inode: int, name: bytes, ctx: Any) -> pyfuse3.EntryAttributes:
        try:
            return entry(self.volume.lookup(parent_inode, name))
        except NotFound:
            return missing()

    @translated
    async def forget(self, inode_list: Sequence[tuple[int, int]]) -> None:
        for ino, count in inode_list:
            self.volume.forget(ino, count)

    @translated
    async def getattr(self, inode: int, ctx: Any) -> pyfuse3.EntryAttributes:
        return entry(self.volume.attr(inode))

    @translated
    async def setattr(
        self,
        inode: int,
        attr: pyfuse3.EntryAttributes,
        fields: pyfuse3.SetattrFields,
        fh: int | None,
        ctx: Any,
    ) -> pyfuse3.EntryAttributes:
        changes = AttrChanges(
            mode=attr.st_mode if fields.update_mode else None,
            uid=attr.st_uid if fields.update_uid else None,
            gid=attr.st_gid if fields.update_gid else None,
            size=attr.st_size if fields.update_size else None,
            atime_ns=attr.st_atime_ns if fields.update_atime else None,
            mtime_ns=attr.st_mtime_ns if fields.update_mtime else None,
            ctime_ns=attr.st_ctime_ns if fields.update_ctime else None,
        )
        return entry(await self.volume.setattr(inode, changes))

    @translated
    async def readlink(self, inode: int, ctx: Any) -> bytes:
        return self.volume.readlink(inode)

    @translated
    async def mknod(
        self, parent_inode: int, name: bytes, mode: int, rdev: int, ctx: Any
    ) -> pyfuse3.EntryAttributes:
        return entry(
            self.volume.create_node(parent_inode, name, mode, ctx.uid, ctx.gid, rdev, ctx.umask)
        )

    @translated
    async def mkdir(
        self, parent_inode: int, name: bytes, mode: int, ctx: Any
    ) -> pyfuse3.EntryAttributes:
        mode = (mode & 0o7777) | 0o040000
        return entry(
            self.volume.create_node(parent_inode, name, mode, ctx.uid, ctx.gid, 0, ctx.umask)
        )

    @translated
    async def unlink(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        self.volume.unlink(parent_inode, name)

    @translated
    async def rmdir(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        self.volume.rmdir(parent_inode, name)

    @translated
    async def symlink(
        self, parent_inode: int, name: bytes, target: bytes, ctx: Any
    ) -> pyfuse3.EntryAttributes:
        return entry(self.volume.symlink(parent_inode, name, target, ctx.uid, ctx.gid))

    @translated
    async def rename(
        self,
        parent_inode_old: int,
        name_old: bytes,
        parent_inode_new: int,
        name_new: bytes,
        flags: int,
        ctx: Any,
    ) -> None:
        self.volume.rename(parent_inode_old, name_old, parent_inode_new, name_new, flags)

    @translated
    async def link(
        self, inode: int, new_parent_inode: int, new_name: bytes, ctx: Any
    ) -> pyfuse3.EntryAttributes:
        return entry(self.volume.link(inode, new_parent_inode, new_name))

    @translated
    async def open(self, inode: int, flags: int, ctx: Any) -> pyfuse3.FileInfo:
        fh = await self.volume.open(inode, open_flags(flags, self.enable_writeback_cache))
        return pyfuse3.FileInfo(fh=fh, keep_cache=True)

    @translated
    async def create(
        self, parent_inode: int, name: bytes, mode: int, flags: int, ctx: Any
    ) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        fh, attr = self.volume.create(
            parent_inode,
            name,
            mode,
            open_flags(flags, self.enable_writeback_cache),
            ctx.uid,
            ctx.gid,
            ctx.umask,
        )
        return pyfuse3.FileInfo(fh=fh, keep_cache=True), entry(attr)

    @translated
    async def read(self, fh: int, off: int, size: int) -> bytes:
        return await self.volume.read(fh, off, size)

    @translated
    async def write(self, fh: int, off: int, buf: bytes) -> int:
        return await self.volume.write(fh, off, buf)

    @translated
    async def flush(self, fh: int) -> None:
        await self.volume.flush(fh)

    @translated
    async def release(self, fh: int) -> None:
        await self.volume.release(fh)

    @translated
    async def fsync(self, fh: int, datasync: bool) -> None:
        await self.volume.fsync(fh)

    @translated
    async def opendir(self, inode: int, ctx: Any) -> int:
        return self.volume.opendir(inode)

    @translated
    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        after = start_id
        while batch := self.volume.entries(fh, after):
            for cookie, name, attr in batch:
                if not pyfuse3.readdir_reply(token, name, entry(attr), cookie):
                    return
                if name not in (b".", b".."):
                    self.volume.count_lookup(attr.ino)
                after = cookie

    @translated
    async def releasedir(self, fh: int) -> None:
        return None

    @translated
    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        await self.volume.fsync(None)

    @translated
    async def statfs(self, ctx: Any) -> pyfuse3.StatvfsData:
        info = self.volume.statfs()
        st = pyfuse3.StatvfsData()
        st.f_bsize = st.f_frsize = 4096
        st.f_blocks = info["size"] // 4096
        st.f_bfree = st.f_bavail = info["free"] // 4096
        st.f_files = info["files"] + 1_000_000
        st.f_ffree = st.f_favail = 1_000_000
        st.f_namemax = 255
        return st

    @translated
    async def setxattr(self, inode: int, name: bytes, value: bytes, ctx: Any) -> None:
        self.volume.setxattr(inode, name, value, 0)

    @translated
    async def getxattr(self, inode: int, name: bytes, ctx: Any) -> bytes:
        return self.volume.getxattr(inode, name)

    @translated
    async def listxattr(self, inode: int, ctx: Any) -> Sequence[bytes]:
        return self.volume.listxattr(inode)

    @translated
    async def removexattr(self, inode: int, name: bytes, ctx: Any) -> None:
        self.volume.removexattr(inode, name)
