"""Scrub (verify every shard, rewrite bad ones) and replace (rebuild a device).

Both walk every stripe of the pool. They report progress through a callback
so a command line can draw a bar, and leave the pool consistent if stopped:
a rewritten shard is identical to the one it replaces, and a replacement
device joins the pool (superblock generation) only once it is complete.
"""

from __future__ import annotations

import dataclasses
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from dwfs.devices import _parity
from dwfs.devices._array import ONLINE, DeviceArray, MemberState
from dwfs.devices._device import DirDevice
from dwfs.devices._layout import shards_on
from dwfs.devices._open import check_new_devices
from dwfs.devices._shard import ShardHeader
from dwfs.errors import NotFound, Unrecoverable, UsageError

Progress = Callable[[int, int], None]
"""Called with (stripes done, bytes done) as work proceeds."""


@dataclasses.dataclass
class ScrubReport:
    stripes_checked: int = 0
    bytes_checked: int = 0
    errors_found: int = 0
    errors_repaired: int = 0
    unrepairable: int = 0

    def to_json(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def _no_progress(stripes: int, nbytes: int) -> None:
    del stripes, nbytes


def scrub(array: DeviceArray, progress: Progress = _no_progress) -> ScrubReport:
    """Read and verify every shard of every stripe; rewrite the bad ones from the good."""
    report = ScrubReport()
    for header in array.stripes():
        scrub_stripes(array, [header], report)
        progress(report.stripes_checked, report.bytes_checked)
    finish_scrub(array)
    return report


def scrub_stripes(array: DeviceArray, headers: list[ShardHeader], report: ScrubReport) -> None:
    """Verify every shard of these stripes and rewrite the bad ones from the good,
    counting into report: a scrub's unit of work."""
    for header in headers:
        addr = header.addr
        good, bad = array.read_good_shards(addr, header.chunk_id, want_all=True)
        report.stripes_checked += 1
        report.bytes_checked += addr.sealed_len
        report.errors_found += len(bad)
        if not _parity.decodable(array.layout, good):
            report.unrepairable += 1
        elif bad:
            try:
                report.errors_repaired += array.heal(addr, header.chunk_id, good, bad)
            except Unrecoverable:
                report.unrepairable += 1


def finish_scrub(array: DeviceArray) -> None:
    """A scrub went over every stripe: what it rewrote is made durable, and no
    online member needs a resilver any more."""
    array.sync()
    for member in array.members:
        if member.online:
            member.resilver = False
    array.write_superblocks()


def resilver_batch(array: DeviceArray, headers: list[ShardHeader]) -> int:
    """Rebuild, on the members being resilvered, the shards of these stripes that they
    lack; how many shards were rewritten."""
    targets = {m.index for m in array.members if m.online and m.resilver}
    rewritten = 0
    for header in headers:
        if not targets & set(shards_on(array.layout, header.addr.seq)):
            continue
        good, bad = array.read_good_shards(header.addr, header.chunk_id, want_all=True)
        if bad and _parity.decodable(array.layout, good):
            rewritten += array.heal(header.addr, header.chunk_id, good, bad)
    return rewritten


def finish_resilver(array: DeviceArray) -> None:
    """Record that every member being resilvered is whole again."""
    array.sync()
    for member in array.members:
        member.resilver = False
    array.write_superblocks()


def find_member(array: DeviceArray, name: str) -> MemberState:
    """The member named by its path (as recorded or as given) or its uuid."""
    target = Path(name).resolve() if name else None
    for member in array.members:
        if name == member.uuid or target in (member.path, member.path.resolve()):
            return member
    raise NotFound(f"{name} is not a device of pool {array.pool}: see `dwfsctl status`")


def replace(
    array: DeviceArray, old: str, new_path: Path, progress: Progress = _no_progress
) -> MemberState:
    """Rebuild member `old` onto the empty directory new_path and swap it in.

    Raises:
        Unrecoverable: some stripe has too few good shards to rebuild; the pool
            is left as it was and new_path is removed again.
    """
    member = _replaceable(array, old, new_path)
    existed = new_path.exists()
    device = DirDevice.initialise(new_path)
    try:
        _rebuild_onto(array, member, device, progress)
        device.sync()
    except BaseException:
        device.close()
        _discard(new_path, existed)
        raise
    if member.device is not None:
        member.device.close()
    replacement = MemberState(member.index, str(uuid.uuid4()), new_path.resolve(), device, ONLINE)
    array.members[member.index] = replacement
    array.write_superblocks()
    return replacement


def swap_in(array: DeviceArray, old: str, new_path: Path) -> MemberState:
    """Put the empty directory new_path in member `old`'s place at once, flagged
    for resilver (a mounted pool's replace, as zpool replace does it): writes
    land on it from now on, reads rebuild what they touch, and the resilver that
    must follow rebuilds the rest. The old member is returned for the caller to
    close once the writes under way have ended.

    Raises:
        NotFound: old is not a member.
        UsageError: new_path is a member already, or not an empty directory.
    """
    member = _replaceable(array, old, new_path)
    existed = new_path.exists()
    device = DirDevice.initialise(new_path)
    replacement = MemberState(
        member.index, str(uuid.uuid4()), new_path.resolve(), device, ONLINE, resilver=True
    )
    try:
        device.take_lock()
        array.members[member.index] = replacement
        array.write_superblocks()
    except BaseException:
        array.members[member.index] = member
        device.close()
        _discard(new_path, existed)
        raise
    return member


def _replaceable(array: DeviceArray, old: str, new_path: Path) -> MemberState:
    member = find_member(array, old)
    if any(m.online and m.path.resolve() == new_path.resolve() for m in array.members):
        raise UsageError(f"{new_path} is already a device of this pool")
    check_new_devices([new_path])
    return member


def _rebuild_onto(
    array: DeviceArray, member: MemberState, device: DirDevice, progress: Progress
) -> None:
    nbytes = 0
    for done, header in enumerate(array.stripes(), 1):
        addr = header.addr
        placement = shards_on(array.layout, addr.seq)
        if member.index in placement:
            index = placement[member.index]
            good, _ = array.read_good_shards(addr, header.chunk_id, want_all=True)
            payload = _parity.reconstruct(array.layout, good, [index])[index]
            shard_header = array.pack_header(addr, header.chunk_id, index, payload)
            device.write(addr.segment, addr.offset, [shard_header, payload])
        nbytes += addr.sealed_len
        progress(done, nbytes)


def _discard(path: Path, existed: bool) -> None:
    if existed:
        for child in path.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)


__all__ = ["ScrubReport", "find_member", "replace", "scrub", "swap_in"]
