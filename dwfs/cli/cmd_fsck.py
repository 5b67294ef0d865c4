"""dwfsctl fsck: check a pool's metadata against itself and the pool."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from dwfs import snapshots
from dwfs.cli import _mounts, _secrets
from dwfs.cli._output import print_json
from dwfs.errors import ExitCode
from dwfs.meta import Metadata


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "fsck",
        help="check the metadata's invariants and read every chunk",
        description="Check the metadata against itself (reference counts, link counts, "
        "entries naming inodes, sizes, extents, what snapshots keep) and read back every "
        "chunk a file or snapshot references. With --repair, fix what is certain (counts, "
        "orphans, rows nothing sees); the rest is reported. Exits 4 while problems remain. "
        "Works on a mounted filesystem (MOUNTPOINT) or an unmounted pool (DEVICE).",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--repair", action="store_true", help="fix what can be fixed without guessing")
    _secrets.add_unlock_options(p)
    p.add_argument("device", metavar="MOUNTPOINT|DEVICE", type=Path)
    p.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    report: dict[str, Any]
    if os.path.ismount(args.device):
        body = {"cmd": "fsck", "repair": bool(args.repair)}
        report = _mounts.request(_mounts.find(args.device), body, timeout=3600)
    else:
        async with _secrets.unlocked_pool(args) as pool:
            meta = await Metadata.open(pool)
            report = await snapshots.fsck(meta, pool, args.repair)
    if args.json:
        print_json(report)
    else:
        for problem in report["problems"]:
            print(f"{problem['kind']}: {problem['detail']}")
        state = "clean" if report["ok"] else f"{len(report['problems'])} problems"
        fixed = f", {report['repaired']} repaired" if report["repaired"] else ""
        print(
            f"fsck: {state}{fixed} ({report['inodes']} inodes, {report['snapshots']} snapshots, "
            f"{report['chunks_read']} chunks read)"
        )
    return 0 if report["ok"] else ExitCode.INTEGRITY
