"""Room that another program makes on a full pool's disk counts at once: the
store does not go on refusing writes from a stale reading of the free space."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from dwfs import PoolOptions, create_pool
from dwfs.errors import NoSpace, find_dwfs_error
from dwfs.vfs import open_volume
from dwfs.vfs._attrs import ROOT_INO
from tests.conftest import FAST_KDF, fill_disk
from tests.unit.vfs.test_inline import credential, read_file

MiB = 1024 * 1024


async def test_room_made_outside_the_pool_counts_at_once(
    small_tmpfs: Callable[[int], Path],
) -> None:
    disk = small_tmpfs(64)
    paths = [disk / f"d{i}" for i in range(3)]
    create_pool(paths, credential(), PoolOptions(layout="raidz1", kdf=FAST_KDF))
    data = os.urandom(MiB)  # more than the intent log takes: an fsync stores it
    async with open_volume(paths[0], credential()) as volume:
        hog = fill_disk(disk)
        fh, attr = volume.create(ROOT_INO, b"f", 0o644, os.O_RDWR, 0, 0)
        await volume.write(fh, 0, data)
        with pytest.raises(BaseException) as failed:
            await volume.fsync(fh)
        assert isinstance(find_dwfs_error(failed.value), NoSpace)
        hog.unlink()
        await volume.fsync(fh)
        await volume.release(fh)
        assert await read_file(volume, attr.ino) == data
