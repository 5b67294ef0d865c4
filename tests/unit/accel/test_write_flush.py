"""Writing and flushing files together (the flushes through Linux AIO in the
native twin, one by one in the pure one): every write whole at its offset,
every result reported, a closed descriptor as EBADF without failing the others,
and a write that is not marked written but not flushed."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dwfs import _accel
from dwfs._accel import _pure

WriteFlush = Callable[[Sequence[tuple[int, bytes, int, bool]]], list[int]]
TWINS: list[WriteFlush] = [_accel.write_flush, _pure.write_flush]


@pytest.mark.parametrize("write_flush", TWINS)
def test_every_write_and_flush_is_reported(tmp_path: Path, write_flush: WriteFlush) -> None:
    fds = [os.open(tmp_path / f"f{i}", os.O_RDWR | os.O_CREAT, 0o600) for i in range(70)]
    closed = os.open(tmp_path / "closed", os.O_RDWR | os.O_CREAT, 0o600)
    os.close(closed)
    try:
        writes = [(fd, b"record %d" % i, 3, i % 2 == 0) for i, fd in enumerate(fds)]
        assert write_flush(writes) == [0] * len(fds), "more than one AIO batch (64) of them"
        assert write_flush([(fds[0], b"a", 0, True), (closed, b"b", 0, True)]) == [0, errno.EBADF]
        assert write_flush([]) == []
        assert (tmp_path / "f69").read_bytes() == b"\0\0\0record 69"
        assert (tmp_path / "f0").read_bytes() == b"a\0\0record 0"
    finally:
        for fd in fds:
            os.close(fd)


@pytest.mark.parametrize("write_flush", TWINS)
def test_a_read_only_descriptor_fails_its_write_only(
    tmp_path: Path, write_flush: WriteFlush
) -> None:
    (tmp_path / "ro").write_bytes(b"kept")
    ro = os.open(tmp_path / "ro", os.O_RDONLY)
    rw = os.open(tmp_path / "rw", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        assert write_flush([(ro, b"lost", 0, True), (rw, b"made", 0, True)]) == [errno.EBADF, 0]
        assert (tmp_path / "ro").read_bytes() == b"kept"
        assert (tmp_path / "rw").read_bytes() == b"made"
    finally:
        os.close(ro)
        os.close(rw)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.binary(max_size=9000), st.integers(0, 20_000), st.booleans()), max_size=6)
)
def test_the_twins_leave_the_same_bytes(writes: list[tuple[bytes, int, bool]]) -> None:
    files = []
    for write_flush in TWINS:
        fd = os.memfd_create("twin")
        try:
            assert write_flush([(fd, data, at, flush) for data, at, flush in writes]) == [0] * len(
                writes
            )
            files.append(os.pread(fd, 40_000, 0))
        finally:
            os.close(fd)
    assert files[0] == files[1]
