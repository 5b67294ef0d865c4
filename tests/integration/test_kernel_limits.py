"""The mount relaxes the kernel's FUSE writeback and read-ahead limits when it
may (as root), and keeps them with -o kernel_limits."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from dwfs.fuse.bdi import SETTINGS, device_number
from tests.integration.conftest import PoolFactory

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="writing /sys/class/bdi needs root")


def limits(mnt: Path) -> dict[str, str]:
    number = device_number(Path("/proc/self/mountinfo").read_text(), mnt)
    assert number is not None
    return {name: (Path("/sys/class/bdi") / number / name).read_text().strip() for name in SETTINGS}


def test_a_root_mount_relaxes_its_limits(make_pool: PoolFactory) -> None:
    pool = make_pool()
    deadline = time.monotonic() + 10  # the daemon sets them just after INIT, in a thread
    while limits(pool.mnt) != SETTINGS and time.monotonic() < deadline:
        time.sleep(0.05)
    assert limits(pool.mnt) == SETTINGS


def test_kernel_limits_keeps_the_defaults(make_pool: PoolFactory) -> None:
    pool = make_pool(mount=False)
    pool.mount(None, "kernel_limits")
    (pool.mnt / "f").write_bytes(b"answer")
    assert limits(pool.mnt) == {"strict_limit": "1", "max_ratio": "1", "read_ahead_kb": "128"}
