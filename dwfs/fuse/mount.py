"""Serving a Volume at a mountpoint through the kernel's FUSE driver.

serve() returns when the filesystem is unmounted (`fusermount3 -u`, `dwfsctl
umount`) or when it receives SIGTERM or SIGINT, which unmount it first.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from pathlib import Path

import pyfuse3
import trio

from dwfs.fuse.operations import Operations
from dwfs.vfs import Volume

log = logging.getLogger(__name__)

ALLOWED_OPTIONS = frozenset({"allow_other", "nonempty"})


async def _unmount_on_signal(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        task_status.started()
        async for signum in signals:
            log.info("signal %d: unmounting", signum)
            pyfuse3.terminate()
            return


async def serve(
    volume: Volume, mountpoint: Path, options: set[str], ready: Callable[[], None]
) -> None:
    """Mount, call ready(), and serve requests until unmounted."""
    fuse_options = set(pyfuse3.default_options) | {f"fsname=dwfs:{volume.pool.id}", "subtype=dwfs"}
    fuse_options |= options & {"allow_other"}
    pyfuse3.init(Operations(volume), str(mountpoint), fuse_options)
    unmounted = False
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(_unmount_on_signal)
            ready()
            await pyfuse3.main()
            unmounted = True
            nursery.cancel_scope.cancel()
    finally:
        pyfuse3.close(unmount=not unmounted)
