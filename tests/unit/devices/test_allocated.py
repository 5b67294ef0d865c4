"""A device's allocated bytes follow its segments' writes and removals, though
only segments written since the last look are looked at again."""

from __future__ import annotations

import os
from pathlib import Path

from dwfs.devices._device import DirDevice


def on_disk(device: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in (device / "segments").glob("*.seg"))


def test_allocated_bytes_follow_writes_and_removals(tmp_path: Path) -> None:
    device = DirDevice.initialise(tmp_path / "d")
    try:
        assert device.allocated_bytes() == 0
        for segment in range(4):
            device.write(segment, 0, [os.urandom(256 * 1024)])
        assert device.allocated_bytes() == on_disk(tmp_path / "d") >= 4 * 256 * 1024
        device.write(2, 256 * 1024, [os.urandom(1024 * 1024)])
        device.write(7, 0, [os.urandom(64 * 1024)])
        assert device.allocated_bytes() == on_disk(tmp_path / "d") >= 5 * 256 * 1024
        device.remove_segment(0)
        assert device.allocated_bytes() == on_disk(tmp_path / "d")
    finally:
        device.close()
    reopened = DirDevice(tmp_path / "d")
    try:
        assert reopened.allocated_bytes() == on_disk(tmp_path / "d")
    finally:
        reopened.close()
