"""What only the native front end can receive: lseek's SEEK_DATA/SEEK_HOLE,
fallocate (allocate, keep size, punch hole, zero range) and copy_file_range
that shares chunks, through the mount with the programs that use them (cp
--sparse, cp --reflink=auto, fallocate). pyfuse3 cannot receive them (the
kernel then treats every file as data, fallocate fails with EOPNOTSUPP, and
copies go through read and write), so these run on the native front end."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import LivePool, dwfsctl

pytestmark = pytest.mark.skipif(
    os.environ.get("DWFS_FRONTEND") == "pyfuse3", reason="pyfuse3 cannot receive these requests"
)

MiB = 1 << 20
_LIBC = ctypes.CDLL(None, use_errno=True)
PUNCH_HOLE_KEEP_SIZE = 0x02 | 0x01
COLLAPSE_RANGE = 0x08


def fallocate(fd: int, mode: int, off: int, length: int) -> None:
    if _LIBC.fallocate(fd, mode, ctypes.c_long(off), ctypes.c_long(length)) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def sparse_file(path: Path) -> bytes:
    """1 MiB of data, a 7 MiB hole, 1 MiB of data; its content."""
    first, second = os.urandom(MiB), os.urandom(MiB)
    with open(path, "wb") as f:
        f.write(first)
        f.seek(8 * MiB)
        f.write(second)
    return first + bytes(7 * MiB) + second


def test_seek_data_and_hole_find_the_holes(mounted: LivePool, tmp_path: Path) -> None:
    path = mounted.mnt / "sparse"
    content = sparse_file(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert os.lseek(fd, 0, os.SEEK_DATA) == 0
        assert os.lseek(fd, 0, os.SEEK_HOLE) == MiB
        assert os.lseek(fd, 2 * MiB, os.SEEK_DATA) == 8 * MiB
        assert os.lseek(fd, 8 * MiB + 5, os.SEEK_HOLE) == 9 * MiB
        with pytest.raises(OSError) as past:
            os.lseek(fd, 9 * MiB, os.SEEK_DATA)
        assert past.value.errno == errno.ENXIO
    finally:
        os.close(fd)
    out = tmp_path / "copy"
    subprocess.run(["cp", "--sparse=always", path, out], check=True)
    assert out.read_bytes() == content
    assert out.stat().st_blocks * 512 <= 3 * MiB  # the hole stayed a hole


def test_fallocate_allocates_punches_and_zeroes(mounted: LivePool) -> None:
    path = mounted.mnt / "f"
    content = bytearray(sparse_file(path))
    subprocess.run(["fallocate", "-l", str(12 * MiB), path], check=True)
    assert path.stat().st_size == 12 * MiB
    content += bytes(3 * MiB)
    subprocess.run(["fallocate", "-p", "-o", "4096", "-l", str(MiB // 2), path], check=True)
    content[4096 : 4096 + MiB // 2] = bytes(MiB // 2)
    subprocess.run(["fallocate", "-z", "-o", str(8 * MiB), "-l", str(5 * MiB), path], check=True)
    content[8 * MiB : 13 * MiB] = bytes(5 * MiB)
    assert path.stat().st_size == 13 * MiB  # zero range past the end grows the file
    assert path.read_bytes() == bytes(content)
    fd = os.open(path, os.O_RDWR)
    try:
        assert os.lseek(fd, 4096, os.SEEK_HOLE) == 4096
        fallocate(fd, 0x01, 20 * MiB, MiB)  # keep size: allocated, size unchanged
        assert os.fstat(fd).st_size == 13 * MiB
        with pytest.raises(OSError) as refused:
            fallocate(fd, COLLAPSE_RANGE, 0, MiB)
        assert refused.value.errno == errno.EOPNOTSUPP
    finally:
        os.close(fd)
    mounted.remount()
    assert path.read_bytes() == bytes(content)


def chunk_count(pool: LivePool) -> int:
    count: int = json.loads(dwfsctl("status", "--json", pool.mnt).stdout)["chunks"]
    return count


def test_copy_file_range_shares_chunks_and_copies_stay_apart(mounted: LivePool) -> None:
    src, dst = mounted.mnt / "src", mounted.mnt / "dst"
    data = os.urandom(6 * MiB)
    src.write_bytes(data)
    os.sync()
    before = chunk_count(mounted)
    fin, fout = os.open(src, os.O_RDONLY), os.open(dst, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        # an unaligned range: copied as bytes it would make new chunks at its edges
        assert os.copy_file_range(fin, fout, 4 * MiB, 12345, 0) == 4 * MiB
        os.fsync(fout)
    finally:
        os.close(fin)
        os.close(fout)
    assert chunk_count(mounted) == before, "the copy points at the source's chunks"
    assert dst.read_bytes() == data[12345 : 12345 + 4 * MiB]
    with open(dst, "r+b") as f:  # changing the copy leaves the source alone
        f.seek(MiB)
        f.write(b"changed" * 1000)
    assert src.read_bytes() == data
    subprocess.run(["cp", "--reflink=auto", src, mounted.mnt / "cp-copy"], check=True)
    assert (mounted.mnt / "cp-copy").read_bytes() == data
    src.unlink()
    mounted.remount()
    expected = bytearray(data[12345 : 12345 + 4 * MiB])
    expected[MiB : MiB + 7000] = b"changed" * 1000
    assert dst.read_bytes() == bytes(expected)
    assert (mounted.mnt / "cp-copy").read_bytes() == data
    checked = dwfsctl("fsck", "--json", mounted.mnt, check=False)
    assert checked.returncode == 0, checked.stdout
