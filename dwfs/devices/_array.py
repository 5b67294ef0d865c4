"""A pool's devices as one array of stripes: placement, degraded reads, healing.

The array writes each stripe's shards at the same (segment, offset) on the devices
its layout picks, reads back the data shards and falls back to redundancy when a
shard is missing or fails its MAC, and rewrites bad shards it finds (self-healing
reads, as ZFS does). Methods block on disk I/O and are safe to call from several
worker threads at once; stripes are immutable once written.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from dwfs._accel import uninitialized, write_flush
from dwfs.devices import _parity, _shard
from dwfs.devices._device import DirDevice, read_many
from dwfs.devices._layout import Layout, shards_on
from dwfs.devices._superblock import RING, Member, Superblock, encode
from dwfs.errors import Busy, DeviceError, DwfsError, NoSpace
from dwfs.types import Buffer, ChunkId, StripeAddr

_T = TypeVar("_T")

ONLINE, MISSING, FAULTED = "online", "missing", "faulted"
RESERVE = 16 * 1024 * 1024
"""Bytes of each device's filesystem kept free for journal records and superblocks."""
OVERHANG = 256 * 1024 * 1024
"""How far past the segment size a stripe may reach (one that starts a segment may
be larger than it): a walk of a segment stops there, so a sparse multi-terabyte
segment file cannot make a scan or resync read for days."""
LINEAGE = 128
"""Journal epoch ids each superblock keeps: a member away for more mounts than
this cannot be told from one that was mounted apart, and is refused."""
COMPACTION_RESERVE = RESERVE // 2
"""What compaction's copies leave free: they may take half the reserve, since a
full pool needs compaction most and every segment it empties frees more than it
copied."""


@dataclasses.dataclass
class MemberState:
    """One member device as this process sees it."""

    index: int
    uuid: str
    path: Path
    device: DirDevice | None
    state: str
    reason: str = ""
    generation: int = 0
    errors: dict[str, int] = dataclasses.field(
        default_factory=lambda: {"read": 0, "checksum": 0, "write": 0}
    )
    resilver: bool = False
    lineage: tuple[str, ...] = ()

    @property
    def online(self) -> bool:
        return self.state == ONLINE and self.device is not None


