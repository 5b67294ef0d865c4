"""dwfsctl scrub: verify every shard of the pool and repair what is bad, on a
mounted pool (through its mount, beside its users) or on its devices."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import trio

from dwfs.chunks import LIVE_SHARE
from dwfs.cli import _mounts, _secrets
from dwfs.cli._output import ProgressLine, human_bytes, print_json
from dwfs.errors import ExitCode

POLL = 0.5
"""Seconds between looks at a mounted pool's scrub while waiting for it."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "scrub",
        help="verify every stripe and repair bad shards (mounted or not)",
        description="Read every shard of every stripe, check its MAC, and rewrite bad or "
        "missing shards from redundancy. On a mounted pool the mount does it, at a bounded "
        "share of the time while the filesystem is in use, so it stays responsive, and goes "
        "on after this command is interrupted; it resumes where it was after an unmount or "
        "a crash. Waits for the scrub to end, showing its progress on a terminal. Exits 4 if some "
        "stripe could not be repaired.",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    what = p.add_mutually_exclusive_group()
    what.add_argument(
        "--pause", action="store_true", help="pause the running scrub (scrub again resumes it)"
    )
    what.add_argument("--stop", action="store_true", help="stop the running or paused scrub")
    what.add_argument(
        "--no-wait", action="store_true", help="start it on a mounted pool and return at once"
    )
    p.add_argument(
        "--share",
        type=_percent,
        default=round(LIVE_SHARE * 100),
        metavar="PERCENT",
        help="the share of the time a scrub of a mounted pool takes while the filesystem "
        f"is in use, in percent (default {round(LIVE_SHARE * 100)}): lower keeps it quicker; "
        "while nobody uses it, the scrub runs at full speed",
    )
    _secrets.add_unlock_options(p)
    p.add_argument(
        "device",
        metavar="MOUNTPOINT|DEVICE",
        type=Path,
        help="where the pool is mounted, or any device of a pool that is not",
    )
    p.set_defaults(run=run)


def _percent(text: str) -> float:
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        value = 0.0
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage above 0 and up to 100")
    return value


def describe(job: dict[str, Any]) -> str:
    """One line on a scrub, as it ends or as it stands."""
    found = (
        f"{job['errors_found']} bad shards found, {job['errors_repaired']} repaired, "
        f"{job['unrepairable']} stripes unrepairable"
    )
    checked = f"{job['stripes_checked']} stripes ({human_bytes(job['bytes_checked'])})"
    if job["state"] == "finished":
        return f"scrub checked {checked}: {found}"
    why = f" by an error: {job['error']}" if job.get("error") else ""
    return f"scrub {job['state']}{why} at {job['percent']}%, after {checked}: {found}"


async def run(args: argparse.Namespace) -> int:
    if os.path.ismount(args.device):
        job = await _on_mount(args)
    else:
        job = await _on_devices(args)
    if args.json:
        print_json(job)
    else:
        print(describe(job))
    return ExitCode.INTEGRITY if job["unrepairable"] else 0


async def _on_mount(args: argparse.Namespace) -> dict[str, Any]:
    info = _mounts.find(args.device)
    op = "pause" if args.pause else "stop" if args.stop else "start"
    body = {"cmd": "scrub", "op": op, "share": args.share / 100}
    job: dict[str, Any] = _mounts.request(info, body)
    if op != "start" or args.no_wait:
        return job
    with ProgressLine("scrub") as progress:
        while job["state"] == "running":
            progress(job["stripes_checked"], job["examined"], job["to_examine"])
            await trio.sleep(POLL)
            job = await trio.to_thread.run_sync(
                _mounts.request, info, {"cmd": "scrub", "op": "show"}
            )
    return job


async def _on_devices(args: argparse.Namespace) -> dict[str, Any]:
    async with _secrets.unlocked_pool(args) as pool:
        if args.pause:
            return pool.scrubber.pause().to_json()
        if args.stop:
            return pool.scrubber.stop().to_json()
        with ProgressLine("scrub") as progress:
            job = await pool.scrub(progress)
        return job.to_json()
