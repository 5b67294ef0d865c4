"""close() returns before a file's writes are stored, when the pool has room for
every unstored write: the write-behind stores them while the writer goes on,
keeps them if that fails, and the next close reports the failure."""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.lowlevel

from dwfs import PoolOptions, create_pool
from dwfs.errors import InvalidArgument, NoSpace, NotFound, find_dwfs_error
from dwfs.vfs import AttrChanges, Volume, open_volume
from dwfs.vfs._attrs import ROOT_INO
from dwfs.vfs._volume import DIRTY_LIMIT
from tests.conftest import FAST_KDF, fill_disk
from tests.unit.vfs.test_inline import credential, make, read_file
from tests.unit.vfs.test_intent_log import content, crashing

MiB = 1024 * 1024


def close_at_once(volume: Volume, data: bytes, name: bytes = b"f") -> int:
    """Create, write and close a file without waiting (as the native front end
    answers them inline); its inode."""
    fh, attr = volume.create(ROOT_INO, name, 0o644, os.O_WRONLY, 0, 0)
    assert volume.write_now(fh, 0, data) == len(data)
    assert volume.flush_now(fh), "close() did not wait for the store"
    assert volume.release_now(fh)
    return attr.ino


async def drained(volume: Volume, ino: int) -> None:
    with trio.fail_after(30):
        while volume.has_unstored_writes(ino):  # noqa: ASYNC110 (a background task stores it)
            await trio.sleep(0.01)


async def test_close_returns_first_and_the_write_behind_stores_the_file(tmp_path: Path) -> None:
    device = make(tmp_path)
    data = os.urandom(300_000)
    async with open_volume(device, credential()) as volume:
        ino = close_at_once(volume, data)
        assert volume.has_unstored_writes(ino)
        assert volume.flushes_answerable_until() > time.monotonic(), "closes could be answered"
        assert volume.pool.store.stats.chunks_written == 0
        assert await read_file(volume, ino) == data, "readable before it is stored"
        await drained(volume, ino)
        assert volume.pool.store.stats.chunks_written > 0
    async with open_volume(device, credential()) as volume:
        assert await read_file(volume, ino) == data


async def test_storing_a_file_moves_none_of_its_attributes(tmp_path: Path) -> None:
    """The write-behind stores a file after its close: what a stat shows must
    not change then (the ctime a chmod after the write gave stays, not the
    write's)."""
    device = make(tmp_path)
    async with open_volume(device, credential()) as volume:
        fh, attr = volume.create(ROOT_INO, b"f", 0o644, os.O_WRONLY, 0, 0)
        assert volume.write_now(fh, 0, os.urandom(300_000)) == 300_000
        await trio.sleep(0.01)  # the chmod's ctime is after the write's mtime
        volume.setattr_now(attr.ino, AttrChanges(mode=0o600))
        assert volume.flush_now(fh) and volume.release_now(fh)
        seen = volume.attr(attr.ino)
        assert seen.ctime_ns > seen.mtime_ns
        await drained(volume, attr.ino)
        assert volume.attr(attr.ino) == seen


async def test_an_fsync_stores_what_closes_left_behind_so_a_crash_keeps_it(
    tmp_path: Path,
) -> None:
    """fsync makes every change before it durable, other files' closed writes too,
    even when the write-behind has not got to them (here it never runs)."""
    device = make(tmp_path)
    closed, synced = os.urandom(200_000), os.urandom(5000)
    async with crashing(device) as volume, trio.open_nursery() as nursery:
        volume._background = nursery  # where the write-behind would run; it is not started
        close_at_once(volume, closed, b"closed")
        fh, _ = volume.create(ROOT_INO, b"synced", 0o644, os.O_WRONLY, 0, 0)
        await volume.write(fh, 0, synced)
        await volume.fsync(fh)
    assert await content(device, b"closed") == closed
    assert await content(device, b"synced") == synced


async def test_files_closed_together_are_stored_side_by_side_and_whole(tmp_path: Path) -> None:
    """An untar closes many files at once: the write-behind stores several at
    a time (each store waits on its own turns, so one after another left most
    of them waiting), and each file is stored whole; one opened, truncated and
    closed again while the stores are under way, with its last bytes."""
    device = make(tmp_path)
    rng = random.Random(12)
    files = {f"f{i}".encode(): rng.randbytes(rng.choice([5000, 20_000, 70_000])) for i in range(40)}
    files[b"big"] = rng.randbytes(3 * MiB)
    async with open_volume(device, credential()) as volume:
        inos = {name: close_at_once(volume, data, name) for name, data in files.items()}
        await trio.lowlevel.checkpoint()
        fh = await volume.open(inos[b"f3"], os.O_WRONLY | os.O_TRUNC)
        files[b"f3"] = rng.randbytes(20_000)
        assert volume.write_now(fh, 0, files[b"f3"]) == 20_000
        assert volume.flush_now(fh) and volume.release_now(fh)
        most = 0
        with trio.fail_after(30):
            while any(volume.has_unstored_writes(ino) for ino in inos.values()):
                most = max(most, volume.data.active)
                await trio.lowlevel.checkpoint()
        assert most > 1, "the write-behind stored one file at a time"
    async with open_volume(device, credential()) as volume:
        for name, data in files.items():
            assert await read_file(volume, inos[name]) == data, name


async def test_unmounting_stores_what_the_write_behind_had_not(tmp_path: Path) -> None:
    device = make(tmp_path)
    data = os.urandom(200_000)
    async with open_volume(device, credential()) as volume:
        ino = close_at_once(volume, data)
    async with open_volume(device, credential()) as volume:
        assert await read_file(volume, ino) == data


