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

from dwfs.fuse import bdi, requests
from dwfs.fuse.operations import Operations
from dwfs.vfs import Volume

log = logging.getLogger(__name__)

ALLOWED_OPTIONS = frozenset({"allow_other", "nonempty", "kernel_limits"})
"""allow_other: other users may use the mount; nonempty: mount over a non-empty
directory; kernel_limits: keep the kernel's FUSE writeback and read-ahead limits
(see dwfs.fuse.bdi)."""


async def _unmount_on_signal(
    waiter: requests.Waiter | None, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        task_status.started()
        async for signum in signals:
            log.info("signal %d: unmounting", signum)
            if waiter is not None:
                waiter.close()
            pyfuse3.terminate()
            return


async def _relax_limits(initialised: trio.Event, mountpoint: Path) -> None:
    """After the kernel has taken our INIT reply, which resets the read-ahead."""
    await initialised.wait()
    await trio.to_thread.run_sync(bdi.relax, mountpoint)


async def serve(
    volume: Volume, mountpoint: Path, options: set[str], ready: Callable[[], None]
) -> None:
    """Mount, call ready(), and serve requests until unmounted."""
    fuse_options = set(pyfuse3.default_options) | {f"fsname=dwfs:{volume.pool.id}", "subtype=dwfs"}
    fuse_options |= options & {"allow_other"}
    target = Path(await trio.Path(mountpoint).resolve())  # once mounted, this would ask us
    operations = Operations(volume)
    before = requests.fuse_fds()
    pyfuse3.init(operations, str(target), fuse_options)
    waiter = requests.install(requests.fuse_fds() - before)
    unmounted = False
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(_unmount_on_signal, waiter)
            if "kernel_limits" not in options:
                nursery.start_soon(_relax_limits, operations.initialised, target)
            ready()
            await pyfuse3.main()
            unmounted = True
            nursery.cancel_scope.cancel()
    finally:
        pyfuse3.close(unmount=not unmounted)
