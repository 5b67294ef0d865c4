"""dwfsctl replace: rebuild one device of a pool onto a new directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from dwfs.cli import _secrets
from dwfs.cli._output import ProgressLine


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "replace",
        help="rebuild a device onto a new directory",
        description="Rebuild every shard that OLD_DEVICE holds (or held, if it is gone) onto "
        "NEW_DEVICE, an empty or new directory, then swap it into the pool.",
    )
    _secrets.add_unlock_options(p)
    p.add_argument("device", metavar="DEVICE", type=Path, help="any working device of the pool")
    p.add_argument("old", metavar="OLD_DEVICE", help="the device to replace (path or uuid)")
    p.add_argument("new", metavar="NEW_DEVICE", type=Path, help="an empty or new directory")
    p.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    with ProgressLine("replace") as progress:
        async with _secrets.unlocked_pool(args) as pool:
            await pool.replace(args.old, args.new, progress)
            state = pool.array.state()
    print(f"replaced {args.old} with {args.new}; pool is {state}")
    return 0
