"""dwfsctl snapshot: take, list and delete snapshots of a mounted filesystem.

Every verb talks to the mount daemon over its control socket; serve() is the
daemon's side of it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dwfs.cli import _mounts
from dwfs.cli._output import human_bytes, print_json
from dwfs.errors import UsageError
from dwfs.vfs import Volume


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "snapshot",
        help="take, list and delete snapshots of a mounted filesystem",
        description="Snapshots are read-only views of the whole filesystem at one moment, "
        "browsable under MOUNTPOINT/.snapshots/NAME/ (hidden from the root's listing). "
        "Taking one is constant time; deleting one frees what only it kept.",
    )
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    create = verbs.add_parser(
        "create",
        help="snapshot the filesystem now",
        description="Store every write made so far and snapshot the filesystem. NAME defaults "
        "to the time in UTC (e.g. 2026-12-02T07:00:00Z); a name is at most 255 bytes and "
        "holds no '/'.",
    )
    create.add_argument("--json", action="store_true", help="print the snapshot as JSON")
    create.add_argument("mountpoint", metavar="MOUNTPOINT", type=Path)
    create.add_argument("name", metavar="NAME", nargs="?")
    create.set_defaults(run=run_create)

    listing = verbs.add_parser(
        "list",
        help="list the snapshots and what each costs",
        description="List the snapshots, oldest first, with the stored bytes each references, "
        "would free if deleted alone (unique), and added since the one before (written).",
    )
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    listing.add_argument("mountpoint", metavar="MOUNTPOINT", type=Path)
    listing.set_defaults(run=run_list)

    delete = verbs.add_parser(
        "delete",
        help="delete snapshots",
        description="Delete the named snapshots: all of them, or none if one is missing or "
        "held. The space only they kept comes back as compaction and garbage collection run.",
    )
    delete.add_argument(
        "--dry-run", action="store_true", help="only print what deleting them would free"
    )
    delete.add_argument("mountpoint", metavar="MOUNTPOINT", type=Path)
    delete.add_argument("names", metavar="NAME", nargs="+")
    delete.set_defaults(run=run_delete)


def _ask(mountpoint: Path, body: dict[str, Any]) -> Any:
    return _mounts.request(_mounts.find(mountpoint), {"cmd": "snapshot", **body}, timeout=600)


async def run_create(args: argparse.Namespace) -> int:
    snap = _ask(args.mountpoint, {"op": "create", "name": args.name})
    if args.json:
        print_json(snap)
    else:
        print(f"snapshot {snap['name']} of {args.mountpoint} (txg {snap['txg']})")
    return 0


def render(snaps: list[dict[str, Any]]) -> str:
    header = f"{'NAME':<32} {'CREATED':<20} {'REFERENCED':>11} {'UNIQUE':>11} {'WRITTEN':>11}  HOLD"
    lines = [header]
    for s in snaps:
        hold = ("until " + s["held_until"]) if s["held_until"] else ("yes" if s["held"] else "")
        auto = " (auto)" if s["auto"] else ""
        lines.append(
            f"{s['name'] + auto:<32} {s['created']:<20} {human_bytes(s['referenced_bytes']):>11} "
            f"{human_bytes(s['unique_bytes']):>11} {human_bytes(s['written_bytes']):>11}  {hold}"
        )
    return "\n".join(lines)


async def run_list(args: argparse.Namespace) -> int:
    snaps = _ask(args.mountpoint, {"op": "list"})
    if args.json:
        print_json(snaps)
    elif snaps:
        print(render(snaps))
    else:
        print(f"no snapshots of {args.mountpoint}")
    return 0


async def run_delete(args: argparse.Namespace) -> int:
    done = _ask(args.mountpoint, {"op": "delete", "names": args.names, "dry_run": args.dry_run})
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{verb} {', '.join(done['names'])}: frees {human_bytes(done['freed_bytes'])}")
    return 0


async def serve(volume: Volume, request: dict[str, Any]) -> Any:
    """The mount daemon's answer to a snapshot request."""
    op = request.get("op")
    if op == "create":
        name = request.get("name")
        if name is not None and not isinstance(name, str):
            raise UsageError("a snapshot name is text")
        return await volume.snapshot_create(name)
    if op == "list":
        return volume.snapshot_list()
    if op == "delete":
        names = request.get("names")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise UsageError("a snapshot delete request names snapshots")
        done = await volume.snapshot_delete(names, bool(request.get("dry_run")))
        return {"names": done.names, "freed_bytes": done.freed_bytes}
    raise UsageError(f"unknown snapshot request {op!r}")
