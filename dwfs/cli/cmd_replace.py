"""dwfsctl replace: rebuild one device of a pool onto a new directory, on a
mounted pool (through its mount, while it is in use) or on its devices."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import trio

from dwfs.cli import _mounts, _secrets
from dwfs.cli._output import ProgressLine

POLL = 0.5
"""Seconds between looks at a mounted pool's resilver while waiting for it."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "replace",
        help="rebuild a device onto a new directory (mounted or not)",
        description="Rebuild every shard that OLD_DEVICE holds (or held, if it is gone) onto "
        "NEW_DEVICE, an empty or new directory. On a pool that is not mounted, NEW_DEVICE "
        "is filled first and swapped in only when complete. On a mounted pool it takes "
        "OLD_DEVICE's place at once and a resilver rebuilds it in the background while the "
        "filesystem stays in use (this command waits for it, showing its progress on a "
        "terminal; the resilver goes on if it is interrupted).",
    )
    _secrets.add_unlock_options(p)
    p.add_argument(
        "device",
        metavar="MOUNTPOINT|DEVICE",
        type=Path,
        help="where the pool is mounted, or any working device of a pool that is not",
    )
    p.add_argument("old", metavar="OLD_DEVICE", help="the device to replace (path or uuid)")
    p.add_argument("new", metavar="NEW_DEVICE", type=Path, help="an empty or new directory")
    p.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    if os.path.ismount(args.device):
        state = await _on_mount(args)
    else:
        with ProgressLine("replace") as progress:
            async with _secrets.unlocked_pool(args) as pool:
                await pool.replace(args.old, args.new, progress)
                state = pool.array.state()
    print(f"replaced {args.old} with {args.new}; pool is {state}")
    return 0


async def _on_mount(args: argparse.Namespace) -> str:
    info = _mounts.find(args.device)
    body = {"cmd": "replace", "old": args.old, "new": str(args.new.resolve())}
    status: dict[str, Any] = _mounts.request(info, body, timeout=600)
    with ProgressLine("resilver") as progress:
        while status["resilver"] is not None or any(d["resilvering"] for d in status["devices"]):
            done = status["resilver"] or {"stripes_done": 0, "bytes_done": 0, "bytes": 0}
            progress(done["stripes_done"], done["bytes_done"], done["bytes"] or None)
            await trio.sleep(POLL)
            status = await trio.to_thread.run_sync(_mounts.request, info, {"cmd": "status"})
    return str(status["state"])
