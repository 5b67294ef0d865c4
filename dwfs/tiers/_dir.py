"""A remote in a directory: a local disk, a NAS share, anything mounted.

The directory is as hostile as a device's: below it nothing is opened through
a symbolic link (every name is opened relative to its parent's descriptor,
with O_NOFOLLOW), only regular files are read, and sizes are bounded. A put
writes a new file beside the old one, syncs it, renames it into place and
syncs the directory, so an object is whole or absent after a crash.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from dwfs.errors import ObjectMissing, RemoteError, TierUnavailable, UsageError
from dwfs.tiers._backend import MAX_OBJECT, check_name
from dwfs.tiers._url import RemoteURL
from dwfs.types import Buffer

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
"""O_NONBLOCK: opening a FIFO planted in the remote must not wait for a writer."""
_TMP = ".tmp-"
STALE_TMP_SECONDS = 3600
"""A temporary file this old is what a put cut off by a crash left (a put gives
up after the tier's 30 s timeout); listing its folder removes it."""
_GONE = (errno.ENOENT,)


class DirBackend:
    """Objects as files under one directory, folders as subdirectories."""

    def __init__(self, url: RemoteURL) -> None:
        self._url = str(url)
        self._path = Path(url.location)
        try:
            with contextlib.suppress(FileExistsError):
                self._path.mkdir(mode=0o700)
        except FileNotFoundError:
            raise RemoteError(
                f"{self._url}: the directory above {self._path} does not exist: create it first"
            ) from None
        except OSError as exc:
            raise RemoteError(f"{self._url} cannot be made: {exc.strerror}") from None
        os.close(self._open_root())

    def _open_root(self) -> int:
        """A descriptor of the remote's directory, opened afresh for every call (a
        share unmounted and mounted again, or a directory replaced, is seen), and
        checked to be this user's alone.

        Raises:
            RemoteError: it is missing, not a directory, or others may write it.
        """
        try:
            fd = os.open(self._path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            error = RemoteError if exc.errno in (*_GONE, errno.ENOTDIR) else TierUnavailable
            raise error(f"{self._url} cannot be opened: {exc.strerror}") from None
        info = os.fstat(fd)
        if info.st_uid != os.geteuid() or info.st_mode & 0o022:
            os.close(fd)
            raise RemoteError(
                f"{self._url} belongs to another user or is writable by others: "
                "use a directory only you can write (chmod go-w)"
            )
        return fd

    @property
    def url(self) -> str:
        return self._url

    @contextlib.contextmanager
    def _open_folder(self, parts: list[str], create: bool) -> Iterator[int]:
        """A descriptor of the folder these name parts lead to, each opened below
        the last without following links (and made, with create)."""
        fd = self._open_root()
        try:
            for part in parts:
                if create:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o700, dir_fd=fd)
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
            yield fd
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _folder(self, name: str, create: bool) -> Iterator[tuple[int, str]]:
        """(descriptor of the object's folder, the object's last name part)."""
        *folders, leaf = check_name(name).split("/")
        with self._open_folder(folders, create) as fd:
            yield fd, leaf

    def put(self, name: str, data: Buffer) -> None:
        try:
            with self._folder(name, create=True) as (folder, leaf):
                tmp = f"{_TMP}{leaf}.{secrets.token_hex(8)}"
                fd = os.open(
                    tmp,
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                    0o600,
                    dir_fd=folder,
                )
                try:
                    view = memoryview(data).cast("B")
                    while view:
                        view = view[os.write(fd, view) :]
                    os.fdatasync(fd)
                finally:
                    os.close(fd)
                os.rename(tmp, leaf, src_dir_fd=folder, dst_dir_fd=folder)
                os.fsync(folder)
        except OSError as exc:
            raise self._failed("write", name, exc) from None

    def get(self, name: str, start: int = 0, length: int | None = None) -> bytes:
        try:
            with self._folder(name, create=False) as (folder, leaf):
                fd = os.open(leaf, _READ_FLAGS, dir_fd=folder)
                try:
                    size = _regular_size(fd, self._url, name)
                    want = size - start if length is None else length
                    if start < 0 or want < 0 or start + want > size:
                        raise RemoteError(
                            f"object {name} on {self._url} is shorter than dwfs wrote it"
                        )
                    return _pread_all(fd, want, start)
                finally:
                    os.close(fd)
        except OSError as exc:
            raise self._failed("read", name, exc) from None

    def size(self, name: str) -> int | None:
        try:
            with self._folder(name, create=False) as (folder, leaf):
                fd = os.open(leaf, _READ_FLAGS, dir_fd=folder)
                try:
                    return _regular_size(fd, self._url, name)
                finally:
                    os.close(fd)
        except OSError as exc:
            if exc.errno in _GONE:
                return None
            raise self._failed("read", name, exc) from None

    def list(self, prefix: str) -> list[str]:
        folder_name = prefix.rstrip("/")
        try:
            with self._open_folder(check_name(folder_name).split("/"), create=False) as folder:
                return sorted(_walk(folder, folder_name))
        except OSError as exc:
            if exc.errno in _GONE:
                return []
            raise self._failed("list", prefix, exc) from None

    def delete(self, name: str) -> None:
        try:
            with self._folder(name, create=False) as (folder, leaf):
                os.unlink(leaf, dir_fd=folder)
        except OSError as exc:
            if exc.errno not in _GONE:
                raise self._failed("delete", name, exc) from None

    def close(self) -> None:
        return

    def _failed(self, what: str, name: str, exc: OSError) -> RemoteError:
        if exc.errno in _GONE:
            return ObjectMissing(f"object {name} is missing from {self._url}")
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            return RemoteError(
                f"{name} on {self._url} passes through a symbolic link or a non-directory: "
                "remove it"
            )
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS):
            return RemoteError(f"{self._url} refused to {what} {name}: {exc.strerror}")
        return TierUnavailable(f"{self._url} failed to {what} {name}: {exc.strerror}")


