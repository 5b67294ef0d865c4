"""Per-pool state kept on this machine, outside the pool.

What this machine knows that an attacker holding only the devices cannot
change: the newest superblock generation it has seen (so a pool whose devices
were all rolled back to older copies is noticed) and the head of the metadata
journal's chain at its last commit (so a journal whose tail was cut, or whose
newest epoch was deleted, is noticed). The mount registry lives here too.

The directory is DWFS_STATE_DIR, else $XDG_STATE_HOME/dwfs, else
~/.local/state/dwfs, one subdirectory per pool; it is read when a pool opens,
never at import. Its directories are made 0700 and must belong to this user;
files are written without following links (a new file replaces the old by
rename) and read with a size bound.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import stat
import struct
from pathlib import Path
from typing import Any

import blake3

from dwfs._accel import write_flush
from dwfs.errors import UsageError
from dwfs.types import ChainHead

_HEAD = struct.Struct("<Q16sB32sI")
"""txg, epoch id, the tag's length, the tag (binary, so its length is kept), and
the length of the copy of the record that follows the MAC."""
_HEAD_MAC = 16
HEAD_COPY_LIMIT = 256 * 1024
"""The largest journal record kept beside its chain head (one fsync's logged
writes are at most LOG_LIMIT, 128 KiB, before compression)."""
_HEAD_SLOT = _HEAD.size + _HEAD_MAC + HEAD_COPY_LIMIT
SMALL_FILE = 64 * 1024
"""The most of any state file read back."""


def state_root() -> Path:
    explicit = os.environ.get("DWFS_STATE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "dwfs"


def private_dir(path: Path) -> Path:
    """Make path (and its parents) a directory of this user's, 0700 where made.

    Raises:
        UsageError: it is a link, not a directory, another user's, or writable
            by others.
    """
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{path} is not a directory (a link?): remove it so dwfs can make it")
    if st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise UsageError(
            f"{path} belongs to another user or is writable by others: "
            "`chmod 700` it or point DWFS_STATE_DIR elsewhere"
        )
    return path


def write_private(path: Path, data: bytes, sync: bool = False) -> None:
    """Replace path's content with data, mode 0600, following no link.

    The bytes go to a fresh temporary file (O_EXCL, O_NOFOLLOW) renamed over
    path, so a link planted at either name is replaced, never written through.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, 0o600)
    try:
        os.write(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(path)
    if sync:
        _fsync_dir(path.parent)


def append_private(path: Path) -> int:
    """A descriptor to append to a log file of this user's, made 0600, never
    through a link.

    Raises:
        UsageError: path is a link, not a regular file, or another user's.
    """
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        raise UsageError(f"cannot open the log {path}: {exc.strerror}: remove it") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
        os.close(fd)
        raise UsageError(f"{path} is not a file of this user's: remove it")
    os.fchmod(fd, 0o600)
    return fd


def read_private(path: Path, limit: int = SMALL_FILE) -> bytes | None:
    """A state file's bytes (at most limit); None if it is missing, a link or not ours."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            return None
        return os.pread(fd, limit, 0)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalState:
    """What this machine remembers of one pool."""

    def __init__(self, pool: str, root: Path | None = None) -> None:
        self.dir = (root or state_root()) / pool
        self._head_fd: int | None = None

    def _count(self, name: str) -> int:
        """A number this machine recorded in the file `name` (0: none)."""
        raw = read_private(self.dir / name, 64)
        try:
            return int(raw.decode().strip()) if raw else 0
        except ValueError:
            return 0

    def _record_count(self, name: str, value: int) -> None:
        private_dir(self.dir)
        write_private(self.dir / name, f"{value}\n".encode(), sync=True)

    def last_generation(self) -> int:
        return self._count("generation")

    def record_generation(self, generation: int) -> None:
        if generation > self.last_generation():
            self._record_count("generation", generation)

    def start_over(self, generation: int, key: bytes) -> None:
        """Forget what this machine knew of the pool's devices (their generation and
        the journal's chain head) and start from new devices at `generation`: for
        a pool attached anew from its remote tier, whose devices start empty."""
        self.forget_freshness(generation)
        self.record_chain_head(key, ChainHead(0, b"", b""))

    def forget_freshness(self, generation: int) -> None:
        """Take the pool's devices as they are: its generation becomes the one
        this machine last saw, and the journal's chain head is forgotten (the
        next commit records a new one). For devices restored from a backup on
        purpose; freshness goes unchecked until then."""
        self._record_count("generation", generation)
        self.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.dir / "journal-head")

    def last_remote_generation(self) -> int:
        """The newest generation of the remote tier's superblock this machine
        wrote or read (0: none)."""
        return self._count("remote-generation")

    def record_remote_generation(self, generation: int) -> None:
        if generation > self.last_remote_generation():
            self._record_count("remote-generation", generation)

    def remote_intent(self) -> tuple[int, str] | None:
        """(generation, manifest name) of the remote superblock a sync was about to
        write when it last began one, if any."""
        raw = read_private(self.dir / "remote-intent", 256)
        try:
            generation, manifest = (raw or b"").decode().split()
            return int(generation), manifest
        except ValueError:
            return None

    def record_remote_intent(self, generation: int, manifest: str) -> None:
        """Say durably, before a sync writes the remote's superblock, what it will
        write: a crash after the write but before record_remote_generation()
        leaves the remote one generation ahead of this machine's record, and this
        tells that copy from one another machine wrote."""
        private_dir(self.dir)
        write_private(self.dir / "remote-intent", f"{generation} {manifest}\n".encode(), sync=True)

    # -- the journal's chain head -------------------------------------------------

    def chain_head(self, key: bytes) -> ChainHead | None:
        """The newest authentic head recorded, with its record's copy if it was
        kept (key: the MAC key it was written with)."""
        raw = read_private(self.dir / "journal-head", 2 * _HEAD_SLOT) or b""
        heads = []
        for at in (0, _HEAD_SLOT):
            slot = raw[at : at + _HEAD_SLOT]
            if len(slot) < _HEAD.size + _HEAD_MAC or not any(slot[: _HEAD.size + _HEAD_MAC]):
                continue
            body = slot[: _HEAD.size]
            txg, epoch_id, length, tag, copied = _HEAD.unpack(body)
            mac = slot[_HEAD.size : _HEAD.size + _HEAD_MAC]
            record = slot[_HEAD.size + _HEAD_MAC :][:copied]
            if len(record) != copied or not hmac.compare_digest(_mac(key, body + record), mac):
                continue
            heads.append(ChainHead(txg, epoch_id, tag[:length], record))
        return max(heads, key=lambda h: h.txg, default=None)

    def record_chain_head(self, key: bytes, head: ChainHead) -> None:
        """Record the chain head durably (fdatasync)."""
        fd, data, offset = self.chain_head_write(key, head)
        [err] = write_flush([(fd, data, offset, True)])
        if err:
            raise OSError(err, f"recording the journal's chain head: {os.strerror(err)}")

    def chain_head_write(self, key: bytes, head: ChainHead) -> tuple[int, bytes, int]:
        """The write that records the chain head, with the copy of its record it
        carries (at most HEAD_COPY_LIMIT): (descriptor, bytes, offset), for the
        caller to make and flush with the record's own writes.

        The two slots alternate, so a torn write leaves the previous head readable;
        the MAC covers the copy, so a slot whose copy is torn is not a head."""
        if len(head.record) > HEAD_COPY_LIMIT:
            raise ValueError("a journal record too large to keep beside its chain head")
        fd = self._head_file()
        body = _HEAD.pack(head.txg, head.epoch_id, len(head.tag), head.tag, len(head.record))
        slot = head.txg % 2
        return fd, body + _mac(key, body + head.record) + head.record, slot * _HEAD_SLOT

    def _head_file(self) -> int:
        if self._head_fd is None:
            private_dir(self.dir)
            path = self.dir / "journal-head"
            flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(path, flags, 0o600)
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
                os.close(fd)
                raise UsageError(f"{path} is not a file of this user's: remove it")
            if st.st_size < 2 * _HEAD_SLOT:
                os.posix_fallocate(fd, 0, 2 * _HEAD_SLOT)
                os.fsync(fd)
            self._head_fd = fd
        return self._head_fd

    def close(self) -> None:
        if self._head_fd is not None:
            os.close(self._head_fd)
            self._head_fd = None

    def read(self, name: str) -> bytes | None:
        """A small record of this pool's kept here (a scrub's progress, say), if any."""
        return read_private(self.dir / name)

    def write(self, name: str, data: bytes) -> None:
        """Replace the record `name` (not fsync'd: it is progress, not data)."""
        private_dir(self.dir)
        write_private(self.dir / name, data)

    # -- the mount registry -------------------------------------------------------

    def mount_info(self) -> dict[str, Any] | None:
        """The registry entry of this pool's mount, if one registered."""
        raw = read_private(self.dir / "mount.json")
        try:
            info = json.loads(raw) if raw else None
        except ValueError:
            return None
        return info if isinstance(info, dict) else None


def _mac(key: bytes, body: bytes) -> bytes:
    return blake3.blake3(body, key=key).digest(_HEAD_MAC)
