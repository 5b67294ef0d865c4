"""Serving a Volume at a mountpoint through the kernel's FUSE driver.

serve() returns when the filesystem is unmounted (`fusermount3 -u`, `dwfsctl
umount`) or when it receives SIGTERM or SIGINT, which unmount it first.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import pyfuse3
import trio

from dwfs.errors import UsageError
from dwfs.fuse import bdi, native, requests
from dwfs.fuse.operations import Operations
from dwfs.vfs import Volume

log = logging.getLogger(__name__)

KERNEL_FLAGS = frozenset(
    {"rw", "noexec", "exec", "nosuid", "suid", "nodev", "dev", "noatime", "nodiratime"}
)
"""Mount flags the kernel enforces, passed to the mount as they are (libfuse
mounts nosuid,nodev unless told suid or dev)."""
ALLOWED_OPTIONS = frozenset({"allow_other", "nonempty", "kernel_limits"}) | KERNEL_FLAGS
"""allow_other: other users may use the mount; nonempty: mount over a non-empty
directory; kernel_limits: keep the kernel's FUSE writeback and read-ahead limits
(see dwfs.fuse.bdi)."""
FRONTEND_OPTION = "frontend="
FRONTENDS = ("native", "pyfuse3")
DEFAULT_OPTIONS = frozenset({"default_permissions"})
"""The kernel checks permissions (mode bits and ACLs) itself, as pyfuse3's defaults ask."""


def option_value(options: set[str], prefix: str) -> str | None:
    """The value of a NAME=VALUE mount option (`prefix` is "NAME="), if given.

    Raises:
        UsageError: given with two values (options are a set: which came last
            is not known, so neither is taken).
    """
    given = {o[len(prefix) :] for o in options if o.startswith(prefix)}
    if len(given) > 1:
        raise UsageError(f"-o {prefix}... is given {len(given)} values: give it once")
    return given.pop() if given else None


def frontend_of(options: set[str]) -> str:
    """The front end a mount uses: frontend=NAME if given, else DWFS_FRONTEND
    from the environment, else native where it was built and pyfuse3 elsewhere.

    Raises:
        UsageError: an unknown front end, or native where it was not built.
    """
    default = "native" if native.available() else "pyfuse3"
    name = option_value(options, FRONTEND_OPTION) or os.environ.get("DWFS_FRONTEND") or default
    if name not in FRONTENDS:
        raise UsageError(f"frontend={name} is not one of {', '.join(FRONTENDS)}")
    if name == "native" and not native.available():
        raise UsageError(
            "the native front end was not built (libfuse3's headers were missing): "
            "use -o frontend=pyfuse3, or install libfuse3-dev and reinstall dwfs"
        )
    return name


_LIBC = ctypes.CDLL(None, use_errno=True)


def _syncfs(mountpoint: Path) -> None:
    """syncfs(2) with the GIL released: the kernel hands the dirty pages to this
    very process, whose loop must run meanwhile (pyfuse3.syncfs keeps the GIL)."""
    fd = os.open(mountpoint, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _LIBC.syncfs(fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), str(mountpoint))
    finally:
        os.close(fd)


SIGNAL_WRITEBACK_SECONDS = 120
"""How long a signalled daemon waits for the kernel to hand over dirty pages."""


async def _unmount_on_signal(
    mountpoint: Path,
    stop: Callable[[], None],
    signalled: trio.Event,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """On SIGTERM or SIGINT, take the kernel's dirty pages (syncfs, served while
    the loop still runs), then end the loop; serve() stores and commits them."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        task_status.started()
        async for signum in signals:
            log.info("signal %d: writing back and unmounting", signum)
            with trio.move_on_after(SIGNAL_WRITEBACK_SECONDS) as scope:
                try:
                    await trio.to_thread.run_sync(_syncfs, mountpoint, abandon_on_cancel=True)
                except OSError as exc:
                    log.warning("syncfs before unmounting failed: %s", exc)
            if scope.cancelled_caught:
                log.warning(
                    "the kernel's writeback took over %d s; unmounting without it",
                    SIGNAL_WRITEBACK_SECONDS,
                )
            signalled.set()
            stop()
            return


async def _relax_limits(initialised: trio.Event, mountpoint: Path) -> None:
    """After the kernel has taken our INIT reply, which resets the read-ahead."""
    await initialised.wait()
    await trio.to_thread.run_sync(bdi.relax, mountpoint)


async def serve(
    volume: Volume, mountpoint: Path, options: set[str], ready: Callable[[], None]
) -> None:
    """Mount, call ready(), and serve requests until unmounted."""
    fuse_options = set(DEFAULT_OPTIONS) | {f"fsname=dwfs:{volume.pool.id}", "subtype=dwfs"}
    fuse_options |= options & ({"allow_other"} | KERNEL_FLAGS)
    target = Path(await trio.Path(mountpoint).resolve())  # once mounted, this would ask us
    frontend = frontend_of(options)
    log.info("serving %s through the %s front end", target, frontend)
    if frontend == "native":
        await _serve_native(volume, target, fuse_options, options, ready)
    else:
        await _serve_pyfuse3(volume, target, fuse_options, options, ready)


async def _serve_native(
    volume: Volume,
    target: Path,
    fuse_options: set[str],
    options: set[str],
    ready: Callable[[], None],
) -> None:
    session = native.NativeSession(volume, target, fuse_options)
    unmounted = False

    async def main(signalled: trio.Event) -> bool:
        return await session.serve()

    try:
        unmounted = await _serving(target, options, session.initialised, session.stop, ready, main)
    finally:
        session.close(unmount=not unmounted)


async def _serve_pyfuse3(
    volume: Volume,
    target: Path,
    fuse_options: set[str],
    options: set[str],
    ready: Callable[[], None],
) -> None:
    operations = Operations(volume)
    volume.front_end = lambda: {"name": "pyfuse3"}
    before = requests.fuse_fds()
    pyfuse3.init(operations, str(target), fuse_options)
    waiter = requests.install(requests.fuse_fds() - before)
    unmounted = False

    def stop() -> None:
        if waiter is not None:
            waiter.close()
        pyfuse3.terminate()

    async def main(signalled: trio.Event) -> bool:
        await pyfuse3.main()
        return not signalled.is_set()  # else the kernel still has the mount

    try:
        unmounted = await _serving(target, options, operations.initialised, stop, ready, main)
    finally:
        pyfuse3.close(unmount=not unmounted)


async def _serving(
    target: Path,
    options: set[str],
    initialised: trio.Event,
    stop: Callable[[], None],
    ready: Callable[[], None],
    main: Callable[[trio.Event], Awaitable[bool]],
) -> bool:
    """Serve requests (main) beside the signal handler and the relaxing of the
    kernel's limits, once ready() has been told; whether the kernel ended the
    mount (else a signal stopped it, and it is still mounted)."""
    signalled = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(_unmount_on_signal, target, stop, signalled)
        if "kernel_limits" not in options:
            nursery.start_soon(_relax_limits, initialised, target)
        ready()
        unmounted = await main(signalled)
        nursery.cancel_scope.cancel()
    return unmounted
