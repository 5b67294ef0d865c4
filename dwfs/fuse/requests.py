"""Waiting for the next FUSE request without parking when one is already queued.

pyfuse3 3.5's request loop calls its module-level `_wait_fuse_readable()`
before every read of /dev/fuse, and that always parks the task in trio's epoll
(register the fd, a pass through the run loop, epoll_wait), even when the kernel
has already queued the next request, as it usually has while a program is busy
with the mount. `install()` puts a `Waiter` in its place, which asks poll(2)
with a zero timeout first and parks only when nothing is queued: about a fifth
more small-file operations and random 4 KiB I/O per second (docs/performance.md).

The replacement keeps pyfuse3's contract for the hook: one task parks at a time,
a task that goes on to read finds a request, and once the loop is to end
(`Waiter.close()` beside `pyfuse3.terminate()`, which closes the fd for a parked
waiter) every wait returns False. pyfuse3 keeps its session fd private, so
`install()` is given the /dev/fuse descriptor that appeared during `pyfuse3.init()`. If a
later pyfuse3 has no such hook, pyfuse3's own wait stays (and a test says so).
"""

from __future__ import annotations

import logging
import os
import select
from pathlib import Path

import pyfuse3
import trio

log = logging.getLogger(__name__)

HOOK = "_wait_fuse_readable"
YIELD_EVERY = 16
"""Every this many waits in a row that do not park, one checkpoint, so a steady
stream of requests cannot starve trio's other tasks."""


class Waiter:
    """pyfuse3's wait for a readable fd, polling before it parks.

    A task goes on to read only right after poll(2) saw a request, with no
    yield in between, so no two tasks read for one request: a task woken by
    epoll polls again, since a running task may have taken the request first.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)
        self._lock: trio.Lock | None = None
        self._streak = 0
        self._closed = False

    def close(self) -> None:
        """End the loop: this and every later wait returns False."""
        self._closed = True

    async def __call__(self) -> bool:
        """True when a request can be read, False when the loop should end."""
        if self._lock is None:
            self._lock = trio.Lock()
        self._streak += 1
        if self._streak % YIELD_EVERY == 0:
            await trio.lowlevel.checkpoint()
        if self._closed:
            return False
        if self._poll.poll(0):
            return True
        self._streak = 0
        async with self._lock:
            while not self._closed:
                if self._poll.poll(0):
                    return True
                try:
                    await trio.lowlevel.wait_readable(self._fd)
                except trio.ClosedResourceError:
                    self._closed = True
        return False


def fuse_fds() -> set[int]:
    """This process's open descriptors of /dev/fuse."""
    found = set()
    fds = Path("/proc/self/fd")
    for name in os.listdir(fds):
        try:
            if os.readlink(fds / name) == "/dev/fuse":
                found.add(int(name))
        except OSError:
            continue  # the descriptor of the listing itself, or one just closed
    return found


def install(opened: set[int]) -> Waiter | None:
    """Serve pyfuse3's request loop with a Waiter on the /dev/fuse fd that init opened.

    opened: the /dev/fuse descriptors that appeared during `pyfuse3.init()`.
    None, and pyfuse3's own wait stays, unless that is exactly one and pyfuse3
    has the hook. Close the Waiter when calling `pyfuse3.terminate()`.
    """
    if not callable(getattr(pyfuse3, HOOK, None)):
        log.warning("pyfuse3 %s has no %s; its own request wait stays", pyfuse3.__version__, HOOK)
        return None
    if len(opened) != 1:
        log.warning("pyfuse3.init opened %d /dev/fuse fds; its own request wait stays", len(opened))
        return None
    waiter = Waiter(next(iter(opened)))
    setattr(pyfuse3, HOOK, waiter)
    return waiter
