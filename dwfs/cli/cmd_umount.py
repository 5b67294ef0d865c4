"""dwfsctl umount: unmount a dwfs filesystem and wait until its data is stored."""

from __future__ import annotations

import argparse
from pathlib import Path

import trio

from dwfs.cli import _mounts
from dwfs.errors import Busy, NotFound

WAIT_SECONDS = 300


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "umount",
        help="unmount a dwfs filesystem",
        description="Unmount MOUNTPOINT and wait until the mount daemon has stored, committed "
        "and checkpointed everything and exited.",
    )
    p.add_argument("mountpoint", metavar="MOUNTPOINT", type=Path)
    p.set_defaults(run=run)


def _is_dwfs_mount(path: Path) -> bool:
    target = str(path.resolve())
    with open("/proc/self/mounts") as mounts:
        return any(line.split()[1] == target and line.split()[2] == "fuse.dwfs" for line in mounts)


async def run(args: argparse.Namespace) -> int:
    try:
        pid: int | None = int(_mounts.find(args.mountpoint)["pid"])
    except NotFound:
        if not _is_dwfs_mount(args.mountpoint):
            raise
        pid = None  # the daemon died; the kernel mount is left to detach
    result = await trio.run_process(
        ["fusermount3", "-u", str(args.mountpoint)], check=False, capture_stderr=True
    )
    if result.returncode:
        lines = result.stderr.decode(errors="replace").strip().splitlines() or ["failed"]
        raise Busy(f"cannot unmount {args.mountpoint}: {lines[-1]}")
    with trio.move_on_after(WAIT_SECONDS):
        # The daemon is not our child: its exit has no event to wait on.
        while pid is not None and _mounts.alive(pid):  # noqa: ASYNC110
            await trio.sleep(0.05)
    if pid is not None and _mounts.alive(pid):
        raise Busy(f"unmounted, but the daemon (pid {pid}) is still storing data")
    print(f"unmounted {args.mountpoint}")
    return 0
