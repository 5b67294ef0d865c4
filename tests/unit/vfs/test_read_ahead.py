"""What read-ahead tells a front end of (the ahead watcher), for it to answer
reads itself: every byte a sequential reader will read next, each once per run
of reads, and never bytes of a file with unstored writes."""

from __future__ import annotations

import itertools
import os
import random
import threading
from pathlib import Path

import trio

from dwfs.vfs import Span, Volume, open_volume
from dwfs.vfs._attrs import ROOT_INO
from dwfs.vfs._files import READ_AHEAD_BYTES
from tests.unit.vfs.test_inline import credential, make

MIB = 1 << 20


class Told:
    """The watcher's side: ranges told of, and the bytes that came for them,
    each range's once, by its ticket (from whatever thread brought them)."""

    def __init__(self, volume: Volume) -> None:
        self.ranges: list[tuple[int, int]] = []
        self.came: dict[int, bytes] = {}
        self.batches = 0
        self.in_loaders = 0
        """Ranges whose bytes came from the thread that loaded them."""
        self._pending: dict[int, tuple[int, int]] = {}
        self._tickets = itertools.count(1)
        self._errors: list[str] = []
        self._lock = threading.Lock()
        self._trio_thread = threading.get_ident()
        self._token = trio.lowlevel.current_trio_token()
        self._none_pending = trio.Event()
        self._none_pending.set()
        volume.ahead_watcher.coming = self._coming
        volume.ahead_watcher.came = self._came

    def _coming(self, ino: int, ranges: list[tuple[int, int]]) -> list[int]:
        with self._lock:
            self.ranges.extend(ranges)
            self.batches += 1
            tickets = [next(self._tickets) for _ in ranges]
            if not self._pending:
                self._none_pending = trio.Event()
            self._pending.update(zip(tickets, ranges, strict=True))
            return tickets

    def _came(self, ino: int, spans: list[Span]) -> None:
        with self._lock:
            for off, data, start, length, ticket in spans:
                if self._pending.pop(ticket, None) != (off, length):
                    self._errors.append(f"{off}+{length} came back but was not pending")
                if data is None:
                    self._errors.append(f"a chunk of read-ahead at {off} did not load")
                    continue
                self.came[off] = bytes(memoryview(data)[start : start + length])
                if threading.get_ident() != self._trio_thread:
                    self.in_loaders += 1
            if not self._pending:
                if threading.get_ident() == self._trio_thread:
                    self._none_pending.set()
                else:
                    self._token.run_sync_soon(self._none_pending.set)

    async def settled(self) -> None:
        """Wait until the bytes of every range told of have come."""
        with trio.fail_after(60):
            await self._none_pending.wait()
        assert not self._errors, self._errors


async def _sequential_read(
    volume: Volume, told: Told, fh: int, start: int, end: int, block: int = MIB
) -> None:
    """Read [start, end) in blocks, letting read-ahead run between them; then
    wait for every batch it started."""
    for off in range(start, end, block):
        await volume.read(fh, off, block)
        await trio.sleep(0.01)
    await told.settled()


async def _stored(volume: Volume, data: bytes) -> tuple[int, Told]:
    """A new file holding data, stored and open to read and write: its handle,
    and a watcher of what read-ahead tells of it from then on."""
    fh, _ = volume.create(ROOT_INO, b"f", 0o644, os.O_RDWR, 0, 0)
    await volume.write(fh, 0, data)
    await volume.sync_all()
    return fh, Told(volume)


async def test_a_sequential_reader_is_told_of_each_byte_once(tmp_path: Path) -> None:
    data = random.Random(1).randbytes(24 * MIB + 12345)
    async with open_volume(make(tmp_path), credential()) as volume:
        fh, attr = volume.create(ROOT_INO, b"f", 0o644, os.O_RDWR, 0, 0)
        await volume.write(fh, 0, data)
        await volume.release(fh)
        await volume.sync_all()
        told = Told(volume)
        fh = await volume.open(attr.ino, os.O_RDONLY)
        await _sequential_read(volume, told, fh, 0, len(data))
        ranges = sorted(told.ranges)
        assert ranges, "nothing was told of"
        for (a, alen), (b, _) in itertools.pairwise(ranges):
            assert a + alen <= b, f"[{a}, {a + alen}) and a range from {b} told of twice"
        assert ranges[-1][0] + ranges[-1][1] == len(data), "the file's end was not told of"
        covered = sum(length for _, length in ranges)
        assert covered >= len(data) - 2 * MIB, "a sequential reader's bytes were not told of"
        assert sorted(told.came) == [off for off, _ in ranges]
        for off, got in told.came.items():
            assert got == data[off : off + len(got)]
        assert told.in_loaders >= len(ranges) // 2, "the loaders handed few bytes over themselves"
        await volume.release(fh)


async def test_read_ahead_starts_again_every_half_window(tmp_path: Path) -> None:
    """A sequential reader's 1 MiB reads move read-ahead's reach by 1 MiB each;
    it starts again only once the reach has moved by half a window, so each
    start loads a batch's worth of chunks, and its batches hand their bytes
    over half as often (each a turn of the trio thread)."""
    data = random.Random(4).randbytes(32 * MIB)
    async with open_volume(make(tmp_path), credential()) as volume:
        fh, told = await _stored(volume, data)
        await _sequential_read(volume, told, fh, 0, len(data))
        starts = len(data) // (READ_AHEAD_BYTES // 2)
        assert starts // 2 <= told.batches <= starts + 2, f"{told.batches} batches"
        assert sum(length for _, length in told.ranges) >= len(data) - 2 * MIB


async def test_a_second_run_of_reads_is_told_again(tmp_path: Path) -> None:
    """A reader that goes back to the start (a new run) is told of the bytes
    again: the front end may have let them go meanwhile."""
    data = random.Random(2).randbytes(12 * MIB)
    async with open_volume(make(tmp_path), credential()) as volume:
        fh, told = await _stored(volume, data)
        await _sequential_read(volume, told, fh, 0, len(data))
        first = sorted(told.ranges)
        told.ranges.clear()
        await _sequential_read(volume, told, fh, 0, len(data))
        assert sorted(told.ranges) == first


async def test_a_file_changed_between_reads_is_told_of_anew(tmp_path: Path) -> None:
    """After an overwrite is stored, the bytes read-ahead tells of are the new
    ones, also where it had told of the old ones before."""
    rng = random.Random(3)
    data = bytearray(rng.randbytes(16 * MIB))
    async with open_volume(make(tmp_path), credential()) as volume:
        fh, told = await _stored(volume, bytes(data))
        await _sequential_read(volume, told, fh, 0, 4 * MIB)
        told.ranges.clear()
        told.came.clear()
        new = rng.randbytes(8 * MIB)
        data[2 * MIB : 10 * MIB] = new
        await volume.write(fh, 2 * MIB, new)
        await volume.sync_all()
        await _sequential_read(volume, told, fh, 4 * MIB, len(data))
        assert told.came, "nothing was told of after the change"
        assert min(told.came) < 8 * MIB, "bytes told of before the change were not told again"
        for off, got in told.came.items():
            assert got == data[off : off + len(got)], f"stale bytes told of at {off}"
