"""A device starts the writeback of a segment once WRITEBACK_EVERY bytes were
written to it, so a long put's stripes go to the disk while it computes instead
of all waiting in the page cache for the sync (docs/performance.md). Seen
through cachestat(2), which counts a file's dirty pages (Linux 6.5 and later)."""

from __future__ import annotations

import ctypes
import errno
import os
import uuid
from pathlib import Path

import pytest

from dwfs import _accel
from dwfs.devices._device import WRITEBACK_EVERY, DirDevice

CACHESTAT = 451  # x86_64 and most 64-bit architectures
PIECE = 1024 * 1024


class _Range(ctypes.Structure):
    _fields_ = [("off", ctypes.c_uint64), ("len", ctypes.c_uint64)]


class _Stat(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_uint64)
        for name in ("cache", "dirty", "writeback", "evicted", "recently_evicted")
    ]


def dirty_pages(path: Path) -> int:
    """Pages of the file that are dirty and not yet under writeback."""
    libc = ctypes.CDLL(None, use_errno=True)
    stat = _Stat()
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.syscall(CACHESTAT, fd, ctypes.byref(_Range(0, 0)), ctypes.byref(stat), 0):
            code = ctypes.get_errno()
            if code in (errno.ENOSYS, errno.EPERM):
                pytest.skip("no cachestat(2) here")
            raise OSError(code, os.strerror(code))
    finally:
        os.close(fd)
    return int(stat.dirty)


@pytest.fixture
def device(tmp_path: Path) -> DirDevice:
    if _accel.implementation() == "pure Python":
        pytest.skip("writeback is started by the native extension only")
    if os.uname().machine not in ("x86_64", "aarch64"):
        pytest.skip("cachestat's number is known here for x86_64 and aarch64 only")
    return DirDevice.initialise(tmp_path / uuid.uuid4().hex)


def segment_file(device: DirDevice) -> Path:
    [path] = (device.path / "segments").iterdir()
    return path


def test_a_segment_written_past_the_threshold_is_being_written_back(device: DirDevice) -> None:
    try:
        data = os.urandom(PIECE)
        for i in range(2 * WRITEBACK_EVERY // PIECE):
            device.write(0, i * PIECE, [data])
        assert dirty_pages(segment_file(device)) == 0
        device.write(0, 2 * WRITEBACK_EVERY, [data])
        device.sync()
        assert dirty_pages(segment_file(device)) == 0
    finally:
        device.close()
