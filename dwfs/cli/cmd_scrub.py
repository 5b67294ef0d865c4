"""dwfsctl scrub: verify every shard of the pool and repair what is bad."""

from __future__ import annotations

import argparse
from pathlib import Path

from dwfs.cli import _secrets
from dwfs.cli._output import ProgressLine, human_bytes, print_json
from dwfs.errors import ExitCode


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "scrub",
        help="verify every stripe and repair bad shards",
        description="Read every shard of every stripe, check its MAC, and rewrite bad or "
        "missing shards from redundancy. Exits 4 if some stripe could not be repaired.",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    _secrets.add_unlock_options(p)
    p.add_argument("device", metavar="DEVICE", type=Path, help="any device of the pool")
    p.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    with ProgressLine("scrub") as progress:
        async with _secrets.unlocked_pool(args) as pool:
            report = await pool.scrub(progress)
    if args.json:
        print_json(report.to_json())
    else:
        print(
            f"scrub checked {report.stripes_checked} stripes "
            f"({human_bytes(report.bytes_checked)}): {report.errors_found} bad shards found, "
            f"{report.errors_repaired} repaired, {report.unrepairable} stripes unrepairable"
        )
    return ExitCode.INTEGRITY if report.unrepairable else 0