async def test_a_file_removed_before_its_store_is_gone(tmp_path: Path) -> None:
    device = make(tmp_path)
    async with open_volume(device, credential()) as volume:
        ino = close_at_once(volume, os.urandom(100_000))
        volume.unlink(ROOT_INO, b"f")
        volume.forget(ino, 1)
        await drained(volume, ino)
        await volume.sync_all()
        with pytest.raises(NotFound):
            volume.tree.attr(ino)
        assert [name for _, name, _ in volume.entries(ROOT_INO, 0)] == [b".", b".."]


async def test_without_room_for_every_unstored_write_close_stores_first(tmp_path: Path) -> None:
    device = make(tmp_path)
    async with open_volume(device, credential()) as volume:
        volume.budget.limit = volume.statfs()["free"]  # twice that cannot fit
        fh, attr = volume.create(ROOT_INO, b"f", 0o644, os.O_WRONLY, 0, 0)
        await volume.write(fh, 0, os.urandom(100_000))
        assert volume.flushes_answerable_until() == 0, "no close may be answered for us"
        assert not volume.flush_now(fh)
        await volume.flush(fh)
        assert not volume.has_unstored_writes(attr.ino)
        await volume.release(fh)


async def test_a_failed_store_keeps_the_writes_and_the_next_close_reports_it(
    small_tmpfs: Callable[[int], Path], caplog: pytest.LogCaptureFixture
) -> None:
    disk = small_tmpfs(64)
    paths = [disk / f"d{i}" for i in range(3)]
    create_pool(paths, credential(), PoolOptions(layout="raidz1", kdf=FAST_KDF))
    data = os.urandom(2 * MiB)
    async with open_volume(paths[0], credential()) as volume:
        volume.budget.limit = 4 * MiB  # so a 64 MiB disk has room for it twice over
        ended: list[bool] = []
        volume.flush_failed = lambda: ended.append(True)
        ino = close_at_once(volume, data)
        assert volume.flushes_answerable_until() > 0
        hog = fill_disk(disk)
        with trio.fail_after(30):
            while "not stored yet" not in caplog.text:  # noqa: ASYNC110
                await trio.sleep(0.01)
        assert ended, "the adapter was not told to stop answering closes"
        assert volume.flushes_answerable_until() == 0
        assert volume.has_unstored_writes(ino), "kept, not dropped"
        assert await read_file(volume, ino) == data

        answered = await volume.open(ino, os.O_WRONLY)
        volume.flush_answered(answered)  # a close answered before the failure was known
        assert volume.has_unstored_writes(ino), "a close answered for us dropped the writes"
        await volume.release(answered)

        fh = await volume.open(ino, os.O_WRONLY)
        assert not volume.flush_now(fh), "after a failure, close stores the writes itself"
        with pytest.raises(BaseException) as failed:
            await volume.flush(fh)
        assert isinstance(find_dwfs_error(failed.value), NoSpace)
        await volume.release(fh)
        assert volume.has_unstored_writes(ino), "still kept after the release"

        hog.unlink()
        with caplog.at_level(logging.WARNING):
            await volume.sync_all()
        assert not volume.has_unstored_writes(ino)
    async with open_volume(paths[0], credential()) as volume:
        assert await read_file(volume, ino) == data


async def test_writes_answered_for_us_are_taken_within_the_room_given(tmp_path: Path) -> None:
    """An adapter may answer writes itself up to write_room's bytes: each is
    taken in order, counts against the budget, and a file past its own limit is
    stored behind the writer rather than declined."""
    device = make(tmp_path)
    async with open_volume(device, credential()) as volume:
        volume.budget.limit = 64 * MiB
        assert volume.write_room() == 64 * MiB
        fh, attr = volume.create(ROOT_INO, b"f", 0o644, os.O_WRONLY, 0, 0)
        pieces = [os.urandom(100_000) for _ in range(4)]
        for i, piece in enumerate(pieces):
            volume.write_answered(fh, i * 100_000, piece)
        assert volume.write_room() == 64 * MiB - 400_000
        assert volume.attr(attr.ino).size == 400_000
        assert await read_file(volume, attr.ino) == b"".join(pieces)

        big = os.urandom(DIRTY_LIMIT + MiB)
        volume.write_answered(fh, 0, big)
        assert volume.has_unstored_writes(attr.ino)
        await drained(volume, attr.ino)
        assert volume.write_room() == 64 * MiB, "the store behind freed the budget"
        await volume.release(fh)
        with pytest.raises(InvalidArgument):
            volume.write_answered(fh, 0, b"after the release")
    async with open_volume(device, credential()) as volume:
        assert await read_file(volume, attr.ino) == big


async def test_writes_past_the_limit_start_one_store_behind_the_writer(tmp_path: Path) -> None:
    """Writes that pass a file's limit before the store they started has begun
    are taken and start no other store: each would have stored what came after
    the first took its bytes, a flush of a few MiB each (the tail of every
    32 MiB one)."""
    device = make(tmp_path)
    block = os.urandom(MiB)
    count = DIRTY_LIMIT // MiB + 6
    async with open_volume(device, credential()) as volume:
        fh, attr = volume.create(ROOT_INO, b"f", 0o644, os.O_WRONLY, 0, 0)
        tasks = trio.lowlevel.current_statistics().tasks_living
        for i in range(count):  # no checkpoint between: the store cannot begin yet
            assert volume.write_now(fh, i * MiB, block) == MiB
        started = trio.lowlevel.current_statistics().tasks_living - tasks
        assert started == 1, "one store behind the writer, not one per write past the limit"
        await drained(volume, attr.ino)
        await volume.release(fh)
    async with open_volume(device, credential()) as volume:
        assert await read_file(volume, attr.ino) == block * count
