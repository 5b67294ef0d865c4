"""Direct reads at any offset and length (the native twin, with a batch's
reads in flight at once, and the pure one): the same bytes a buffered read
gives, split across buffers, short where the file ends, on the disk-backed
filesystem whose direct reads want alignment and on tmpfs, which takes any."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dwfs import _accel
from dwfs._accel import _pure

SIZE = 3 * 4096 * 5 + 1234
DATA = os.urandom(SIZE)
ReadMany = Callable[[Sequence[tuple[int, int, Sequence[bytearray | memoryview]]]], list[int]]
TWINS: list[ReadMany] = [_accel.read_direct_many, _pure.read_direct_many]
SHM = Path("/dev/shm")


@contextlib.contextmanager
def _opened(directory: Path) -> Iterator[int]:
    path = directory / f"direct-{os.getpid()}"
    path.write_bytes(DATA)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        yield fd
    finally:
        os.close(fd)
        path.unlink()


@pytest.fixture(scope="module", params=["disk", "tmpfs"])
def direct_fd(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    """A descriptor opened with O_DIRECT of a file holding DATA: on the test's
    temporary directory (the disk) or on /dev/shm."""
    if request.param == "tmpfs" and not SHM.is_dir():
        pytest.skip("no /dev/shm")
    with _opened(tmp_path_factory.mktemp("direct") if request.param == "disk" else SHM) as fd:
        yield fd


@settings(max_examples=150, deadline=None)
@given(
    offset=st.integers(0, SIZE + 5000),
    cuts=st.lists(st.integers(0, 20_000), min_size=1, max_size=4),
    read_many=st.sampled_from(TWINS),
)
def test_a_direct_read_gives_the_bytes_a_buffered_one_does(
    direct_fd: int, offset: int, cuts: list[int], read_many: ReadMany
) -> None:
    want = DATA[offset : offset + sum(cuts)]
    buffers = [bytearray(b"\xee" * n) for n in cuts]
    assert read_many([(direct_fd, offset, [memoryview(b) for b in buffers])]) == [len(want)]
    joined = b"".join(buffers)
    assert joined[: len(want)] == want
    assert set(joined[len(want) :]) <= {0xEE}, "a buffer past the file's end was written"


@settings(max_examples=60, deadline=None)
@given(
    reads=st.lists(st.tuples(st.integers(0, SIZE + 5000), st.integers(0, 30_000)), max_size=70),
    read_many=st.sampled_from(TWINS),
)
def test_a_batch_of_direct_reads_gives_each_its_own_bytes(
    direct_fd: int, reads: list[tuple[int, int]], read_many: ReadMany
) -> None:
    """More reads than one AIO submission takes (64), with a bad descriptor
    among them that fails alone."""
    buffers = [bytearray(b"\xee" * length) for _, length in reads]
    batch = [
        (direct_fd, offset, [memoryview(b)]) for (offset, _), b in zip(reads, buffers, strict=True)
    ]
    results = read_many([*batch, (9999, 0, [bytearray(8)])])
    assert results[-1] == -errno.EBADF
    for (offset, length), buffer, got in zip(reads, buffers, results, strict=False):
        want = DATA[offset : offset + length]
        assert got == len(want)
        assert buffer[: len(want)] == want


def test_the_disk_wants_alignment_and_the_twins_give_it(tmp_path: Path) -> None:
    """Without the alignment the twins add, the disk-backed filesystem refuses
    the read: so the reads above did go around the page cache."""
    with _opened(tmp_path) as fd:
        with pytest.raises(OSError) as refused:
            os.pread(fd, 100, 1)
        assert refused.value.errno == errno.EINVAL
        for read_many in TWINS:
            got = bytearray(100)
            assert read_many([(fd, 1, [got])]) == [100]
            assert got == DATA[1:101]


@pytest.mark.parametrize("read_many", TWINS)
def test_nothing_to_read_reads_nothing(read_many: ReadMany) -> None:
    assert read_many([]) == []
    assert read_many([(9999, 0, [])]) == [0]
