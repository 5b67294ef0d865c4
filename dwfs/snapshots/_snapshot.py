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
from dwfs.snapshots._retention import Policy, changed, kept

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


def default_name(meta: Metadata, now_ns: int, prefix: str = "") -> str:
    """The creation time after `prefix`, with -2, -3... if that name is taken."""
    base = prefix + iso(now_ns)
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


async def take(
    meta: Metadata, name: str | None, now_ns: int, auto: bool = False, prefix: str = ""
) -> SnapshotRow:
    """A snapshot of everything stored and committed so far, durable on return."""
    if name is None:
        name = default_name(meta, now_ns, prefix)
    check_name(name)
    if meta.snapshot_rows.get(name) is not None:
        raise Exists(f"a snapshot named {name!r} exists: choose another name")
    snap = meta.snapshot_rows.take(name, now_ns, auto)
    await meta.commit()
    return snap


def held(snap: SnapshotRow, now_ns: int) -> bool:
    return snap.held or (snap.held_until is not None and snap.held_until > now_ns)


def parse_date(text: str, now_ns: int) -> int:
    """A future moment given as an ISO 8601 date or time (UTC unless it says),
    in nanoseconds.

    Raises:
        InvalidArgument: not such a date, or not in the future.
    """
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(
            f"{text!r} is not a date: give one like 2027-01-31 or 2027-01-31T12:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    ns = int(moment.timestamp()) * 1_000_000_000
    if ns <= now_ns:
        raise InvalidArgument(f"{text} has passed: a hold lasts until a date to come")
    return ns


def hold(meta: Metadata, name: str, until_ns: int | None, now_ns: int) -> SnapshotRow:
    """Keep a snapshot from deletion: until released, or (with a date) until then,
    which may be extended but never shortened (S3 Object Lock's compliance mode)."""
    snap = find(meta, name)
    if until_ns is None:
        meta.snapshot_rows.hold(name, True, snap.held_until)
    else:
        current = snap.held_until
        if current is not None and current > now_ns and until_ns < current:
            raise NotPermitted(
                f"snapshot {name!r} is held until {iso(current)}: a hold can be extended, "
                "never shortened"
            )
        meta.snapshot_rows.hold(name, snap.held, until_ns)
    return find(meta, name)


def release(meta: Metadata, name: str, now_ns: int) -> SnapshotRow:
    """Lift a hold; a dated one only once its date has passed."""
    snap = find(meta, name)
    if snap.held_until is not None and snap.held_until > now_ns:
        raise NotPermitted(
            f"snapshot {name!r} is held until {iso(snap.held_until)} and cannot be released "
            "before then"
        )
    meta.snapshot_rows.hold(name, False, None)
    return find(meta, name)


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


def describe(
    meta: Metadata, snap: SnapshotRow, time_ns: int, space: bool = True
) -> dict[str, object]:
    """A snapshot as `snapshot list --json` prints it (the space figures read
    every row the snapshot sees; without `space`, constant time)."""
    shown: dict[str, object] = {
        "name": snap.name,
        "txg": snap.txg,
        "created": iso(snap.created),
        "auto": snap.auto,
        "held": held(snap, time_ns),
        "held_until": iso(snap.held_until)
        if snap.held_until and snap.held_until > time_ns
        else None,
    }
    if space:
        shown.update(meta.snapshot_rows.space(snap))
    return shown


def policy(meta: Metadata) -> Policy:
    """The pool's snapshot policy (none set: no automatic snapshots, no pruning)."""
    text = meta.snapshot_rows.policy()
    return Policy() if text is None else Policy.from_json(text)


async def set_policy(meta: Metadata, every: str | None, keep: dict[str, int | None]) -> Policy:
    """Change the policy (None leaves a setting as it is) and commit."""
    new = changed(policy(meta), every, keep)
    meta.snapshot_rows.set_policy(new.to_json())
    await meta.commit()
    return new


def due(meta: Metadata, rules: Policy, now_ns: int) -> bool:
    """Whether the policy wants an automatic snapshot now."""
    if not rules.every:
        return False
    autos = [s.created for s in meta.snapshot_rows.all() if s.auto]
    return not autos or now_ns - max(autos) >= rules.every * 1_000_000_000


def prunable(meta: Metadata, rules: Policy, now_ns: int) -> list[str]:
    """The automatic snapshots, not held, that no keep rule keeps (none while the
    policy has no keep rule at all)."""
    if not any(rules.keep.values()):
        return []
    autos = [s for s in meta.snapshot_rows.all() if s.auto]
    keep = kept(((s.name, s.created) for s in autos), rules)
    return [s.name for s in autos if s.name not in keep and not held(s, now_ns)]
