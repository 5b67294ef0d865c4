"""Taking, listing and deleting snapshots of a mounted pool's metadata.

A snapshot is a row naming a txg: taking one is that row and a commit, however
big the tree (the caller stores every unstored write first, so the snapshot
holds everything written before it was asked for). Deleting one deletes the
rows only it saw; the chunks that frees are reclaimed by compaction and
garbage collection like any other dead chunk. A held snapshot cannot be
deleted; a hold with a date cannot be released or shortened before it.
"""

from __future__ import annotations

import dataclasses
import datetime

from dwfs.errors import Exists, InvalidArgument, NameTooLong, NotFound, NotPermitted
from dwfs.meta import Metadata, SnapshotRow

MAX_NAME = 255
"""Bytes of a snapshot name (UTF-8): it is a directory name under .snapshots."""


def check_name(name: str) -> None:
    """Refuse a name that cannot be a directory under .snapshots.

    Raises:
        InvalidArgument, NameTooLong: with what is wrong.
    """
    if not name or name in (".", ".."):
        raise InvalidArgument(f"{name!r} cannot name a snapshot: choose another name")
    if "/" in name or "\0" in name or not name.isprintable():
        raise InvalidArgument(
            f"snapshot name {name!r} holds '/', NUL or a control character: choose another"
        )
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME:
        raise NameTooLong(f"a snapshot name is at most {MAX_NAME} bytes")


def iso(ns: int) -> str:
    """A time in nanoseconds as ISO 8601 UTC to the second, e.g. 2026-12-02T07:00:00Z."""
    moment = datetime.datetime.fromtimestamp(ns // 1_000_000_000, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def default_name(meta: Metadata, now_ns: int) -> str:
    """The creation time, with -2, -3... if a snapshot of that second exists."""
    base = iso(now_ns)
    name, n = base, 1
    while meta.snapshot_rows.get(name) is not None:
        n += 1
        name = f"{base}-{n}"
    return name


def find(meta: Metadata, name: str) -> SnapshotRow:
    snap = meta.snapshot_rows.get(name)
    if snap is None:
        raise NotFound(f"no snapshot named {name!r}: `dwfsctl snapshot list MOUNTPOINT` shows them")
    return snap


async def take(meta: Metadata, name: str | None, now_ns: int, auto: bool = False) -> SnapshotRow:
    """A snapshot of everything stored and committed so far, durable on return."""
    if name is None:
        name = default_name(meta, now_ns)
    check_name(name)
    if meta.snapshot_rows.get(name) is not None:
        raise Exists(f"a snapshot named {name!r} exists: choose another name")
    snap = meta.snapshot_rows.take(name, now_ns, auto)
    await meta.commit()
    return snap


def held(snap: SnapshotRow, now_ns: int) -> bool:
    return snap.held or (snap.held_until is not None and snap.held_until > now_ns)


@dataclasses.dataclass(frozen=True)
class Deletion:
    names: list[str]
    freed_bytes: int
    """Stored bytes the deletion frees (as compaction and garbage collection reclaim them)."""


def plan_deletion(meta: Metadata, names: list[str], now_ns: int) -> Deletion:
    """Check that every named snapshot exists and none is held; what deleting them
    frees (each counted as if deleted alone, then summed: a chunk two of them
    share alone is not counted, so this is a lower bound).

    Raises:
        NotFound, NotPermitted: a snapshot is missing or held (nothing is deleted).
    """
    if not names:
        raise InvalidArgument("name at least one snapshot to delete")
    snaps = [find(meta, name) for name in dict.fromkeys(names)]
    for snap in snaps:
        if held(snap, now_ns):
            until = f" until {iso(snap.held_until)}" if snap.held_until else ""
            raise NotPermitted(
                f"snapshot {snap.name!r} is held{until}: "
                "`dwfsctl snapshot release` it first (nothing was deleted)"
            )
    freed = sum(meta.snapshot_rows.space(snap)["unique_bytes"] for snap in snaps)
    return Deletion([s.name for s in snaps], freed)


async def delete(meta: Metadata, names: list[str], now_ns: int) -> Deletion:
    """Delete snapshots (all or, if one is missing or held, none) and commit."""
    plan = plan_deletion(meta, names, now_ns)
    with meta.db.transaction():
        for name in plan.names:
            meta.snapshot_rows.drop(name)
    await meta.commit()
    return plan


def describe(meta: Metadata, snap: SnapshotRow, space: bool = True) -> dict[str, object]:
    """A snapshot as `snapshot list --json` prints it (the space figures read
    every row the snapshot sees; without `space`, constant time)."""
    shown: dict[str, object] = {
        "name": snap.name,
        "txg": snap.txg,
        "created": iso(snap.created),
        "auto": snap.auto,
        "held": snap.held or snap.held_until is not None,
        "held_until": None if snap.held_until is None else iso(snap.held_until),
    }
    if space:
        shown.update(meta.snapshot_rows.space(snap))
    return shown
