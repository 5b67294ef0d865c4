"""dwfsctl snapshot: take, list and delete snapshots of a mounted filesystem.

Every verb talks to the mount daemon over its control socket; serve() is the
daemon's side of it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from dwfs import snapshots
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

    diff = verbs.add_parser(
        "diff",
        help="list what changed since a snapshot",
        description="List the files and directories that changed from snapshot NAME to "
        "snapshot NAME2 (default: the filesystem as it is now): added (+), removed (-), "
        "modified (M), renamed (R, with where it was) or only their attributes or xattrs "
        "changed (m).",
    )
    diff.add_argument("--json", action="store_true", help="print a JSON list")
    diff.add_argument("mountpoint", metavar="MOUNTPOINT", type=Path)
    diff.add_argument("name", metavar="NAME")
    diff.add_argument("other", metavar="NAME2", nargs="?")
    diff.set_defaults(run=run_diff)

    restore = verbs.add_parser(
        "restore",
        help="copy a file or tree back out of a snapshot",
        description="Put PATH, as snapshot NAME shows it, back at PATH or at DEST (paths "
        "inside the filesystem, from its root; absolute paths under MOUNTPOINT work too); "
        "DEST must not exist. Nothing is copied: the restored files share the snapshot's "
        "chunks, so a big file restores as fast as a small one.",
    )
    restore.add_argument("mountpoint", metavar="MOUNTPOINT", type=Path)
    restore.add_argument("name", metavar="NAME")
    restore.add_argument("path", metavar="PATH")
    restore.add_argument("dest", metavar="DEST", nargs="?")
    restore.set_defaults(run=run_restore)

    rollback = verbs.add_parser(
        "rollback",
        help="make the filesystem what a snapshot shows",
        description="Make the whole filesystem what snapshot NAME shows. Nothing is lost: "
        "a snapshot of the filesystem as it was is taken first (pre-rollback-TIME), and "
        "later snapshots stay. Files open meanwhile keep their content, unlinked, as after "
        "a rename over them. A crash leaves the filesystem wholly before or wholly after.",
    )
    rollback.add_argument("mountpoint", metavar="MOUNTPOINT", type=Path)
    rollback.add_argument("name", metavar="NAME")
    rollback.set_defaults(run=run_rollback)

    policy = verbs.add_parser(
        "policy",
        help="show or set automatic snapshots and their retention",
        description="Show the snapshot policy, or change the settings given: while mounted, "
        "take an automatic snapshot (auto-TIME) every DURATION and delete the automatic ones "
        "no --keep-* rule keeps, as restic's forget does (keep-hourly N: the newest snapshot "
        "of each of the N newest hours that have one; likewise daily, weekly, monthly, "
        "yearly, in UTC). Snapshots taken by hand, and held ones, are never deleted by it.",
    )
    policy.add_argument("--json", action="store_true", help="print the policy as JSON")
    policy.add_argument(
        "--every", metavar="DURATION", help="15m, 1h, 1d, 1w...; off stops automatic snapshots"
    )
    periods = {"hourly": "hour", "daily": "day", "weekly": "week", "monthly": "month"}
    for rule in snapshots.RULES:
        period = periods.get(rule, "year")
        what = "the N newest" if rule == "last" else f"the newest of each of N {period}s"
        policy.add_argument(
            f"--keep-{rule}", metavar="N", type=int, dest=f"keep_{rule}", help=f"keep {what}"
        )
    policy.add_argument("mountpoint", metavar="MOUNTPOINT", type=Path)
    policy.set_defaults(run=run_policy)

    hold = verbs.add_parser(
        "hold",
        help="keep a snapshot from being deleted",
        description="Keep NAME from deletion, by hand or by a retention policy: until "
        "`snapshot release`, or with --until until that date, which can later be extended "
        "but never shortened or released early (against mistakes and scripts, not against "
        "root with the devices: see docs/design.md).",
    )
    hold.add_argument(
        "--until", metavar="DATE", help="ISO 8601 date or time, UTC unless it says (2027-01-31)"
    )
    hold.add_argument("mountpoint", metavar="MOUNTPOINT", type=Path)
    hold.add_argument("name", metavar="NAME")
    hold.set_defaults(run=run_hold)

    release = verbs.add_parser(
        "release",
        help="lift a hold",
        description="Lift the hold on NAME (a dated hold only once its date has passed).",
    )
    release.add_argument("mountpoint", metavar="MOUNTPOINT", type=Path)
    release.add_argument("name", metavar="NAME")
    release.set_defaults(run=run_release)


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


MARKS = {"added": "+", "removed": "-", "modified": "M", "renamed": "R", "metadata": "m"}


async def run_diff(args: argparse.Namespace) -> int:
    changes = _ask(args.mountpoint, {"op": "diff", "name": args.name, "other": args.other})
    if args.json:
        print_json(changes)
    for c in [] if args.json else changes:
        moved = f"  (was {c['from']})" if c["from"] else ""
        print(f"{MARKS[c['change']]}  {c['path']}{moved}")
    return 0


def _inside(mountpoint: Path, path: str) -> str:
    """A path inside the filesystem, relative to its root: an absolute path under
    the mountpoint (or under a snapshot's directory there) loses that prefix, any
    other path is taken from the filesystem's root."""
    root = mountpoint.resolve()
    full = Path(os.path.normpath(path))
    if full.is_absolute() and (full == root or root in full.parents):
        parts = full.relative_to(root).parts
        return "/".join(parts[2:] if parts[:1] == (".snapshots",) else parts)
    return path.lstrip("/")


async def run_restore(args: argparse.Namespace) -> int:
    path = _inside(args.mountpoint, args.path)
    dest = None if args.dest is None else _inside(args.mountpoint, args.dest)
    body = {"op": "restore", "name": args.name, "path": path, "dest": dest}
    done = _ask(args.mountpoint, body)
    print(f"restored {path or '/'} from {args.name} to {args.mountpoint / done['path']}")
    return 0


async def run_rollback(args: argparse.Namespace) -> int:
    done = _ask(args.mountpoint, {"op": "rollback", "name": args.name})
    print(
        f"rolled {args.mountpoint} back to {done['rolled_back_to']}; "
        f"what it was is snapshot {done['saved_as']}"
    )
    return 0


async def run_policy(args: argparse.Namespace) -> int:
    keep = {rule: getattr(args, f"keep_{rule}") for rule in snapshots.RULES}
    shown = _ask(args.mountpoint, {"op": "policy", "every": args.every, "keep": keep})
    if args.json:
        print_json(shown)
    else:
        rules = ", ".join(f"{k[5:]} {v}" for k, v in shown.items() if k != "every" and v)
        print(f"automatic snapshots: every {shown['every']}; keep: {rules or 'everything'}")
    return 0


async def run_hold(args: argparse.Namespace) -> int:
    snap = _ask(args.mountpoint, {"op": "hold", "name": args.name, "until": args.until})
    until = f" until {snap['held_until']}" if snap["held_until"] else " until released"
    print(f"snapshot {snap['name']} is held{until}")
    return 0


async def run_release(args: argparse.Namespace) -> int:
    snap = _ask(args.mountpoint, {"op": "release", "name": args.name})
    print(f"snapshot {snap['name']} is no longer held")
    return 0


def _text(request: dict[str, Any], key: str, optional: bool = False) -> Any:
    value = request.get(key)
    if (value is None and optional) or isinstance(value, str):
        return value
    raise UsageError(f"a snapshot request's {key} is text")


async def serve(volume: Volume, request: dict[str, Any]) -> Any:
    """The mount daemon's answer to a snapshot request."""
    op = request.get("op")
    if op == "create":
        return await volume.snapshots.create(_text(request, "name", optional=True))
    if op == "diff":
        return await volume.snapshots.diff(
            _text(request, "name"), _text(request, "other", optional=True)
        )
    if op == "restore":
        path = _text(request, "path").encode("utf-8", "surrogateescape")
        dest = _text(request, "dest", optional=True)
        target = None if dest is None else dest.encode("utf-8", "surrogateescape")
        return await volume.snapshots.restore(_text(request, "name"), path, target)
    if op == "rollback":
        return await volume.snapshots.rollback(_text(request, "name"))
    if op == "policy":
        keep = request.get("keep") or {}
        if not isinstance(keep, dict) or not all(
            k in snapshots.RULES and (v is None or isinstance(v, int)) for k, v in keep.items()
        ):
            raise UsageError("a snapshot policy request's keep rules are counts")
        return await volume.snapshots.policy(_text(request, "every", optional=True), keep)
    if op == "hold":
        return await volume.snapshots.hold(
            _text(request, "name"), _text(request, "until", optional=True)
        )
    if op == "release":
        return await volume.snapshots.release(_text(request, "name"))
    if op == "list":
        return volume.snapshots.listing()
    if op == "delete":
        names = request.get("names")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise UsageError("a snapshot delete request names snapshots")
        done = await volume.snapshots.delete(names, bool(request.get("dry_run")))
        return {"names": done.names, "freed_bytes": done.freed_bytes}
    raise UsageError(f"unknown snapshot request {op!r}")
