"""A full pool: ENOSPC, everything already stored stays readable, and the
filesystem works again once files are deleted."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.conftest import LivePool, PoolFactory


@pytest.fixture
def small_disk(small_tmpfs: Callable[[int], Path]) -> Path:
    return small_tmpfs(96)


def write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def fill(pool: LivePool, size: int, most: int) -> dict[str, bytes]:
    """Files of `size` random bytes, fsync'd, until the pool is full; those stored."""
    stored: dict[str, bytes] = {}
    with pytest.raises(OSError) as full:
        for i in range(most):
            data = os.urandom(size)
            write(pool.mnt / f"f{i}", data)
            stored[f"f{i}"] = data
    assert full.value.errno == errno.ENOSPC
    return stored


def write_once_there_is_room(path: Path, data: bytes, seconds: float) -> None:
    """Retry the write after each ENOSPC, as a user would, for at most `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            write(path, data)
            return
        except OSError as exc:
            assert exc.errno == errno.ENOSPC and time.monotonic() < deadline
            path.unlink(missing_ok=True)
            time.sleep(1)


def assert_stored(pool: LivePool, stored: dict[str, bytes]) -> None:
    for name, data in stored.items():
        assert (pool.mnt / name).read_bytes() == data


def test_enospc_and_recovery_after_deleting(make_pool: PoolFactory, small_disk: Path) -> None:
    pool = make_pool(mount=False, root=small_disk, segment_size=2 * 1024 * 1024)
    pool.mount()
    stored = fill(pool, 2_000_000, 200)
    assert len(stored) > 3
    assert_stored(pool, stored)
    for name in list(stored)[:-2]:
        os.unlink(pool.mnt / name)
        del stored[name]
    write_once_there_is_room(pool.mnt / "after", b"room again" * 100_000, 60)
    pool.remount()
    assert (pool.mnt / "after").read_bytes() == b"room again" * 100_000
    assert_stored(pool, stored)


def test_deleting_every_other_file_of_a_full_pool_gives_space_back(
    make_pool: PoolFactory, small_disk: Path
) -> None:
    """No segment dies whole when two of every three small files go: only
    compaction can give the space back."""
    pool = make_pool(mount=False, root=small_disk, segment_size=2 * 1024 * 1024)
    pool.mount()
    stored = fill(pool, 200_000, 2000)
    (pool.mnt / f"f{len(stored)}").unlink(missing_ok=True)
    for name in list(stored):
        if int(name[1:]) % 3:
            os.unlink(pool.mnt / name)
            del stored[name]
    free_before = os.statvfs(pool.mnt).f_bfree
    big = os.urandom(12_000_000)
    write_once_there_is_room(pool.mnt / "big", big, 90)
    deadline = time.monotonic() + 30  # compaction and GC run every commit interval
    while os.statvfs(pool.mnt).f_bfree <= free_before:
        assert time.monotonic() < deadline, "the space did not come back"
        time.sleep(0.5)
    assert_stored(pool, stored)
    pool.remount()
    assert (pool.mnt / "big").read_bytes() == big
    assert_stored(pool, stored)