class DeviceArray:
    """The members of one pool, addressed by stripe."""

    def __init__(
        self, sb: Superblock, members: list[MemberState], shard_key: bytes, sb_key: bytes
    ) -> None:
        self.pool = sb.pool
        self.layout = Layout.from_json(sb.layout)
        self.segment_size = sb.segment_size
        self.members = members
        self.generation = sb.generation
        self.config = sb.config
        self.lineage = sb.lineage
        self._shard_key = shard_key
        self._sb_key = sb_key
        self._lock = threading.Lock()
        self._seq = 0
        self._segment = 0
        self._offset = 0
        self._synced = StripeAddr(0, 0, 0, 0, 0)
        self._free: int | None = None
        self._sharing = 1
        self._unchecked = 0
        # Some member's superblock lags the newest or records an old path.
        self.stale = False

    # -- geometry -------------------------------------------------------------

    def _online(self) -> list[MemberState]:
        return [m for m in self.members if m.online]

    def allocate(self, sealed_len: int) -> StripeAddr:
        """Reserve the next stripe position for a sealed chunk of this length."""
        shard_len = _parity.shard_length(self.layout, sealed_len)
        size = _shard.HEADER_SIZE + shard_len
        with self._lock:
            if self._offset and self._offset + size > self.segment_size:
                self._segment, self._offset = self._segment + 1, 0
            addr = StripeAddr(self._seq, self._segment, self._offset, shard_len, sealed_len)
            self._seq += 1
            self._offset += size
        return addr

    def frontier(self) -> StripeAddr:
        """The position the next stripe would take (seq, segment, offset)."""
        with self._lock:
            return StripeAddr(self._seq, self._segment, self._offset, 0, 0)

    def _count(self, member: MemberState, kind: str, fault: str = "") -> None:
        with self._lock:
            member.errors[kind] += 1
            if fault:
                member.state, member.reason = FAULTED, fault

    # -- writing --------------------------------------------------------------

    def stripe_room(self, sealed_len: int) -> int:
        """The length a sealed chunk is padded to before coding: k whole shards, so
        a sealer that writes into a buffer this long spares the coder a copy."""
        return _parity.shard_length(self.layout, sealed_len) * self.layout.k

    def write_sealed(
        self, addr: StripeAddr, chunk_id: ChunkId, padded: Buffer, reserve: int = RESERVE
    ) -> None:
        """Erasure-code a sealed chunk and write its stripe at addr, leaving
        `reserve` bytes free. Given already padded to stripe_room, the coder
        copies nothing.

        Raises:
            NoSpace: the devices' free space is down to the reserve.
            DeviceError: fewer than k shards could be written.
        """
        self._write_shards(addr, chunk_id, _parity.encode(self.layout, padded), reserve)

    def copy_stripe(self, addr: StripeAddr, chunk_id: ChunkId, reserve: int) -> StripeAddr:
        """The stripe at addr, every shard it uses authenticated (and rebuilt from
        redundancy if need be), written again at the append point; its new address.
        The sealed bytes are copied as they are: nothing is encrypted again.

        Raises:
            Unrecoverable: too few authentic shards are left.
            NoSpace: the devices' free space is down to the reserve.
        """
        sealed = self.read_stripe(addr, chunk_id)
        new = self.allocate(addr.sealed_len)
        self.write_sealed(new, chunk_id, sealed, reserve)
        return new

    def _write_shards(
        self, addr: StripeAddr, chunk_id: ChunkId, shards: list[Buffer], reserve: int
    ) -> None:
        """Write every shard of one stripe to its device, leaving `reserve` bytes free.

        Raises:
            NoSpace: the devices' free space is down to the reserve.
            DeviceError: fewer than k shards could be written.
        """
        self._check_space(_shard.HEADER_SIZE + addr.shard_len, reserve)
        written = 0
        first_error: DwfsError | None = None
        for device_index, shard_index in shards_on(self.layout, addr.seq).items():
            member = self.members[device_index]
            if not member.online:
                continue
            try:
                self._write_shard(member, addr, chunk_id, shard_index, shards[shard_index])
                written += 1
            except DwfsError as exc:
                self._count(member, "write", fault=str(exc))
                first_error = first_error or exc
        if written < self.layout.k:
            if first_error is not None:
                raise first_error
            raise DeviceError(
                f"only {written} of {self.layout.width} devices of pool {self.pool} can be "
                "written: bring the missing devices back or replace them"
            )

    def _check_space(self, nbytes: int, reserve: int) -> None:
        """Refuse data that would eat into the reserve kept for metadata.

        Each device's free space is read again after every RESERVE / 4 bytes
        written, so the check costs a statvfs now and then, not per stripe, and
        before a refusal, so room made since (files deleted) counts at once.
        Devices that share a filesystem (tests, a pool tried out on one disk)
        each take a shard of every stripe from it, so nbytes counts once per
        device on the most shared filesystem.
        """
        with self._lock:
            stale = self._free is None or self._unchecked >= RESERVE // 4
            if stale or self._short(nbytes, reserve):  # and before a refusal: room may be back
                self._free, self._sharing = self._free_space()
                self._unchecked = 0
            if self._short(nbytes, reserve):
                raise NoSpace(
                    f"pool {self.pool} is full: delete files (space is reclaimed within "
                    "seconds) or replace devices with larger ones"
                )
            self._unchecked += nbytes * self._sharing

    def _short(self, nbytes: int, reserve: int) -> bool:
        """Whether writing nbytes more would leave less than reserve free, by the
        last reading of the free space and what was written since."""
        assert self._free is not None
        return self._free - self._unchecked - nbytes * self._sharing < reserve + nbytes

    def _free_space(self) -> tuple[int, int]:
        """(the fewest free bytes of any online device's filesystem, the most
        online devices sharing one filesystem)."""
        found = [m.device.filesystem() for m in self._online() if m.device]
        free = min((f for _, _, f in found), default=0)
        return free, max(collections.Counter(fs for fs, _, _ in found).values(), default=1)

    def room(self, reserve: int) -> int:
        """Bytes each online device can still take before its filesystem's free
        space is down to reserve (devices sharing a filesystem share its room)."""
        free, sharing = self._free_space()
        return max(free - reserve, 0) // sharing

    def remove_segment(self, segment: int) -> None:
        """Delete a segment that holds nothing live from every online device."""
        for member in self._online():
            assert member.device is not None
            member.device.remove_segment(segment)
        with self._lock:
            self._free = None

    def segments(self) -> list[int]:
        return self._segments()

    def resilvering(self) -> bool:
        """Whether a resilver is due or under way: its walk over every stripe must
        not meet segments deleted or rewritten meanwhile."""
        return any(m.resilver for m in self.members)

    def degraded(self) -> bool:
        """Whether a member is missing or faulted."""
        return any(not m.online for m in self.members)

    @property
    def current_segment(self) -> int:
        with self._lock:
            return self._segment

    def pack_header(
        self, addr: StripeAddr, chunk_id: ChunkId, index: int, payload: Buffer
    ) -> bytes:
        """The authenticated header of shard `index` of the stripe at addr."""
        return _shard.pack_header(
            self._shard_key, self.layout.width, self.layout.k, index, addr, chunk_id, payload
        )

    def _write_shard(
        self, member: MemberState, addr: StripeAddr, chunk_id: ChunkId, index: int, payload: Buffer
    ) -> None:
        header = self.pack_header(addr, chunk_id, index, payload)
        assert member.device is not None
        member.device.write(addr.segment, addr.offset, [header, payload])

    def needs_sync(self) -> bool:
        """Whether sync() has anything to do: stripes written since the last one."""
        return self.frontier() != self._synced or any(
            m.device.has_unsynced() for m in self._online() if m.device is not None
        )

    def sync(self) -> None:
        """Make every shard written so far durable, then record the new stripes in the
        sync mark (which stays untouched when there are none, so reading writes nothing)."""
        mark = self.frontier()
        for member in self._online():
            assert member.device is not None
            try:
                member.device.sync()
            except DwfsError as exc:
                self._count(member, "write", fault=str(exc))
        if mark == self._synced:
            return
        data = _shard.pack_sync_mark(self._shard_key, mark.segment, mark.offset, mark.seq)
        for member in self._online():
            assert member.device is not None
            member.device.write_sync_mark(data)
        self._synced = mark

    # -- reading --------------------------------------------------------------

    def read_shard(
        self, member: MemberState, addr: StripeAddr, index: int, chunk_id: ChunkId | None
    ) -> bytes | None:
        """The shard's payload if it is present and authentic; counts errors if not
        (but for a member being resilvered, which lacks what it missed)."""
        assert member.device is not None
        try:
            raw = member.device.read(addr.segment, addr.offset, _shard.HEADER_SIZE + addr.shard_len)
        except DwfsError:
            if not member.resilver:
                self._count(member, "read")
            return None
        header = _shard.parse_header(self._shard_key, raw[: _shard.HEADER_SIZE])
        payload = raw[_shard.HEADER_SIZE :]
        if (
            header is None
            or header.addr != addr
            or header.index != index
            or (chunk_id is not None and header.chunk_id != chunk_id)
            or not _shard.payload_ok(self._shard_key, header, payload)
        ):
            if not member.resilver:
                self._count(member, "checksum")
            return None
        return payload

    def read_good_shards(
        self, addr: StripeAddr, chunk_id: ChunkId | None, want_all: bool
    ) -> tuple[dict[int, bytes], list[int]]:
        """Authentic shards of a stripe, and the shard indices found bad on online devices.

        Reads data shards first and redundancy only as needed, unless want_all.
        """
        placement = sorted(shards_on(self.layout, addr.seq).items(), key=lambda item: item[1])
        good: dict[int, bytes] = {}
        bad: list[int] = []
        for device_index, shard_index in placement:
            if (
                not want_all
                and shard_index >= self.layout.k
                and _parity.decodable(self.layout, good)
            ):
                break
            member = self.members[device_index]
            if not member.online:
                continue
            payload = self.read_shard(member, addr, shard_index, chunk_id)
            if payload is None:
                bad.append(shard_index)
            else:
                good[shard_index] = payload
        return good, bad

    def read_data_shards(self, addr: StripeAddr, chunk_id: ChunkId) -> memoryview | None:
        """The sealed chunk from its k data shards, for a caller that authenticates
        the whole of it (an AEAD tag) before using any of it.

        Each shard's header is authenticated, its payload MAC is not: the caller's
        tag covers every payload byte, and checking both would hash the chunk
        twice. The payloads are read straight into their places in one buffer (no
        copy holds the GIL). None when a data shard is offline, unreadable, short
        or not the one its header must name; then, or when the caller's check
        fails, read_stripe() finds the bad shard by its MAC and rebuilds and heals it.
        """
        planned = self._data_shard_reads(addr)
        if planned is None:
            return None
        sealed, reads = planned
        for device, index, head, place in reads:
            try:
                got = device.read_into(addr.segment, addr.offset, [head, place])
            except DwfsError:
                return None
            if not self._shard_ok(addr, chunk_id, index, head, got):
                return None
        return sealed[: addr.sealed_len]

    def read_data_shards_many(
        self, wanted: Sequence[tuple[StripeAddr, ChunkId]]
    ) -> list[memoryview | None]:
        """read_data_shards of many chunks, with every shard read in flight at once
        and around the page cache where the devices allow (`_device.read_many`):
        read-ahead's batches, whose chunks the chunk cache keeps."""
        plans = [self._data_shard_reads(addr) for addr, _ in wanted]
        reads = [
            (i, device, index, head, place)
            for i, plan in enumerate(plans)
            if plan is not None
            for device, index, head, place in plan[1]
        ]
        got = read_many(
            [
                (device, wanted[i][0].segment, wanted[i][0].offset, [head, place])
                for i, device, _, head, place in reads
            ]
        )
        good = [plan is not None for plan in plans]
        for (i, _, index, head, _), n in zip(reads, got, strict=True):
            addr, chunk_id = wanted[i]
            good[i] = good[i] and self._shard_ok(addr, chunk_id, index, head, n)
        return [
            plan[0][: addr.sealed_len] if plan is not None and ok else None
            for (addr, _), plan, ok in zip(wanted, plans, good, strict=True)
        ]

    def _data_shard_reads(
        self, addr: StripeAddr
    ) -> tuple[memoryview, list[tuple[DirDevice, int, memoryview, memoryview]]] | None:
        """One buffer for a stripe's sealed chunk, and the reads that fill it: for
        each data shard its device, index, header buffer and place. None when a
        data shard's device is offline."""
        sealed = memoryview(uninitialized(self.layout.k * addr.shard_len))
        reads = []
        for device_index, shard_index in shards_on(self.layout, addr.seq).items():
            if shard_index >= self.layout.k:
                continue
            member = self.members[device_index]
            if not member.online or member.device is None:
                return None
            place = sealed[shard_index * addr.shard_len : (shard_index + 1) * addr.shard_len]
            head = memoryview(bytearray(_shard.HEADER_SIZE))
            reads.append((member.device, shard_index, head, place))
        return sealed, reads

    def _shard_ok(
        self, addr: StripeAddr, chunk_id: ChunkId, index: int, head: memoryview, got: int | None
    ) -> bool:
        """Whether a data shard's read came whole, under the authentic header its
        stripe's shard `index` must have."""
        if got != _shard.HEADER_SIZE + addr.shard_len:
            return False
        header = _shard.parse_header(self._shard_key, bytes(head))
        return (
            header is not None
            and header.addr == addr
            and header.index == index
            and header.chunk_id == chunk_id
        )

    def read_stripe(self, addr: StripeAddr, chunk_id: ChunkId) -> bytes:
        """The sealed chunk stored at addr, rebuilt from redundancy where needed.

        Raises:
            Unrecoverable: too few authentic shards are left.
        """
        good, bad = self.read_good_shards(addr, chunk_id, want_all=False)
        sealed = _parity.decode(self.layout, good, addr.sealed_len)
        if bad:
            self.heal(addr, chunk_id, good, bad)
        return sealed

    def heal(
        self, addr: StripeAddr, chunk_id: ChunkId, good: dict[int, bytes], bad: list[int]
    ) -> int:
        """Rewrite the bad shards from the good ones; how many were rewritten."""
        rebuilt = _parity.reconstruct(self.layout, good, bad)
        devices = {shard: device for device, shard in shards_on(self.layout, addr.seq).items()}
        repaired = 0
        for index, payload in rebuilt.items():
            member = self.members[devices[index]]
            if not member.online:
                continue
            try:
                self._write_shard(member, addr, chunk_id, index, payload)
                repaired += 1
            except DwfsError as exc:
                self._count(member, "write", fault=str(exc))
        return repaired

    # -- scanning -------------------------------------------------------------

    def _locate(self, segment: int, offset: int) -> _shard.ShardHeader | None:
        """The first authentic shard header at (segment, offset) on any online device."""
        for member in self._online():
            assert member.device is not None
            try:
                raw = member.device.read(segment, offset, _shard.HEADER_SIZE)
            except DwfsError:
                continue
            header = _shard.parse_header(self._shard_key, raw)
            if header and (header.addr.segment, header.addr.offset) == (segment, offset):
                return header
        return None

    def _segments(self) -> list[int]:
        return sorted({s for m in self._online() if m.device for s in m.device.segments()})

    def segment_end(self, segment: int) -> int:
        """The bytes a segment takes on the device that holds the most of it."""
        return max((m.device.segment_size(segment) for m in self._online() if m.device), default=0)

    def stripes_in(self, segment: int, start: int = 0) -> Iterator[_shard.ShardHeader]:
        """The stripes of one segment from offset start on, in order (nothing if
        the segment is gone): a scan's next batch, read when it is due."""
        return self._walk(segment, start)

    @property
    def synced(self) -> tuple[int, int]:
        """(segment, offset) before which this process made every stripe durable
        on every online device: where a scan of a pool in use stops, since the
        stripes past it may still be being written."""
        mark = self._synced
        return mark.segment, mark.offset

    def _walk(self, segment: int, start: int = 0) -> Iterator[_shard.ShardHeader]:
        """Every stripe in one segment from offset start on, in order.

        Stripes follow each other; where a position holds no authentic header (a
        write that failed or was torn), the walk searches on for the next one.
        """
        end = min(self.segment_end(segment), self.segment_size + OVERHANG)
        offset = start
        while offset < end:
            header = self._locate(segment, offset) or self._resync(segment, offset + 1, end)
            if header is None:
                return
            yield header
            offset = header.addr.offset + _shard.HEADER_SIZE + header.addr.shard_len

    def _resync(self, segment: int, start: int, end: int) -> _shard.ShardHeader | None:
        """The first authentic header at or after start, found by its magic."""
        step = 1 << 20
        for base in range(start, end, step):
            found: list[_shard.ShardHeader] = []
            for member in self._online():
                assert member.device is not None
                block = member.device.read(segment, base, step + _shard.HEADER_SIZE)
                at = block.find(_shard.MAGIC)
                while 0 <= at < step:
                    header = _shard.parse_header(
                        self._shard_key, block[at : at + _shard.HEADER_SIZE]
                    )
                    if header and (header.addr.segment, header.addr.offset) == (segment, base + at):
                        found.append(header)
                        break
                    at = block.find(_shard.MAGIC, at + 1)
            if found:
                return min(found, key=lambda h: h.addr.offset)
        return None

    def stripes(self) -> Iterator[_shard.ShardHeader]:
        """Every stripe whose header survives on some device, in write order per segment."""
        for segment in self._segments():
            yield from self._walk(segment)

    def _sync_mark(self) -> tuple[int, int]:
        best = (0, 0)
        for member in self._online():
            assert member.device is not None
            mark = _shard.parse_sync_mark(self._shard_key, member.device.read_sync_mark())
            if mark is not None:
                best = max(best, mark[:2])
        return best

    def _complete(self, header: _shard.ShardHeader, verify_payload: bool) -> bool:
        """Whether at least k shards of the stripe made it to disk."""
        count = 0
        for device_index, shard_index in shards_on(self.layout, header.addr.seq).items():
            member = self.members[device_index]
            if not member.online:
                continue
            assert member.device is not None
            addr = header.addr
            size = _shard.HEADER_SIZE + (addr.shard_len if verify_payload else 0)
            try:
                raw = member.device.read(addr.segment, addr.offset, size)
            except DwfsError:
                continue
            got = _shard.parse_header(self._shard_key, raw[: _shard.HEADER_SIZE])
            if got is None or got.addr != addr or got.index != shard_index:
                continue
            if verify_payload and not _shard.payload_ok(
                self._shard_key, got, raw[_shard.HEADER_SIZE :]
            ):
                continue
            count += 1
        return count >= self.layout.k

    def recover(self) -> list[tuple[StripeAddr, ChunkId]]:
        """Scan the devices at open: the stripes that are whole, and set the append point.

        Stripes before the sync mark were fsync'd, so their headers suffice;
        stripes after it may be torn by a crash, so their payloads are checked too.
        """
        mark = self._sync_mark()
        found: list[tuple[StripeAddr, ChunkId]] = []
        seq, segment, offset = 0, 0, 0
        for segment in self._segments():
            offset = 0
            for header in self._walk(segment):
                addr = header.addr
                seq = max(seq, addr.seq + 1)
                offset = addr.offset + _shard.HEADER_SIZE + addr.shard_len
                if self._complete(header, verify_payload=(addr.segment, addr.offset) >= mark):
                    found.append((addr, header.chunk_id))
            if offset < self.segment_end(segment):
                # A crash left a hole in the chain (a stripe that never reached disk
                # before one after it did); nothing may be appended behind it, where
                # no scan would find it, so writing resumes in a fresh segment.
                segment, offset = segment + 1, 0
        with self._lock:
            self._seq, self._segment, self._offset = seq, segment, offset
        self._synced = self.frontier()
        for member in self._online():
            assert member.device is not None
            for unsynced in member.device.segments():
                if unsynced >= mark[0]:
                    member.device.mark_dirty(unsynced)
        return found

    # -- the metadata journal ---------------------------------------------------

    def journal_groups(self) -> list[list[tuple[MemberState, bool]]]:
        """The journal's members grouped by the filesystem that holds them (writes to
        different groups can overlap, writes within one queue in its journal),
        each with whether a commit waits for its record to be durable.

        A record is durable once m + 1 devices hold it: m lost devices leave one.
        Those m + 1 are spread over as many filesystems as there are, and the
        others take the record into the page cache only, so devices sharing a disk
        cost m + 1 flushes per commit rather than one each."""
        groups: dict[int, list[MemberState]] = {}
        for member in self._online():
            assert member.device is not None
            groups.setdefault(member.device.filesystem_id(), []).append(member)
        durable = {id(m) for m in spread(list(groups.values()))[: self.layout.m + 1]}
        return [[(m, id(m) in durable) for m in group] for group in groups.values()]

    def append_journal(
        self, epoch: int, record: bytes, also: Sequence[tuple[int, bytes, int]] = ()
    ) -> list[int]:
        """Append a sealed journal record on every online member, durably on m + 1
        of them (journal_groups), and make the writes `also` ((descriptor, bytes,
        offset), flushed too), all in one call without the GIL that flushes them
        at once (dwfs._accel.write_flush): one flush's time rather than their
        sum. Returns the errno of each of `also` (0 for success).

        The devices' ends advance only once the record is durable, so the retry
        of an append that raised puts the record where this one did: a device
        never holds two copies of it.

        Raises:
            DeviceError: fewer than m + 1 members hold the record durably.
        """
        members = [pair for group in self.journal_groups() for pair in group]
        placed: list[tuple[MemberState, DirDevice, bool]] = []
        writes: list[tuple[int, bytes, int, bool]] = []
        for member, durable in members:
            device = member.device
            assert device is not None
            try:
                fd, offset = device.journal_slot(epoch, len(record))
            except DwfsError as exc:
                self._count(member, "write", fault=str(exc))
                continue
            placed.append((member, device, durable))
            writes.append((fd, record, offset, durable))
        errors = write_flush([*writes, *((fd, data, at, True) for fd, data, at in also)])
        durable_now, cached, holding = 0, [], []
        for (member, device, durable), err in zip(placed, errors, strict=False):
            if err:
                self._count(member, "write", fault=str(device.journal_error(err)))
                continue
            holding.append(device)
            if durable:
                durable_now += 1
            else:
                cached.append(member)
        self.settle_journal(durable_now, cached, len(members))
        for device in holding:  # only now: a failed append's retry rewrites the same place
            device.journal_appended(len(record))
        return errors[len(placed) :]

    def settle_journal(self, durable: int, cached: list[MemberState], tried: int) -> None:
        """Make a record durable on m + 1 devices (or all that were tried, if fewer):
        when devices that should have synced it failed, the ones that hold it in the
        page cache sync now. Raises DeviceError when too few remain."""
        need = min(self.layout.m + 1, tried)
        for member in cached:
            if durable >= need:
                break
            assert member.device is not None
            try:
                member.device.sync_journal()
            except DwfsError as exc:
                self._count(member, "write", fault=str(exc))
                continue
            durable += 1
        if durable < need or not durable:
            raise DeviceError(
                f"the metadata journal of pool {self.pool} reached only {durable} devices"
            )

    def journal_copies(self, epoch: int) -> list[bytes]:
        """Each online device's copy of one epoch's journal."""
        copies = []
        for member in self._online():
            assert member.device is not None
            try:
                copies.append(member.device.read_journal(epoch))
            except DwfsError:
                self._count(member, "read")
        return copies

    def journal_epochs(self) -> list[int]:
        return sorted({e for m in self._online() if m.device for e in m.device.journal_epochs()})

    def trim_journals(self, before: int) -> None:
        """Delete every journal epoch older than `before` (a checkpoint covers them)."""
        for member in self._online():
            assert member.device is not None
            for epoch in member.device.journal_epochs():
                if epoch < before:
                    member.device.remove_journal(epoch)

    # -- superblocks and status -----------------------------------------------

    def member_list(self) -> tuple[Member, ...]:
        return tuple(Member(m.uuid, str(m.path)) for m in self.members)

    def write_superblocks(
        self,
        config: dict[str, object] | None = None,
        everywhere: bool = False,
        epoch_id: str | None = None,
    ) -> None:
        """Write a new generation of the superblock to every online device.

        everywhere overwrites every ring slot, so no older slot keeps what this
        generation removed (a keyslot, say). epoch_id adds a new journal epoch
        (a mount) to the lineage.
        """
        if config is not None:
            self.config = config
        if epoch_id is not None:
            self.lineage = (*self.lineage, epoch_id)[-LINEAGE:]
        generation = self.generation + 1
        written = 0
        for member in self._online():
            assert member.device is not None
            sb = Superblock(
                pool=self.pool,
                device=member.uuid,
                generation=generation,
                layout=self.layout.to_json(),
                members=self.member_list(),
                segment_size=self.segment_size,
                errors=dict(member.errors),
                resilver=member.resilver,
                config=self.config,
                lineage=self.lineage,
            )
            data = encode(sb, self._sb_key)
            slots = range(RING) if everywhere else [generation % RING]
            try:
                for slot in slots:
                    member.device.write_superblock_slot(slot, data)
                member.generation, member.lineage = generation, self.lineage
                written += 1
            except DwfsError as exc:
                self._count(member, "write", fault=str(exc))
        if not written:
            raise DeviceError(f"no device of pool {self.pool} took the new superblock")
        self.generation = generation

    def state(self) -> str:
        lost = sum(1 for m in self.members if not m.online)
        if lost == 0:
            return ONLINE
        return "degraded" if lost <= self.layout.m else "faulted"

    def capacity(self) -> dict[str, int]:
        """What the pool holds, after redundancy: size, used and free bytes.

        Each member's room is its filesystem's size (and free space) shared among
        the pool's members on that filesystem; stripes spread evenly over the
        members, so the smallest room bounds them all. A member that is missing
        counts on the filesystem of its path's nearest existing directory, so a
        lost device neither makes the pool look bigger (its disk's share going
        to the others) nor smaller; used is scaled from the online members to
        all of them, each holding an even part of every stripe's shards.
        """
        rooms = [self._room_of(m) for m in self.members]
        sharing = collections.Counter(fsid for fsid, _, _ in rooms)
        ratio = self.layout.k / self.layout.width
        whole = self.layout.n * ratio
        size = min((total // sharing[fsid] for fsid, total, _ in rooms), default=0)
        free = min((avail // sharing[fsid] for fsid, _, avail in rooms), default=0)
        online = self._online()
        held = sum(m.device.allocated_bytes() for m in online if m.device)
        used = held / len(online) * whole if online else 0
        return {"size": int(size * whole), "used": int(used), "free": int(free * whole)}

    @staticmethod
    def _room_of(member: MemberState) -> tuple[int, int, int]:
        """(filesystem id, size, free bytes) of where a member lives or lived."""
        if member.online and member.device is not None:
            return member.device.filesystem()
        place = member.path
        while not place.exists() and place != place.parent:
            place = place.parent
        try:
            st = os.statvfs(place)
            return os.stat(place).st_dev, st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
        except OSError:
            return -1, 0, 0

    def take_locks(self) -> None:
        """Hold every online device for this process.

        Raises:
            Busy: another process (a mount, another dwfsctl) holds the pool.
        """
        taken: list[DirDevice] = []
        try:
            for member in self._online():
                assert member.device is not None
                member.device.take_lock()
                taken.append(member.device)
        except Busy:
            for device in taken:
                device.close()
            raise

    def close(self) -> None:
        for member in self.members:
            if member.device is not None:
                member.device.close()


def spread(groups: list[list[_T]]) -> list[_T]:
    """Every item, the first of each group before the second of any: picking the
    first k spreads them over as many groups as there are."""
    rows = itertools.zip_longest(*groups, fillvalue=_GAP)
    return [item for row in rows for item in row if item is not _GAP]


_GAP: Any = object()
