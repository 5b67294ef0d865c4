"""One device: a directory holding a superblock ring, a sync mark and segment files.

All methods block on disk I/O; callers in async code run them in worker threads.
Durability discipline: a new file's directory is fsync'd once; segments are
fsync'd by sync() before anything that depends on them (the sync mark, a
superblock) is written, and the superblock slot is fsync'd after each write.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from dwfs.devices import _superblock
from dwfs.errors import Busy, DeviceError, DwfsError, NoSpace
from dwfs.types import Buffer

SUPERBLOCK = "superblock"
SYNC_MARK = "synced"
SEGMENTS = "segments"
JOURNAL = "journal"
LOCK = "lock"


def _io_error(path: Path, exc: OSError) -> DwfsError:
    if exc.errno == errno.ENOSPC:
        return NoSpace(f"device {path} is full: free space on it or add capacity")
    return DeviceError(f"device {path}: {exc.strerror or exc}")


class DirDevice:
    """A device that is a directory on a local filesystem."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fds: dict[int, int] = {}
        self._dirty: set[int] = set()
        self._lock = threading.Lock()
        self._lock_fd: int | None = None

    @classmethod
    def initialise(cls, path: Path) -> DirDevice:
        """Make `path` a fresh device directory (it must be empty or not exist)."""
        try:
            path.mkdir(exist_ok=True)
            (path / SEGMENTS).mkdir(exist_ok=True)
            _fsync_dir(path)
        except OSError as exc:
            raise _io_error(path, exc) from None
        return cls(path)

    def _segment_path(self, segment: int) -> Path:
        return self.path / SEGMENTS / f"{segment:08d}.seg"

    def _fd(self, segment: int, create: bool) -> int | None:
        with self._lock:
            fd = self._fds.get(segment)
            if fd is not None:
                return fd
            path = self._segment_path(segment)
            flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0)
            try:
                fd = os.open(path, flags, 0o600)
            except FileNotFoundError:
                return None
            if create:
                _fsync_dir(path.parent)
            self._fds[segment] = fd
            return fd

    def read(self, segment: int, offset: int, length: int) -> bytes:
        """Up to `length` bytes; short or empty where the segment ends or is missing."""
        try:
            fd = self._fd(segment, create=False)
            return b"" if fd is None else os.pread(fd, length, offset)
        except OSError as exc:
            raise _io_error(self.path, exc) from None

    def read_into(self, segment: int, offset: int, buffers: Sequence[memoryview]) -> int:
        """Fill buffers, in order, from one place in a segment without another copy;
        the number of bytes read (short where the segment ends or is missing)."""
        try:
            fd = self._fd(segment, create=False)
            return 0 if fd is None else os.preadv(fd, buffers, offset)
        except OSError as exc:
            raise _io_error(self.path, exc) from None

    def write(self, segment: int, offset: int, parts: Sequence[Buffer]) -> None:
        try:
            fd = self._fd(segment, create=True)
            assert fd is not None
            total = sum(len(p) for p in parts)
            if os.pwritev(fd, parts, offset) != total:
                raise OSError(errno.ENOSPC, "short write")
        except OSError as exc:
            raise _io_error(self.path, exc) from None
        with self._lock:
            self._dirty.add(segment)

    def mark_dirty(self, segment: int) -> None:
        """Have the next sync() fsync this segment (it may hold writes of a process
        that died before syncing them, still only in the page cache)."""
        if self._fd(segment, create=False) is not None:
            with self._lock:
                self._dirty.add(segment)

    def sync(self) -> None:
        """Make every segment write so far durable."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            fds = [self._fds[s] for s in dirty]
        try:
            for fd in fds:
                os.fsync(fd)
        except OSError as exc:
            raise _io_error(self.path, exc) from None

    def segments(self) -> list[int]:
        return _numbered(self.path / SEGMENTS, ".seg")

    def segment_size(self, segment: int) -> int:
        try:
            return self._segment_path(segment).stat().st_size
        except OSError:
            return 0

    def allocated_bytes(self) -> int:
        """Bytes the segments occupy on disk (holes excluded)."""
        total = 0
        for segment in self.segments():
            try:
                total += self._segment_path(segment).stat().st_blocks * 512
            except OSError:
                continue
        return total

    def filesystem(self) -> tuple[int, int, int]:
        """(filesystem id, total bytes, free bytes) of the filesystem holding the device."""
        st = os.statvfs(self.path)
        return os.stat(self.path).st_dev, st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize

    def read_superblock_file(self) -> bytes | None:
        try:
            return (self.path / SUPERBLOCK).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _io_error(self.path, exc) from None

    def write_superblock_slot(self, slot: int, data: bytes) -> None:
        self._write_durably(self.path / SUPERBLOCK, data, slot * _superblock.SLOT_SIZE)

    def read_sync_mark(self) -> bytes:
        try:
            return (self.path / SYNC_MARK).read_bytes()
        except OSError:
            return b""

    def write_sync_mark(self, data: bytes) -> None:
        self._write_durably(self.path / SYNC_MARK, data, 0)

    def _journal_path(self, epoch: int) -> Path:
        return self.path / JOURNAL / f"{epoch:08d}.jnl"

    def append_journal(self, epoch: int, data: bytes) -> None:
        """Append to the epoch's journal file and fsync it."""
        path = self._journal_path(epoch)
        try:
            path.parent.mkdir(exist_ok=True)
        except OSError as exc:
            raise _io_error(self.path, exc) from None
        self._write_durably(path, data, None)

    def _write_durably(self, path: Path, data: bytes, offset: int | None) -> None:
        """Write data at offset (None: append), fsync the file, and fsync its
        directory when the write created it."""
        try:
            new = not path.exists()
            flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_APPEND if offset is None else 0)
            fd = os.open(path, flags, 0o600)
            try:
                done = os.write(fd, data) if offset is None else os.pwrite(fd, data, offset)
                if done != len(data):
                    raise OSError(errno.ENOSPC, "short write")
                os.fsync(fd)
            finally:
                os.close(fd)
            if new:
                _fsync_dir(path.parent)
        except OSError as exc:
            raise _io_error(self.path, exc) from None

    def read_journal(self, epoch: int) -> bytes:
        try:
            return self._journal_path(epoch).read_bytes()
        except FileNotFoundError:
            return b""
        except OSError as exc:
            raise _io_error(self.path, exc) from None

    def journal_epochs(self) -> list[int]:
        return _numbered(self.path / JOURNAL, ".jnl")

    def remove_segment(self, segment: int) -> None:
        with self._lock:
            fd = self._fds.pop(segment, None)
            self._dirty.discard(segment)
        if fd is not None:
            os.close(fd)
        self._segment_path(segment).unlink(missing_ok=True)

    def remove_journal(self, epoch: int) -> None:
        self._journal_path(epoch).unlink(missing_ok=True)

    def take_lock(self, holder: str) -> None:
        """Hold this device for this process (flock; the kernel drops it if we die).

        Raises:
            Busy: another process holds it; the message says which.
        """
        path = self.path / LOCK
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise Busy(
                f"the pool is in use by {other}: wait for it to finish, or unmount it "
                "(dwfsctl status takes the mountpoint)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.encode(), 0)
        self._lock_fd = fd

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()


def _numbered(directory: Path, suffix: str) -> list[int]:
    """The numbers of the files named NNNNNNNN<suffix> in directory, sorted."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    cut = len(suffix)
    return sorted(int(n[:-cut]) for n in names if n.endswith(suffix) and n[:-cut].isdigit())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
