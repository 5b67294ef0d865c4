"""Devices' batched reads (read_many, read-ahead's) go around the page cache
where the filesystem allows (the disk), and through it where it does not or
where files are memory anyway (tmpfs); either way a read gives what was
written, unsynced writes too, and a batch of many gives each its own bytes."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dwfs.devices._device import DirDevice, read_many

SHM = Path("/dev/shm")
SEGMENT = 300_000


@pytest.fixture(scope="module", params=["disk", "tmpfs"])
def root(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """Where devices are made: the tests' temporary directory (the disk) or /dev/shm."""
    if request.param == "disk":
        yield tmp_path_factory.mktemp("devices")
        return
    if not SHM.is_dir():
        pytest.skip("no /dev/shm")
    made = SHM / f"dwfs-test-{uuid.uuid4().hex}"
    made.mkdir()
    try:
        yield made
    finally:
        shutil.rmtree(made)


@contextlib.contextmanager
def new_device(root: Path) -> Iterator[DirDevice]:
    made = DirDevice.initialise(root / uuid.uuid4().hex)
    try:
        yield made
    finally:
        made.close()


def on_tmpfs(device: DirDevice) -> bool:
    return device.path.is_relative_to(SHM)


@settings(max_examples=25, deadline=None)
@given(
    writes=st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, SEGMENT), st.binary(min_size=1, max_size=9000)),
        min_size=1,
        max_size=12,
    ),
    reads=st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, SEGMENT + 10_000), st.integers(0, 20_000)),
        max_size=12,
    ),
)
def test_reads_give_what_was_written_synced_or_not(
    root: Path, writes: list[tuple[int, int, bytes]], reads: list[tuple[int, int, int]]
) -> None:
    with new_device(root) as device:
        check_reads(device, writes, reads)


def check_reads(
    device: DirDevice, writes: list[tuple[int, int, bytes]], reads: list[tuple[int, int, int]]
) -> None:
    model: dict[int, bytearray] = {}
    for i, (segment, offset, data) in enumerate(writes):
        device.write(segment, offset, [data])
        kept = model.setdefault(segment, bytearray())
        kept.extend(bytes(max(0, offset + len(data) - len(kept))))
        kept[offset : offset + len(data)] = data
        if i == len(writes) // 2:
            device.sync()
    for segment, offset, length in reads:
        want = bytes(model.get(segment, b"")[offset : offset + length])
        assert device.read(segment, offset, length) == want
        for direct in (False, True):
            head, rest = bytearray(length // 3), bytearray(length - length // 3)
            parts = [memoryview(head), memoryview(rest)]
            if direct:
                assert read_many([(device, segment, offset, parts)]) == [len(want)]
            else:
                assert device.read_into(segment, offset, parts) == len(want)
            assert (head + rest)[: len(want)] == want
    assert device.direct_reads in (None, not on_tmpfs(device))


def test_direct_reads_leave_the_page_cache_alone(root: Path) -> None:
    """A segment dropped from the page cache is read whole and stays out of it
    (fincore counts its cached pages): the chunk cache is the one cache of what
    a device holds."""
    with new_device(root) as device:
        check_page_cache(device)


def check_page_cache(device: DirDevice) -> None:
    data = os.urandom(4 * 1024 * 1024)
    device.write(0, 0, [data])
    device.sync()
    path = device.path / "segments" / "00000000.seg"
    assert path.exists(), sorted(p.name for p in (device.path / "segments").iterdir())
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    got = bytearray(len(data))
    pieces = [
        (device, 0, at, [memoryview(got)[at : at + (1 << 20)]])
        for at in range(0, len(data), 1 << 20)
    ]
    assert read_many(pieces) == [1 << 20] * len(pieces)
    assert got == data
    cached = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if on_tmpfs(device):
        assert device.direct_reads is False
    else:
        assert device.direct_reads is True
        assert int(cached) == 0
