"""A flush that stores one region of a new file and then fails on the next (the
pool is full) leaves the first region's extents in place; the flush that retries
it replaces them rather than adding them again."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from dwfs import PoolOptions, create_pool
from dwfs.errors import NoSpace, find_dwfs_error
from dwfs.snapshots import collect_garbage
from dwfs.vfs import open_volume
from dwfs.vfs._attrs import ROOT_INO
from tests.conftest import FAST_KDF
from tests.unit.vfs.test_inline import credential, write_file

MiB = 1024 * 1024


@pytest.fixture
def small_disk(small_tmpfs: Callable[[int], Path]) -> Path:
    """Too small for the filler and the tail (30 + 37.5 MiB with parity, plus
    the 16 MiB reserve), roomy enough for the retry once the filler is gone even
    if its last 4 MiB segment on each device, shared with the head, stays."""
    return small_tmpfs(72)


async def test_a_retried_flush_of_a_new_file_does_not_store_a_region_twice(
    small_disk: Path,
) -> None:
    paths = [small_disk / f"d{i}" for i in range(3)]
    options = PoolOptions(layout="raidz1", kdf=FAST_KDF, segment_size=4 * MiB)
    create_pool(paths, credential(), options)
    head, tail = os.urandom(MiB), os.urandom(24 * MiB)  # the tail cannot fit beside the filler
    async with open_volume(paths[0], credential()) as volume:
        filler = await write_file(volume, b"filler", os.urandom(20 * MiB))
        fh, attr = volume.create(ROOT_INO, b"f", 0o644, os.O_RDWR, 0, 0)
        await volume.write(fh, 0, head)
        await volume.write(fh, 4 * MiB, tail)
        with pytest.raises(BaseException) as failed:
            await volume.fsync(fh)
        assert isinstance(find_dwfs_error(failed.value), NoSpace)
        stored = volume.tree.rows.extents(attr.ino, 0, 1 << 40)
        assert stored and max(o + n for o, n, _, _ in stored) <= MiB, "the head only"

        volume.unlink(ROOT_INO, b"filler")  # room again, once its segments go
        volume.forget(filler, 1)
        await volume.sync_all()
        await collect_garbage(volume.meta, volume.pool, 0)
        await volume.fsync(fh)
        extents = sorted((o, n) for o, n, _, _ in volume.tree.rows.extents(attr.ino, 0, 1 << 40))
        for (off, length), (following, _) in itertools.pairwise(extents):
            assert off + length <= following, f"extents overlap: {extents}"
        expected = head + bytes(3 * MiB) + tail
        assert await volume.read(fh, 0, 32 * MiB) == expected
        await volume.release(fh)