def _walk(folder: int, name: str) -> list[str]:
    """The objects in a folder and below it, each opened without following links;
    stale temporary files of cut-off puts met on the way are removed."""
    found: list[str] = []
    for leaf in os.listdir(folder):
        if leaf.startswith(_TMP):
            _remove_if_stale(folder, leaf)
            continue
        if not _is_name(leaf):
            continue
        try:
            child = os.open(leaf, _DIR_FLAGS, dir_fd=folder)
        except OSError as exc:
            if exc.errno == errno.ENOTDIR:
                found.append(f"{name}/{leaf}")
                continue
            raise
        try:
            found.extend(_walk(child, f"{name}/{leaf}"))
        finally:
            os.close(child)
    return found


def _remove_if_stale(folder: int, leaf: str) -> None:
    with contextlib.suppress(OSError):
        st = os.stat(leaf, dir_fd=folder, follow_symlinks=False)
        if stat.S_ISREG(st.st_mode) and time.time() - st.st_mtime > STALE_TMP_SECONDS:
            os.unlink(leaf, dir_fd=folder)


def _is_name(leaf: str) -> bool:
    try:
        check_name(leaf)
    except UsageError:
        return False
    return True


def _regular_size(fd: int, url: str, name: str) -> int:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise RemoteError(f"{name} on {url} is not a regular file: remove it")
    if info.st_size > MAX_OBJECT:
        raise RemoteError(f"{name} on {url} is larger than any object dwfs writes")
    return info.st_size


def _pread_all(fd: int, length: int, offset: int) -> bytes:
    parts = []
    while length:
        got = os.pread(fd, length, offset)
        if not got:
            raise OSError(errno.EIO, "the file ended early")
        parts.append(got)
        length -= len(got)
        offset += len(got)
    return b"".join(parts)
