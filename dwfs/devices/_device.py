"""One device: a directory holding a superblock ring, a sync mark and segment files.

All methods block on disk I/O; callers in async code run them in worker threads.
Durability discipline: a new file's directory is fsync'd once; segments are
fsync'd by sync() before anything that depends on them (the sync mark, a
superblock) is written, and the superblock slot is fsync'd after each write.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import stat
import threading
from collections.abc import Sequence
from pathlib import Path

from dwfs._accel import read_direct_many, start_writeback, write_flush
from dwfs.devices import _superblock
from dwfs.errors import Busy, DeviceError, DwfsError, NoSpace
from dwfs.types import Buffer

SUPERBLOCK = "superblock"
SYNC_MARK = "synced"
SEGMENTS = "segments"
JOURNAL = "journal"
LOCK = "lock"

SUPERBLOCK_BYTES = _superblock.RING * _superblock.SLOT_SIZE
SYNC_MARK_BYTES = 64
"""More than a sync mark ever holds (40 bytes): reads stop there."""
MAX_JOURNAL_BYTES = 1 << 30
"""The most of one journal epoch read back (a checkpoint is due after 64 MiB)."""
JOURNAL_EXTENT = 1024 * 1024
"""Journal files grow by this much of zeros at a time, synced once, so appending a
record overwrites allocated blocks and its fdatasync changes no metadata (an
append that grows the file costs a filesystem journal commit: 0.36 vs 0.14 ms on
ext4 here). Replay stops at the zeros, as at any torn record."""

log = logging.getLogger(__name__)

WRITEBACK_EVERY = 8 * 1024 * 1024
"""Bytes written to a segment after which its writeback is started (not waited
for). The kernel writes dirty pages only once they are 30 s old or fill a tenth
of memory, so a put's stripes all waited in the page cache for the sync after
it, and the disk sat idle while the put computed (docs/performance.md)."""
_O_DIRECT = getattr(os, "O_DIRECT", 0)
MEMORY_FILESYSTEMS = ("tmpfs", "ramfs")

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_KNOWN_FILES = (SUPERBLOCK, SYNC_MARK, LOCK)


def _io_error(path: Path, exc: OSError) -> DwfsError:
    if exc.errno == errno.ENOSPC:
        return NoSpace(f"device {path} is full: free space on it or add capacity")
    return DeviceError(f"device {path}: {exc.strerror or exc}")


def _unsafe(path: Path, name: str, what: str) -> DeviceError:
    return DeviceError(
        f"device {path}: {name} {what}; dwfs follows no links and uses only files it "
        "made in a device: remove it, or restore the device from a copy"
    )


def _check_owned(path: Path, name: str, st: os.stat_result, kind: int) -> None:
    """Refuse what is not of `kind` (S_IFREG or S_IFDIR), not owned by this user,
    or (a directory) writable by others."""
    if stat.S_IFMT(st.st_mode) != kind:
        what = "a symbolic link" if stat.S_ISLNK(st.st_mode) else _kind_name(st.st_mode)
        expected = "a regular file" if kind == stat.S_IFREG else "a directory"
        raise _unsafe(path, name, f"is {what}, not {expected}")
    if st.st_uid != os.geteuid():
        raise DeviceError(
            f"device {path}: {name} is owned by uid {st.st_uid}, not by this user "
            f"(uid {os.geteuid()}): use the pool as the user who made it, or chown the "
            "device if you trust it"
        )
    if kind == stat.S_IFDIR and st.st_mode & 0o022:
        raise DeviceError(
            f"device {path}: {name} is writable by other users: `chmod go-w` it "
            "(dwfs makes device directories 0700)"
        )


def _kind_name(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a regular file"


class DirDevice:
    """A device that is a directory on a local filesystem.

    Everything in a device directory is hostile until authenticated, the
    directory entries themselves included: every file is opened relative to a
    descriptor of the directory, without following links, and used only when it
    is a regular file owned by this user; directories must be ours and writable
    by nobody else. Opening checks every entry dwfs would use, so a device
    holding a link, a FIFO or someone else's file is refused with one line.

    Raises (from the constructor):
        DeviceError: the directory is missing, a link, not ours, writable by
            others, or holds an entry dwfs would not have made.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fds: dict[int, int] = {}
        self._direct_fds: dict[int, int] = {}
        self.direct_reads: bool | None = None
        """Whether read_many bypasses the page cache (O_DIRECT) here: None until
        it first tries; False where the filesystem refuses direct reads or
        keeps its files in memory anyway (tmpfs)."""
        self._dirty: set[int] = set()
        self._unstarted: dict[int, int] = {}
        """Bytes written to each segment since its writeback was last started."""
        self._lock = threading.Lock()
        self._lock_fd: int | None = None
        self._journal: tuple[int, int, int, int] | None = None
        """(epoch, descriptor, end of records, allocated size) being appended."""
        self._allocated: dict[int, int] = {}
        """Bytes each segment occupies on disk, when last looked at."""
        self._restat: set[int] | None = None
        """Segments written since then (None: look at them all)."""
        self._dir = _open_dir(path, path, None)
        self._filesystem = os.fstat(self._dir).st_dev
        if not _O_DIRECT or _in_memory(self._filesystem):
            self.direct_reads = False
        self._subdirs: dict[str, int] = {}
        try:
            self._audit()
        except BaseException:
            self.close()
            raise

    @classmethod
    def initialise(cls, path: Path) -> DirDevice:
        """Make `path` a fresh device directory, mode 0700 (it must be empty or not exist)."""
        try:
            path.mkdir(mode=0o700, exist_ok=True)
            fd = _open_dir(path, path, None, check=False)
            try:
                if os.fstat(fd).st_uid != os.geteuid():
                    raise _unsafe(path, ".", "is owned by another user")
                os.fchmod(fd, 0o700)
                with contextlib.suppress(FileExistsError):
                    os.mkdir(SEGMENTS, 0o700, dir_fd=fd)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise _io_error(path, exc) from None
        return cls(path)

    def _audit(self) -> None:
        """Refuse the device if any entry dwfs would use is not what dwfs made."""
        for name in _KNOWN_FILES:
            self._check_entry(self._dir, name, name, stat.S_IFREG)
        for sub, suffix in ((SEGMENTS, ".seg"), (JOURNAL, ".jnl")):
            fd = self._subdir(sub, create=False)
            if fd is None:
                continue
            for number in _numbered(fd, suffix):
                name = f"{number:08d}{suffix}"
                self._check_entry(fd, name, f"{sub}/{name}", stat.S_IFREG)

    def _check_entry(self, dir_fd: int, name: str, label: str, kind: int) -> None:
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise _io_error(self.path, exc) from None
        _check_owned(self.path, label, st, kind)

    def _subdir(self, name: str, create: bool) -> int | None:
        """A descriptor of segments/ or journal/, made (0700) if asked; None if absent."""
        with self._lock:
            fd = self._subdirs.get(name)
            if fd is not None:
                return fd
            try:
                if create:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(name, 0o700, dir_fd=self._dir)
                        os.fsync(self._dir)
                fd = _open_dir(self.path, name, self._dir)
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise _io_error(self.path, exc) from None
            self._subdirs[name] = fd
            return fd

    def _open(self, dir_fd: int, name: str, label: str, flags: int) -> int:
        """A descriptor of a regular file of ours, never through a link.

        Raises:
            FileNotFoundError: it does not exist (and flags do not create it).
            FileExistsError: it exists and flags have O_EXCL.
            DeviceError: it is a link, a FIFO, a directory or another user's.
        """
        try:
            fd = os.open(name, flags | _FILE_FLAGS, 0o600, dir_fd=dir_fd)
        except (FileNotFoundError, FileExistsError):
            raise
        except OSError as exc:
            if exc.errno == errno.EINVAL and flags & _O_DIRECT:
                raise  # no direct I/O here: the caller reads through the page cache
            if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.EMLINK):
                self._check_entry(dir_fd, name, label, stat.S_IFREG)
                raise _unsafe(self.path, label, "is not a regular file") from None
            raise _io_error(self.path, exc) from None
        try:
            _check_owned(self.path, label, os.fstat(fd), stat.S_IFREG)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _fd(self, segment: int, create: bool) -> int | None:
        directory = self._subdir(SEGMENTS, create)
        if directory is None:
            return None
        with self._lock:
            fd = self._fds.get(segment)
            if fd is not None:
                return fd
            name = _segment_name(segment)
            flags = os.O_RDWR | (os.O_CREAT if create else 0)
            try:
                fd = self._open(directory, name, f"{SEGMENTS}/{name}", flags)
            except FileNotFoundError:
                return None
            if create:
                os.fsync(directory)
            self._fds[segment] = fd
            return fd

    def direct_fd(self, segment: int) -> int | None:
        """A descriptor for direct reads of a segment (read_many), or None: the
        segment is missing, or this device's reads go through the page cache."""
        directory = self._subdir(SEGMENTS, create=False)
        if directory is None:
            return None
        with self._lock:
            fd = self._direct_fds.get(segment)
            if fd is not None or self.direct_reads is False:
                return fd
            name = _segment_name(segment)
            try:
                fd = self._open(directory, name, f"{SEGMENTS}/{name}", os.O_RDONLY | _O_DIRECT)
            except FileNotFoundError:
                return None
            except OSError:  # EINVAL: the filesystem has no direct I/O
                self.direct_reads = False
                return None
            self.direct_reads = True
            self._direct_fds[segment] = fd
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
            if self._restat is not None:
                self._restat.add(segment)
            unstarted = self._unstarted.get(segment, 0) + total
            self._unstarted[segment] = 0 if unstarted >= WRITEBACK_EVERY else unstarted
        if unstarted >= WRITEBACK_EVERY:
            start_writeback(fd)  # a refusal only leaves it to the kernel: sync() reports errors

    def mark_dirty(self, segment: int) -> None:
        """Have the next sync() fsync this segment (it may hold writes of a process
        that died before syncing them, still only in the page cache)."""
        if self._fd(segment, create=False) is not None:
            with self._lock:
                self._dirty.add(segment)

    def has_unsynced(self) -> bool:
        """Whether segment writes wait for sync()."""
        with self._lock:
            return bool(self._dirty)

    def sync(self) -> None:
        """Make every segment write so far durable."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            fds = [self._fds[s] for s in dirty]
            for segment in dirty:
                self._unstarted.pop(segment, None)
        try:
            for fd in fds:
                os.fsync(fd)
        except OSError as exc:
            raise _io_error(self.path, exc) from None

    def segments(self) -> list[int]:
        directory = self._subdir(SEGMENTS, create=False)
        return [] if directory is None else _numbered(directory, ".seg")

    def _segment_stat(self, segment: int) -> os.stat_result | None:
        directory = self._subdir(SEGMENTS, create=False)
        if directory is None:
            return None
        try:
            st = os.stat(_segment_name(segment), dir_fd=directory, follow_symlinks=False)
        except OSError:
            return None
        return st if stat.S_ISREG(st.st_mode) else None

    def segment_size(self, segment: int) -> int:
        st = self._segment_stat(segment)
        return 0 if st is None else st.st_size

    def allocated_bytes(self) -> int:
        """Bytes the segments occupy on disk (holes excluded). Only segments
        written since the last call are looked at again (a mount asks every few
        seconds, and a large pool has tens of thousands of segments)."""
        with self._lock:
            restat, self._restat = self._restat, set()
        if restat is None:
            restat = set(self.segments())
        for segment in restat:
            st = self._segment_stat(segment)
            with self._lock:
                if st is None:
                    self._allocated.pop(segment, None)
                else:
                    self._allocated[segment] = st.st_blocks * 512
        with self._lock:
            return sum(self._allocated.values())

    def filesystem_id(self) -> int:
        """The id (st_dev) of the filesystem holding the device."""
        return self._filesystem

    def filesystem(self) -> tuple[int, int, int]:
        """(filesystem id, total bytes, free bytes) of the filesystem holding the device."""
        st = os.statvfs(self._dir)
        return self.filesystem_id(), st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize

    def _read_whole(self, dir_fd: int, name: str, label: str, limit: int) -> bytes | None:
        """A small file's bytes, at most `limit` of them; None if it does not exist."""
        try:
            fd = self._open(dir_fd, name, label, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            return os.pread(fd, limit, 0)
        except OSError as exc:
            raise _io_error(self.path, exc) from None
        finally:
            os.close(fd)

    def read_superblock_file(self) -> bytes | None:
        return self._read_whole(self._dir, SUPERBLOCK, SUPERBLOCK, SUPERBLOCK_BYTES)

    def write_superblock_slot(self, slot: int, data: bytes) -> None:
        self._write_durably(SUPERBLOCK, data, slot * _superblock.SLOT_SIZE)

    def read_sync_mark(self) -> bytes:
        try:
            return self._read_whole(self._dir, SYNC_MARK, SYNC_MARK, SYNC_MARK_BYTES) or b""
        except DwfsError:
            return b""

    def write_sync_mark(self, data: bytes) -> None:
        self._write_durably(SYNC_MARK, data, 0)

    def append_journal(self, epoch: int, data: bytes, durable: bool = True) -> None:
        """Append a record to the epoch's journal file, durably (fdatasync) unless
        `durable` is false, when the record waits in the page cache for
        sync_journal() or the kernel's writeback."""
        fd, offset = self.journal_slot(epoch, len(data))
        [err] = write_flush([(fd, data, offset, durable)])
        if err:
            raise self.journal_error(err)
        self.journal_appended(len(data))

    def journal_slot(self, epoch: int, length: int) -> tuple[int, int]:
        """Where the epoch's next record of `length` bytes goes: (descriptor,
        offset), the file grown first when the record would not fit. The caller
        writes it there (with other devices' copies, all flushed at once) and
        then calls journal_appended, or journal_error when the write failed.

        Records of one epoch are appended by one writer at a time (one commit
        at a time); this process keeps the file open and its end in memory.
        """
        fd, end, size = self._journal_file(epoch)
        if end + length > size:
            try:
                size = _grow(fd, size, end + length - size)
            except OSError as exc:
                raise _io_error(self.path, exc) from None
            self._journal = (epoch, fd, end, size)
        return fd, end

    def journal_appended(self, length: int) -> None:
        """The record journal_slot placed is written: the next goes after it."""
        if self._journal is None:
            raise DeviceError(f"device {self.path}: no journal epoch is open")
        epoch, fd, end, size = self._journal
        self._journal = (epoch, fd, end + length, size)

    def journal_error(self, err: int) -> DwfsError:
        """The error of a journal record's failed write or flush (an errno)."""
        return _io_error(self.path, OSError(err, os.strerror(err)))

    def sync_journal(self) -> None:
        """Make every record appended to the current epoch's file durable."""
        if self._journal is None:
            return
        try:
            os.fdatasync(self._journal[1])
        except OSError as exc:
            raise _io_error(self.path, exc) from None

    def _journal_file(self, epoch: int) -> tuple[int, int, int]:
        """(descriptor, end of records, allocated size) of the epoch being appended."""
        if self._journal is not None:
            current, fd, end, size = self._journal
            if current == epoch:
                return fd, end, size
            os.close(fd)
            self._journal = None
        directory = self._subdir(JOURNAL, create=True)
        assert directory is not None
        name = _journal_name(epoch)
        label = f"{JOURNAL}/{name}"
        try:
            fd = self._open(directory, name, label, os.O_RDWR | os.O_CREAT | os.O_EXCL)
            os.fsync(directory)
        except FileExistsError:
            raise DeviceError(
                f"device {self.path}: journal epoch {epoch} exists already; another process "
                "wrote to this pool meanwhile: unmount it and mount again"
            ) from None
        except OSError as exc:
            raise _io_error(self.path, exc) from None
        self._journal = (epoch, fd, 0, 0)
        return fd, 0, 0

    def _write_durably(self, name: str, data: bytes, offset: int) -> None:
        """Write data at offset into a file of the device directory, fsync it, and
        fsync the directory when the write created the file."""
        try:
            try:
                fd = self._open(self._dir, name, name, os.O_WRONLY)
                new = False
            except FileNotFoundError:
                fd = self._open(self._dir, name, name, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
                new = True
            try:
                if os.pwrite(fd, data, offset) != len(data):
                    raise OSError(errno.ENOSPC, "short write")
                os.fsync(fd)
            finally:
                os.close(fd)
            if new:
                os.fsync(self._dir)
        except OSError as exc:
            raise _io_error(self.path, exc) from None

    def read_journal(self, epoch: int) -> bytes:
        directory = self._subdir(JOURNAL, create=False)
        if directory is None:
            return b""
        name = _journal_name(epoch)
        data = self._read_whole(directory, name, f"{JOURNAL}/{name}", MAX_JOURNAL_BYTES + 1)
        if data is not None and len(data) > MAX_JOURNAL_BYTES:
            raise DeviceError(
                f"device {self.path}: journal epoch {epoch} is larger than any dwfs writes "
                f"({MAX_JOURNAL_BYTES >> 20} MiB): the device was tampered with; "
                "restore it or replace it"
            )
        return data or b""

    def journal_epochs(self) -> list[int]:
        directory = self._subdir(JOURNAL, create=False)
        return [] if directory is None else _numbered(directory, ".jnl")

    def remove_segment(self, segment: int) -> None:
        with self._lock:
            fds = [self._fds.pop(segment, None), self._direct_fds.pop(segment, None)]
            self._dirty.discard(segment)
            self._unstarted.pop(segment, None)
            self._allocated.pop(segment, None)
        for fd in fds:
            if fd is not None:
                os.close(fd)
        directory = self._subdir(SEGMENTS, create=False)
        if directory is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(_segment_name(segment), dir_fd=directory)

    def remove_journal(self, epoch: int) -> None:
        if self._journal is not None and self._journal[0] == epoch:
            os.close(self._journal[1])
            self._journal = None
        directory = self._subdir(JOURNAL, create=False)
        if directory is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(_journal_name(epoch), dir_fd=directory)

    def take_lock(self) -> None:
        """Hold this device for this process (flock; the kernel drops it if we die).

        The lock file stays empty: who holds it is found from the kernel's
        table of locks, so nothing about the holder is written to the device.

        Raises:
            Busy: another process holds it; the message says which.
        """
        fd = self._open(self._dir, LOCK, LOCK, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid, other = _lock_holder(fd)
            os.close(fd)
            raise Busy(
                f"the pool is in use by {other}: wait for it to finish, or unmount it "
                "(dwfsctl status takes the mountpoint)",
                pid,
            ) from None
        if os.fstat(fd).st_size:
            os.ftruncate(fd, 0)  # older dwfs wrote the holder's name here
        self._lock_fd = fd

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        if self._journal is not None:
            os.close(self._journal[1])
            self._journal = None
        with self._lock:
            for fd in [
                *self._fds.values(),
                *self._direct_fds.values(),
                *self._subdirs.values(),
                self._dir,
            ]:
                os.close(fd)
            self._fds.clear()
            self._direct_fds.clear()
            self._subdirs.clear()
            self._dir = -1


def read_many(
    reads: Sequence[tuple[DirDevice, int, int, Sequence[memoryview]]],
) -> list[int | None]:
    """Each (device, segment, offset, buffers) as read_into does it, but around
    the page cache where the device's filesystem allows and with every such
    read in flight at once (read-ahead's loads: docs/design.md, "Reading
    devices around the page cache"); each one's bytes read, or None where it
    failed. Direct reads see writes not yet synced: the kernel writes a range
    back before it reads it directly."""
    results: list[int | None] = [None] * len(reads)
    cached = set(range(len(reads)))
    direct_ones = [
        (i, fd)
        for i, (device, segment, _, _) in enumerate(reads)
        if (fd := _direct_fd(device, segment)) is not None
    ]
    got = read_direct_many([(fd, reads[i][2], reads[i][3]) for i, fd in direct_ones])
    for (i, _), n in zip(direct_ones, got, strict=True):
        device = reads[i][0]
        if n == -errno.EINVAL:  # it wants a larger alignment than ours
            if device.direct_reads:
                log.info("device %s: direct reads refused; reading cached", device.path)
            device.direct_reads = False
            continue
        cached.discard(i)
        results[i] = n if n >= 0 else None
    for i in sorted(cached):
        device, segment, offset, buffers = reads[i]
        with contextlib.suppress(DwfsError):
            results[i] = device.read_into(segment, offset, buffers)
    return results


def _direct_fd(device: DirDevice, segment: int) -> int | None:
    """The device's direct descriptor of a segment; None where it has none, or
    where opening it failed (the cached read then meets the error itself)."""
    try:
        return device.direct_fd(segment)
    except DwfsError:
        return None


def _in_memory(dev: int) -> bool:
    """Whether the filesystem with this device number keeps its files in memory
    (tmpfs), where a direct read would only add a copy: its type from the
    kernel's table of this process's mounts."""
    want = f"{os.major(dev)}:{os.minor(dev)}"
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) > 2 and fields[2] == want and "-" in fields:
                    return fields[fields.index("-") + 1] in MEMORY_FILESYSTEMS
    except OSError:
        pass
    return False


def _grow(fd: int, size: int, needed: int) -> int:
    """Extend a journal file with zeros by an extent (or, on a full filesystem,
    by just what the record needs), durably; the new size."""
    for grow in (max(JOURNAL_EXTENT, needed), needed):
        try:
            if os.pwrite(fd, bytes(grow), size) == grow:
                os.fsync(fd)
                return size + grow
        except OSError as exc:
            if exc.errno != errno.ENOSPC or grow == needed:
                raise
        os.ftruncate(fd, size)
    raise OSError(errno.ENOSPC, "short write")


def _segment_name(segment: int) -> str:
    return f"{segment:08d}.seg"


def _journal_name(epoch: int) -> str:
    return f"{epoch:08d}.jnl"


def _open_dir(path: Path, name: Path | str, dir_fd: int | None, check: bool = True) -> int:
    """A descriptor of a device directory (or a subdirectory), never through a link."""
    label = "the directory" if dir_fd is None else str(name)
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        if dir_fd is None:
            raise DeviceError(
                f"{path} does not exist or is not a directory: name a pool device"
            ) from None
        raise
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            if dir_fd is None:
                raise DeviceError(
                    f"{path} is a symbolic link or not a directory: name the device "
                    "directory itself (dwfs follows no links to or inside a device)"
                ) from None
            raise _unsafe(path, label, "is a symbolic link or not a directory") from None
        raise _io_error(path, exc) from None
    if check:
        try:
            _check_owned(path, label, os.fstat(fd), stat.S_IFDIR)
        except BaseException:
            os.close(fd)
            raise
    return fd


def _numbered(dir_fd: int, suffix: str) -> list[int]:
    """The numbers of the entries named NNNNNNNN<suffix> in a directory, sorted."""
    try:
        names = os.listdir(dir_fd)
    except OSError:
        return []
    cut = len(suffix)
    return sorted(
        int(n[:-cut])
        for n in names
        if n.endswith(suffix) and len(n) == 8 + cut and n[:-cut].isdigit()
    )


def _lock_holder(fd: int) -> tuple[int | None, str]:
    """Which process holds the flock on fd, from /proc/locks (and its name from /proc)."""
    st = os.fstat(fd)
    key = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open("/proc/locks") as table:
            lines = table.read().splitlines()
    except OSError:
        return None, "another process"
    for line in lines:
        fields = line.split()
        if "FLOCK" in fields and key in fields:
            pid = fields[fields.index(key) - 1]
            if pid.isdigit():
                return int(pid), f"process {pid}{_process_name(pid)}"
    return None, "another process"


def _process_name(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/comm") as comm:
            name = comm.read(64).strip()
    except OSError:
        return ""
    return f" ({name})" if name.isprintable() and name else ""
