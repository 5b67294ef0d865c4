"""One error taxonomy for every layer of dwfs.

Each class carries the errno the filesystem adapters report and the exit status the
command line returns, so the translation happens at exactly one edge per adapter.
Messages name the problem and what to do about it; they never contain a key, a
passphrase or file content.
"""

from __future__ import annotations

import enum
import errno as _errno


class ExitCode(enum.IntEnum):
    """Exit statuses of dwfsctl, one per kind of failure."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    BAD_KEY = 3
    INTEGRITY = 4
    DEVICE = 5
    NO_SPACE = 6
    BUSY = 7
    REMOTE = 8
    INTERRUPTED = 130


class DwfsError(Exception):
    """Base of every error dwfs raises on purpose."""

    errno: int = _errno.EIO
    exit_code: ExitCode = ExitCode.FAILURE


class UsageError(DwfsError):
    """The request itself is malformed: a bad option, name or argument."""

    errno = _errno.EINVAL
    exit_code = ExitCode.USAGE


class NotFound(DwfsError):
    errno = _errno.ENOENT
    exit_code = ExitCode.USAGE


class Exists(DwfsError):
    errno = _errno.EEXIST
    exit_code = ExitCode.USAGE


class NotEmpty(DwfsError):
    errno = _errno.ENOTEMPTY
    exit_code = ExitCode.USAGE


class NotADirectory(DwfsError):
    errno = _errno.ENOTDIR
    exit_code = ExitCode.USAGE


class IsADirectory(DwfsError):
    errno = _errno.EISDIR
    exit_code = ExitCode.USAGE


class NameTooLong(DwfsError):
    errno = _errno.ENAMETOOLONG
    exit_code = ExitCode.USAGE


class InvalidArgument(DwfsError):
    errno = _errno.EINVAL
    exit_code = ExitCode.USAGE


class NoAttribute(DwfsError):
    """The extended attribute does not exist (ENODATA, which Linux calls ENOATTR)."""

    errno = _errno.ENODATA
    exit_code = ExitCode.USAGE


class NotPermitted(DwfsError):
    errno = _errno.EPERM
    exit_code = ExitCode.USAGE


class NoSuchOffset(DwfsError):
    """lseek found no data (or hole) at or after the offset: past the end."""

    errno = _errno.ENXIO


class NotSupported(DwfsError):
    errno = _errno.EOPNOTSUPP
    exit_code = ExitCode.USAGE


class ReadOnly(DwfsError):
    errno = _errno.EROFS


class NoSpace(DwfsError):
    errno = _errno.ENOSPC
    exit_code = ExitCode.NO_SPACE


class Busy(DwfsError):
    errno = _errno.EBUSY
    exit_code = ExitCode.BUSY

    def __init__(self, message: str, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid
        """The process holding what was asked for, where known."""


class BadKey(DwfsError):
    """No keyslot opens with the passphrase, key file or recovery key given."""

    errno = _errno.EACCES
    exit_code = ExitCode.BAD_KEY


class IntegrityError(DwfsError):
    """Data or metadata failed authentication and could not be repaired."""

    errno = _errno.EIO
    exit_code = ExitCode.INTEGRITY


class Unrecoverable(IntegrityError):
    """More shards of a stripe are lost or corrupt than its parity can rebuild."""


class DeviceError(DwfsError):
    """A device is missing, foreign, unreadable or of an unknown format."""

    errno = _errno.EIO
    exit_code = ExitCode.DEVICE


class FormatError(DeviceError):
    """An on-disk structure has a format version this dwfs does not know."""


class RemoteError(DwfsError):
    """The remote tier refused a request: a bucket that does not exist, refused
    credentials, an object that is missing or malformed."""

    errno = _errno.EIO
    exit_code = ExitCode.REMOTE


class ObjectMissing(RemoteError):
    """An object dwfs wrote is not on the remote (deleted there, or never written)."""


class TierUnavailable(RemoteError):
    """The remote tier cannot be reached now (down, slow past the timeout)."""


def find_dwfs_error(exc: BaseException) -> DwfsError | None:
    """exc itself, or the first DwfsError inside an exception group (trio nurseries
    wrap what their tasks raise), or None."""
    if isinstance(exc, DwfsError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = find_dwfs_error(inner)
            if found is not None:
                return found
    return None
