"""Compaction on a real pool in temporary directories, driven through a Volume."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from dwfs import PoolOptions, create_pool
from dwfs.snapshots import Compactor, collect_garbage, compact
from dwfs.snapshots._compact import choose, victims
from dwfs.types import ChunkId, StripeAddr
from dwfs.vfs import Volume, open_volume
from dwfs.vfs._attrs import ROOT_INO
from tests.conftest import FAST_KDF, fill_disk
from tests.unit.vfs.test_inline import credential, read_file, write_file

SEGMENT = 1 << 20


def make(tmp_path: Path, layout: str = "raidz1", n: int = 3) -> Path:
    paths = [tmp_path / f"d{i}" for i in range(n)]
    options = PoolOptions(layout=layout, kdf=FAST_KDF, segment_size=SEGMENT)
    create_pool(paths, credential(), options)
    return paths[0]


def content(i: int) -> bytes:
    return random.Random(i).randbytes(150_000 + i * 977 % 60_000)


async def fill(volume: Volume, count: int) -> dict[bytes, int]:
    return {b"f%d" % i: await write_file(volume, b"f%d" % i, content(i)) for i in range(count)}


async def delete(volume: Volume, names: list[bytes]) -> None:
    for name in names:
        ino = volume.lookup(ROOT_INO, name).ino
        volume.unlink(ROOT_INO, name)
        volume.forget(ino, 2)  # create's lookup and this one
    await volume.sync_all()


async def keep_every_other(volume: Volume, count: int) -> dict[bytes, int]:
    """Fill with `count` files, delete the even ones; the odd ones, kept."""
    files = await fill(volume, count)
    await delete(volume, list(files)[::2])
    return {name: ino for name, ino in files.items() if int(name[1:]) % 2}


async def check(volume: Volume, files: dict[bytes, int]) -> None:
    for name, ino in files.items():
        assert await read_file(volume, ino) == content(int(name[1:])), name


async def reclaim(volume: Volume) -> int:
    moved = await compact(volume.meta, volume.pool)
    await collect_garbage(volume.meta, volume.pool, volume.data.active)
    return moved


def assert_index_names_the_rows(volume: Volume) -> None:
    """Every live chunk is in the index at the address its row records: the
    index is what reads and dedup use, the rows what decides a segment lives."""
    rows = volume.db.query(
        "SELECT id, seq, segment, offset, shard_len, sealed_len FROM chunks WHERE refs > 0"
    )
    for row in rows:
        assert volume.pool.store.index.get(ChunkId(bytes(row[0]))) == StripeAddr(*row[1:])


def used(volume: Volume) -> int:
    return volume.pool.array.capacity()["used"]


@given(
    st.lists(
        st.tuples(st.integers(0, 99), st.integers(1, 1000)), max_size=12, unique_by=lambda c: c[0]
    ),
    st.integers(1, 5000),
    st.integers(0, 5000),
)
def test_a_pass_takes_victims_in_order_that_fit_the_room_within_its_budget(
    candidates: list[tuple[int, int]], budget: int, room: int
) -> None:
    chosen = choose(candidates, budget, room)
    live = dict(candidates)
    assert chosen == [s for s, _ in candidates if s in chosen][: len(chosen)], "in order"
    total = sum(live[s] for s in chosen)
    assert total <= room, "every victim taken can be emptied"
    assert len(chosen) <= 1 or total <= budget
    fitting = [s for s, n in candidates if n <= room]
    assert bool(chosen) == bool(fitting), "the first victim that fits is always taken"
    if chosen:
        assert chosen[0] == fitting[0]


@pytest.mark.parametrize(("layout", "n"), [("raidz1", 3), ("2+1", 5)])  # 2+1: declustered
async def test_deleting_every_other_file_gives_the_space_back(
    tmp_path: Path, layout: str, n: int
) -> None:
    device = make(tmp_path, layout, n)
    async with open_volume(device, credential()) as volume:
        kept = await keep_every_other(volume, 40)
        assert await collect_garbage(volume.meta, volume.pool, 0) == 0, "no segment died whole"
        before, segments_before = used(volume), len(volume.pool.array.segments())
        assert victims(volume.meta, volume.pool)
        assert await reclaim(volume) > 0
        for _ in range(20):
            if not victims(volume.meta, volume.pool):
                break
            await reclaim(volume)
        assert not victims(volume.meta, volume.pool), "compaction made no progress"
        assert used(volume) < before * 0.75
        assert len(volume.pool.array.segments()) < segments_before
        await check(volume, kept)
    async with open_volume(device, credential()) as volume:
        await check(volume, kept)
        assert_index_names_the_rows(volume)
        assert not victims(volume.meta, volume.pool)


async def test_a_crash_between_the_commit_and_the_deletion_loses_nothing(tmp_path: Path) -> None:
    """The copies are committed but the emptied segments are still there when
    the pool closes: at the next open the scan finds both copies of every moved
    chunk, and the metadata's must win, or garbage collection would delete the
    one the index names."""
    device = make(tmp_path)
    async with open_volume(device, credential()) as volume:
        files = await fill(volume, 30)
        await delete(volume, list(files)[1::3] + list(files)[2::3])
        kept = {name: files[name] for name in list(files)[::3]}
        assert await compact(volume.meta, volume.pool) > 0
    async with open_volume(device, credential()) as volume:
        assert await collect_garbage(volume.meta, volume.pool, 0) > 0
        await check(volume, kept)
    async with open_volume(device, credential()) as volume:
        await check(volume, kept)


async def test_writes_that_dedup_against_victims_during_a_pass_stay_readable(
    tmp_path: Path,
) -> None:
    """Writers store copies of kept and of deleted files (their chunks live, and
    dead, in the victims) while passes copy and swap; every file reads back,
    then and after a remount."""
    device = make(tmp_path)
    async with open_volume(device, credential()) as volume:
        kept = await keep_every_other(volume, 36)
        rng = random.Random(7)
        order = rng.sample(range(36), 36)

        async def writer() -> None:
            for i in order:
                name = b"copy%d" % i
                fh, attr = volume.create(ROOT_INO, name, 0o644, os.O_RDWR, 0, 0)
                await volume.write(fh, 0, content(i))
                if rng.random() < 0.5:
                    await volume.fsync(fh)
                await volume.release(fh)
                copies[name] = (attr.ino, i)
                await trio.sleep(rng.random() / 100)

        async def compactor() -> None:
            for _ in range(12):
                await reclaim(volume)
                assert_index_names_the_rows(volume)
                await trio.sleep(rng.random() / 50)

        copies: dict[bytes, tuple[int, int]] = {}
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer)
            nursery.start_soon(compactor)
        await volume.sync_all()
        assert_index_names_the_rows(volume)
        await reclaim(volume)
        await check(volume, kept)
        for ino, i in copies.values():
            assert await read_file(volume, ino) == content(i)
    async with open_volume(device, credential()) as volume:
        assert_index_names_the_rows(volume)
        await reclaim(volume)
        await check(volume, kept)
        for ino, i in copies.values():
            assert await read_file(volume, ino) == content(i)


async def test_a_put_under_way_during_the_swap_keeps_what_it_deduplicated(
    tmp_path: Path,
) -> None:
    """A put that found a victim's dead chunk in the index before the swap, and
    records it after, revives it: the swap must wait for that put, or it drops
    the chunk from the index while the put makes it live again."""
    device = make(tmp_path)
    async with open_volume(device, credential()) as volume:
        big = random.Random(-1).randbytes(3 << 20)  # several chunks, all but the last
        await write_file(volume, b"big", big)  # cut the same with more bytes after them
        files = await fill(volume, 30)
        await delete(volume, [b"big", *list(files)[1::3], *list(files)[2::3]])
        revived = big + os.urandom(48 << 20)  # the dedup first, then a long tail
        fh, attr = volume.create(ROOT_INO, b"revived", 0o644, os.O_RDWR, 0, 0)
        await volume.write(fh, 0, revived)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(volume.fsync, fh)
            with trio.fail_after(30):
                while not volume.pool.store.stats.chunks_deduplicated:  # noqa: ASYNC110
                    await trio.sleep(0.001)  # a worker thread counts it: no event to wait on
            assert await compact(volume.meta, volume.pool) > 0
        await volume.release(fh)
        assert_index_names_the_rows(volume)
        assert await read_file(volume, attr.ino) == revived
    async with open_volume(device, credential()) as volume:
        await reclaim(volume)
        assert await read_file(volume, attr.ino) == revived


async def test_the_committer_s_compactor_looks_again_only_after_chunks_died(
    tmp_path: Path,
) -> None:
    device = make(tmp_path)
    async with open_volume(device, credential()) as volume:
        compactor = Compactor(volume.meta, volume.pool)
        files = await fill(volume, 30)
        assert await compactor.run() == 0, "nothing is dead yet"
        await delete(volume, list(files)[::2])
        assert await compactor.run() > 0
        for _ in range(20):
            if not await compactor.run():
                break
        assert not victims(volume.meta, volume.pool)
        assert await compactor.run() == 0


async def test_nothing_is_compacted_while_degraded_nor_reclaimed_while_resilvering(
    tmp_path: Path,
) -> None:
    device = make(tmp_path)
    async with open_volume(device, credential()) as volume:
        kept = await keep_every_other(volume, 30)
    (tmp_path / "d2").rename(tmp_path / "away")
    async with open_volume(device, credential(), degraded=True) as volume:
        assert volume.pool.array.state() == "degraded"
        assert await compact(volume.meta, volume.pool) == 0
        await check(volume, kept)
    (tmp_path / "away").rename(tmp_path / "d2")
    async with open_volume(device, credential()) as volume:
        with trio.fail_after(30):
            while any(m.resilver for m in volume.pool.array.members):
                assert await compact(volume.meta, volume.pool) == 0, "not while resilvering"
                assert await collect_garbage(volume.meta, volume.pool, 0) == 0
                await trio.sleep(0.01)
        assert await compact(volume.meta, volume.pool) > 0
        await check(volume, kept)


async def test_the_committer_s_compactor_looks_again_once_a_full_pool_has_room(
    tmp_path: Path, small_tmpfs: Callable[[int], Path]
) -> None:
    """Victims that did not fit a full pool's room are taken once room comes
    back, though no chunk died meanwhile (the other program filling the disk
    deleted its file, or garbage collection freed segments)."""
    disk = small_tmpfs(64)
    device = make(disk)
    async with open_volume(device, credential()) as volume:
        compactor = Compactor(volume.meta, volume.pool)
        await keep_every_other(volume, 30)
        assert victims(volume.meta, volume.pool)
        hog = fill_disk(disk)
        assert await compactor.run() == 0, "no room for the copies"
        hog.unlink()
        assert await compactor.run() > 0
