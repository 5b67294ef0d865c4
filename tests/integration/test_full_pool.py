"""A full pool: ENOSPC, everything already stored stays readable, and the
filesystem works again once files are deleted."""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import PoolFactory


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if result.returncode:
        pytest.skip(f"cannot mount a small tmpfs: {result.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def test_enospc_and_recovery_after_deleting(make_pool: PoolFactory, small_disk: Path) -> None:
    pool = make_pool(mount=False, root=small_disk, segment_size=2 * 1024 * 1024)
    pool.mount()
    stored: dict[str, bytes] = {}
    with pytest.raises(OSError) as full:
        for i in range(200):
            data = os.urandom(2_000_000)
            write(pool.mnt / f"f{i}", data)
            stored[f"f{i}"] = data
    assert full.value.errno == errno.ENOSPC
    assert len(stored) > 3
    for name, data in stored.items():
        assert (pool.mnt / name).read_bytes() == data
    for name in list(stored)[:-2]:
        os.unlink(pool.mnt / name)
        del stored[name]
    deadline = time.monotonic() + 60
    while True:
        try:
            write(pool.mnt / "after", b"room again" * 100_000)
            break
        except OSError as exc:
            assert exc.errno == errno.ENOSPC and time.monotonic() < deadline
            (pool.mnt / "after").unlink(missing_ok=True)
            time.sleep(1)
    pool.remount()
    assert (pool.mnt / "after").read_bytes() == b"room again" * 100_000
    for name, data in stored.items():
        assert (pool.mnt / name).read_bytes() == data


def test_deleting_every_other_file_of_a_full_pool_gives_space_back(
    make_pool: PoolFactory, small_disk: Path
) -> None:
    """No segment dies whole when two of every three small files go: only
    compaction can give the space back."""
    pool = make_pool(mount=False, root=small_disk, segment_size=2 * 1024 * 1024)
    pool.mount()
    stored: dict[str, bytes] = {}
    with pytest.raises(OSError) as full:
        for i in range(2000):
            data = os.urandom(200_000)
            write(pool.mnt / f"f{i}", data)
            stored[f"f{i}"] = data
    assert full.value.errno == errno.ENOSPC
    (pool.mnt / f"f{len(stored)}").unlink(missing_ok=True)
    for name in list(stored):
        if int(name[1:]) % 3:
            os.unlink(pool.mnt / name)
            del stored[name]
    free_before = os.statvfs(pool.mnt).f_bfree
    big = os.urandom(12_000_000)
    deadline = time.monotonic() + 90
    while True:
        try:
            write(pool.mnt / "big", big)
            break
        except OSError as exc:
            assert exc.errno == errno.ENOSPC and time.monotonic() < deadline
            (pool.mnt / "big").unlink(missing_ok=True)
            time.sleep(1)
    assert os.statvfs(pool.mnt).f_bfree > free_before
    for name, data in stored.items():
        assert (pool.mnt / name).read_bytes() == data
    pool.remount()
    assert (pool.mnt / "big").read_bytes() == big
    for name, data in stored.items():
        assert (pool.mnt / name).read_bytes() == data
