"""Creating a pool's devices and bringing an existing pool's devices together."""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import Any

from dwfs.devices._array import FAULTED, MISSING, ONLINE, DeviceArray, MemberState
from dwfs.devices._device import DirDevice
from dwfs.devices._layout import Layout
from dwfs.devices._superblock import RING, Member, Slot, Superblock, decode_ring, encode
from dwfs.errors import DeviceError, Exists, IntegrityError, UsageError

DEFAULT_SEGMENT_SIZE = 256 * 1024 * 1024


def read_slots(path: Path) -> list[Slot]:
    """The unverified superblock slots of the device at path, newest first.

    Raises:
        DeviceError: path is not a dwfs device.
    """
    device = DirDevice(path)
    try:
        raw = device.read_superblock_file()
    finally:
        device.close()
    slots = decode_ring(raw) if raw else []
    if not slots:
        raise DeviceError(f"{path} is not a dwfs device: no superblock found")
    return slots


def check_new_devices(paths: list[Path]) -> None:
    """Refuse devices that are duplicated, in use, non-empty or have no parent directory."""
    seen: set[Path] = set()
    for path in paths:
        resolved = path.resolve()
        if resolved in seen:
            raise UsageError(
                f"device {path} is named twice: each device must be a distinct directory"
            )
        seen.add(resolved)
        if path.is_symlink():
            raise UsageError(
                f"{path} is a symbolic link: name the directory itself "
                "(dwfs follows no links to or inside a device)"
            )
        if path.exists():
            if not path.is_dir():
                raise UsageError(f"{path} is not a directory: a device is a directory")
            if (path / "superblock").exists():
                pool = _pool_of(path)
                raise Exists(
                    f"{path} already belongs to dwfs pool {pool}: "
                    "remove that pool's files first or use another directory"
                )
            if any(path.iterdir()):
                raise UsageError(f"{path} is not empty: give an empty or new directory")
        elif not path.parent.is_dir():
            raise UsageError(f"{path.parent} does not exist: create it first")
        if not os.access(path if path.exists() else path.parent, os.W_OK):
            raise UsageError(f"{path} is not writable")


def _pool_of(path: Path) -> str:
    try:
        return read_slots(path)[0].superblock.pool
    except DeviceError:
        return "(unreadable)"


def create_devices(
    paths: list[Path],
    layout: Layout,
    config: dict[str, Any],
    sb_key: bytes,
    pool: str,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
) -> None:
    """Initialise every device and write generation 1 of the superblock to each."""
    check_new_devices(paths)
    members = tuple(Member(str(uuid.uuid4()), str(p.resolve())) for p in paths)
    existed = [p.exists() for p in paths]
    try:
        for path, member in zip(paths, members, strict=True):
            _initialise(path, member, members, layout, config, sb_key, pool, segment_size)
    except BaseException:
        for path, was_there in zip(paths, existed, strict=True):
            _undo(path, was_there)
        raise


def _undo(path: Path, was_there: bool) -> None:
    """Remove what create_devices put at path, leaving it as it was."""
    for name in ("superblock", "synced"):
        (path / name).unlink(missing_ok=True)
    for sub in (path / "segments", *(() if was_there else (path,))):
        with contextlib.suppress(OSError):
            sub.rmdir()


def _initialise(
    path: Path,
    member: Member,
    members: tuple[Member, ...],
    layout: Layout,
    config: dict[str, Any],
    sb_key: bytes,
    pool: str,
    segment_size: int,
) -> None:
    device = DirDevice.initialise(path)
    sb = Superblock(
        pool=pool,
        device=member.uuid,
        generation=1,
        layout=layout.to_json(),
        members=members,
        segment_size=segment_size,
        errors={"read": 0, "checksum": 0, "write": 0},
        config=config,
    )
    data = encode(sb, sb_key)
    for slot in range(RING):
        device.write_superblock_slot(slot, data if slot == 1 else bytes(len(data)))


def _verified(path: Path, sb_key: bytes) -> Superblock | None:
    try:
        slots = read_slots(path)
    except DeviceError:
        return None
    return next((s.superblock for s in slots if s.verify(sb_key)), None)


def _member_state(index: int, member: Member, path: Path, pool: str, sb_key: bytes) -> MemberState:
    state = MemberState(index, member.uuid, path, None, MISSING)
    if not os.path.lexists(path) or (path.is_dir() and not os.path.lexists(path / "superblock")):
        state.reason = "not found"
        return state
    try:
        device = DirDevice(path)
    except DeviceError as exc:
        state.state, state.reason = FAULTED, str(exc)
        return state
    sb = _verified(path, sb_key)
    if sb is None or sb.pool != pool or sb.device != member.uuid:
        device.close()
        state.state = FAULTED
        state.reason = (
            "a different device of this pool is at this path"
            if sb is not None and sb.pool == pool
            else "superblock missing, corrupt or of another pool"
        )
        return state
    state.device, state.state = device, ONLINE
    state.generation, state.errors = sb.generation, dict(sb.errors)
    state.resilver, state.lineage = sb.resilver, sb.lineage
    return state


def open_array(path: Path, sb_key: bytes, shard_key: bytes) -> DeviceArray:
    """The array of the pool that the device at path belongs to.

    Members are found at the paths the newest superblock records (the device
    named on the command line at the path given). Members whose superblock is
    older than the newest are brought up to date.

    Raises:
        IntegrityError: the named device's superblock fails authentication.
    """
    sb = next((s.superblock for s in read_slots(path) if s.verify(sb_key)), None)
    if sb is None:
        raise IntegrityError(
            f"the superblock of {path} fails authentication: it was tampered with or is "
            "corrupt; name another device of the pool"
        )
    given, named = path.resolve(), sb.device
    for _ in range(2):
        members = [
            _member_state(i, m, given if m.uuid == named else Path(m.path), sb.pool, sb_key)
            for i, m in enumerate(sb.members)
        ]
        newest = max((m.generation for m in members if m.online), default=sb.generation)
        if newest <= sb.generation:
            break
        source = next(m for m in members if m.online and m.generation == newest)
        refreshed = _verified(source.path, sb_key)
        assert refreshed is not None
        sb = refreshed
    _refuse_diverged(sb, members)
    for member in members:
        if member.online and member.generation < sb.generation:
            member.resilver = True  # it was away while the others moved on
    array = DeviceArray(sb, members, shard_key, sb_key)
    array.stale = any(m.online and m.generation < sb.generation for m in members) or any(
        str(state.path) != m.path for state, m in zip(members, sb.members, strict=True)
    )
    return array


def _refuse_diverged(newest: Superblock, members: list[MemberState]) -> None:
    """Refuse a pool whose online members carry two histories: some member's newest
    journal epoch is not on the newest superblock's line (the pool was mounted
    from two sets of its devices apart). Healing either way would silently throw
    away the other side's writes.

    Raises:
        IntegrityError: naming the devices on each side.
    """
    line = set(newest.lineage)
    apart = [m for m in members if m.online and m.lineage and m.lineage[-1] not in line]
    if not apart:
        return
    ours = [str(m.path) for m in members if m.online and m not in apart]
    theirs = [str(m.path) for m in apart]
    raise IntegrityError(
        f"the devices of pool {newest.pool} carry two different histories (they were mounted "
        f"apart): {', '.join(ours)} hold one, {', '.join(theirs)} the other; keep one side: "
        "move the other side's directories away, mount with -o degraded, then "
        "`dwfsctl replace` them"
    )


def new_pool_id() -> str:
    return str(uuid.uuid4())
