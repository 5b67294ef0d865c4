"""Flushing files together (Linux AIO in the native twin, one by one in the pure
one): every flush reported, a closed descriptor as EBADF without failing the
others, and what was written still there."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from dwfs import _accel
from dwfs._accel import _pure

FLUSHES: list[Callable[[Sequence[int]], list[int]]] = [_accel.flush_together, _pure.flush_together]


@pytest.mark.parametrize("flush", FLUSHES)
def test_every_flush_is_reported(
    tmp_path: Path, flush: Callable[[Sequence[int]], list[int]]
) -> None:
    fds = [os.open(tmp_path / f"f{i}", os.O_RDWR | os.O_CREAT, 0o600) for i in range(70)]
    closed = os.open(tmp_path / "closed", os.O_RDWR | os.O_CREAT, 0o600)
    os.close(closed)
    try:
        for i, fd in enumerate(fds):
            os.write(fd, b"record %d" % i)
        assert flush(fds) == [0] * len(fds), "more than one AIO batch (64) of them"
        assert flush([fds[0], closed, fds[1]]) == [0, errno.EBADF, 0]
        assert flush([]) == []
        assert (tmp_path / "f69").read_bytes() == b"record 69"
    finally:
        for fd in fds:
            os.close(fd)
