"""What errno a failed request answers: a DwfsError's own, EIO for anything
else (logged with its traceback), so nothing Python-shaped reaches the kernel.
Both front ends answer through it."""

from __future__ import annotations

import errno
import logging

from dwfs.errors import find_dwfs_error

log = logging.getLogger("dwfs.fuse")


def errno_of(exc: Exception, request: str) -> int:
    """The errno to answer `request` with after it raised exc (logged where the
    user should hear of it: EIO and ENOSPC, and every unexpected exception)."""
    known = find_dwfs_error(exc)
    if known is None:
        log.error("%s failed; answering EIO", request, exc_info=exc)
        return errno.EIO
    if known.errno in (errno.EIO, errno.ENOSPC):
        log.error("%s: %s", request, known)
    return known.errno
