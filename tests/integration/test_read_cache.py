"""The native front end answers reads of stored, cached plaintext in C. A stale
byte there is the worst bug it could have, so: random changes of every kind
(buffered and direct writes, truncation, hole punching, zeroing,
copy_file_range into the file, an open with O_TRUNC) on long-open
descriptors, each followed by reads that go past the kernel's page cache
(O_DIRECT) and must match a model; and the reads must mostly have been
answered in C, or the test proves nothing. The writes under 512 KiB are
answered in C too, and taken by Python after: the reads after them must see
them all the same."""

from __future__ import annotations

import json
import mmap
import os
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from dwfs.chunks import ChunkerParams
from tests.integration.conftest import LivePool, PoolFactory
from tests.integration.test_sparse_and_copies import fallocate

pytestmark = pytest.mark.skipif(
    os.environ.get("DWFS_FRONTEND") == "pyfuse3", reason="only the native front end caches reads"
)

KiB, MiB = 1 << 10, 1 << 20
BLOCK = 4 * KiB
PUNCH_HOLE_KEEP_SIZE = 0x02 | 0x01
ZERO_RANGE = 0x10


def direct_read(fd: int, off: int, length: int) -> bytes:
    """length bytes from off (both multiples of BLOCK), past the page cache."""
    buf = mmap.mmap(-1, max(length, BLOCK))
    try:
        got = os.preadv(fd, [memoryview(buf)[:length]], off)
        return bytes(buf[:got])
    finally:
        buf.close()


def direct_write(fd: int, off: int, data: bytes) -> None:
    buf = mmap.mmap(-1, len(data))
    try:
        buf.write(data)
        assert os.pwritev(fd, [buf], off) == len(data)
    finally:
        buf.close()


def front_end(pool: LivePool) -> dict[str, int]:
    """What the mount's front end answered without the vfs, as status reports it."""
    status = json.loads(pool.ctl("status", "--json", pool.mnt).stdout)
    return dict(status["mount"]["front_end"])


class Checked:
    """A file on the mount, its model, and the descriptors changes go through."""

    def __init__(self, path: Path, rng: random.Random, model: bytearray | None = None) -> None:
        """The file at path, written with random bytes unless it holds model already."""
        self.path = path
        self.rng = rng
        if model is None:
            model = bytearray(rng.randbytes(3 * MiB + 12345))
            path.write_bytes(model)
        self.model = model
        self.fd = os.open(path, os.O_RDWR)
        self.direct = os.open(path, os.O_RDWR | os.O_DIRECT)

    def close(self) -> None:
        os.close(self.fd)
        os.close(self.direct)

    def span(self, limit: int = 600 * KiB) -> tuple[int, int]:
        off = self.rng.randrange(0, len(self.model) + 64 * KiB)
        return off, self.rng.randrange(1, limit)

    def put(self, off: int, data: bytes) -> None:
        if off > len(self.model):
            self.model.extend(bytes(off - len(self.model)))
        self.model[off : off + len(data)] = data

    def write(self) -> None:
        off, n = self.span()
        data = self.rng.randbytes(n)
        assert os.pwrite(self.fd, data, off) == n
        self.put(off, data)

    def write_direct(self) -> None:
        off, n = self.span()
        off, n = off // BLOCK * BLOCK, max(BLOCK, n // BLOCK * BLOCK)
        data = self.rng.randbytes(n)
        direct_write(self.direct, off, data)
        self.put(off, data)

    def truncate(self) -> None:
        size = self.rng.randrange(0, 4 * MiB)
        os.ftruncate(self.fd, size)
        del self.model[size:]
        self.model.extend(bytes(size - len(self.model)))

    def punch(self, mode: int) -> None:
        off, n = self.span()
        fallocate(self.fd, mode, off, n)
        end = min(off + n, len(self.model)) if mode == PUNCH_HOLE_KEEP_SIZE else off + n
        if end > off:
            self.put(off, bytes(end - off))

    def copy_in(self, source: int, source_model: bytes) -> None:
        src = self.rng.randrange(0, len(source_model))
        off, n = self.span(2 * MiB)
        n = min(n, len(source_model) - src)
        assert os.copy_file_range(source, self.fd, n, src, off) == n
        self.put(off, source_model[src : src + n])

    def reopen_truncated(self) -> None:
        data = self.rng.randbytes(self.rng.randrange(0, MiB))
        fd = os.open(self.path, os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        self.model[:] = data

    def check_some(self) -> None:
        for _ in range(8):
            off = self.rng.randrange(0, len(self.model) + BLOCK) // BLOCK * BLOCK
            n = self.rng.choice([BLOCK, 16 * KiB, 128 * KiB, MiB])
            got = direct_read(self.direct, off, n)
            assert got == bytes(self.model[off : off + n]), f"bytes at {off}+{n} differ"

    def check_all(self) -> None:
        size = len(self.model)
        got = direct_read(self.direct, 0, (size + BLOCK) // BLOCK * BLOCK)
        assert got == bytes(self.model), "the file differs from its model"


def test_reads_answered_in_c_never_return_stale_bytes(mounted: LivePool) -> None:
    rng = random.Random(20261203)
    source_model = rng.randbytes(2 * MiB)
    (mounted.mnt / "source").write_bytes(source_model)
    source = os.open(mounted.mnt / "source", os.O_RDONLY)
    checked = Checked(mounted.mnt / "file", rng)
    before = front_end(mounted)
    try:
        checked.check_all()
        changes = [
            checked.write,
            checked.write_direct,
            checked.truncate,
            lambda: checked.punch(PUNCH_HOLE_KEEP_SIZE),
            lambda: checked.punch(ZERO_RANGE),
            lambda: checked.copy_in(source, source_model),
            checked.reopen_truncated,
        ]
        for step in range(200):
            rng.choice(changes)()
            if step % 3 == 0:
                os.fsync(checked.fd)  # stored: its reads become cacheable again
            checked.check_some()
            checked.check_some()
            if step % 10 == 0:
                checked.check_all()
        checked.check_all()
        assert direct_read(source, 0, 2 * MiB) == source_model
    finally:
        checked.close()
        os.close(source)
    after = front_end(mounted)
    answered = after["reads_in_c"] - before["reads_in_c"]
    assert answered > 300, "the C side answered too few reads to test it"
    written = after["writes_in_c"] - before["writes_in_c"]
    assert written > 50, "the C side answered too few writes to test them"


def test_a_name_renamed_over_reads_the_new_file(mounted: LivePool) -> None:
    """Spans belong to inodes: a name that now leads to another inode (rename
    over it, or unlink and create) reads the new one's bytes."""
    path, other = mounted.mnt / "f", mounted.mnt / "g"
    for round_, letter in enumerate(b"abc"):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT) if round_ else None
        if fd is not None:
            try:
                assert direct_read(fd, 0, MiB) == bytes([letter - 1]) * MiB
                assert direct_read(fd, 0, MiB) == bytes([letter - 1]) * MiB
            finally:
                os.close(fd)
        if round_ % 2:
            path.unlink()
            path.write_bytes(bytes([letter]) * MiB)
        else:
            other.write_bytes(bytes([letter]) * MiB)
            other.rename(path)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        assert direct_read(fd, 0, MiB) == b"c" * MiB
    finally:
        os.close(fd)


def test_reads_across_many_chunks_arrive_whole(make_pool: PoolFactory) -> None:
    """A read Python answers is sent as the cached chunks' own buffers, one
    vector; one across more pieces than a vector takes is joined first. With
    4 KiB chunks, reads of 64 KiB to 1 MiB cover both, each checked byte for
    byte on its first (uncached) read and again once C keeps it."""
    pool = make_pool(chunker=ChunkerParams(min_size=1 * KiB, avg_size=4 * KiB, max_size=8 * KiB))
    for length in (64 * KiB, 256 * KiB, MiB):
        model = random.Random(length).randbytes(3 * MiB)
        path = pool.mnt / f"file{length}"
        path.write_bytes(model)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
        try:
            for off in range(0, len(model), length):
                expected = model[off : off + length]
                assert direct_read(fd, off, length) == expected, (off, length)
                assert direct_read(fd, off, length) == expected, (off, length)
        finally:
            os.close(fd)


def test_reads_waiting_for_read_ahead_see_every_change(mounted: LivePool) -> None:
    """Sequential reads of a cold file wait in C for read-ahead's bytes. Changes
    made just ahead of the reader, inside what read-ahead has promised or
    already brought (buffered and direct writes, hole punching, truncation,
    stored or not), must show in every later read; and most reads must have
    been answered in C, some after waiting, or the test proves nothing."""
    rng = random.Random(20261205)
    path = mounted.mnt / "big"
    model = bytearray(rng.randbytes(24 * MiB + 777))
    path.write_bytes(model)
    waited = 0
    for _ in range(3):
        mounted.remount()  # the chunks are cold again
        before = front_end(mounted)
        checked = Checked(path, rng, model)
        try:
            pos = 0
            with ThreadPoolExecutor(4) as readers:
                while pos < len(model):
                    # four reads at once, as the kernel's read-ahead sends them
                    n = rng.choice([256 * KiB, MiB])
                    offs = [pos + i * n for i in range(4)]
                    got = list(readers.map(direct_read, [checked.direct] * 4, offs, [n] * 4))
                    pos += 4 * n
                    if rng.random() < 0.5:
                        # at once, while the read-ahead those reads started is loading
                        change_ahead(checked, pos, rng)
                        if rng.random() < 0.8:
                            os.fsync(checked.fd)  # stored: read-ahead promises its bytes again
                    for off, data in zip(offs, got, strict=True):  # the change came after them
                        assert data == bytes(model[off : off + n]), f"bytes at {off}+{n} differ"
            checked.check_all()
        finally:
            checked.close()
        after = front_end(mounted)
        waited += after["reads_waited"] - before["reads_waited"]
        assert after["reads_in_c"] - before["reads_in_c"] > 20, "too few reads were answered in C"
    assert waited >= 5, "too few reads waited in C for read-ahead to test it"


def change_ahead(checked: Checked, pos: int, rng: random.Random) -> None:
    """A change within the 4 MiB after pos, where read-ahead is at work."""
    off = pos + rng.randrange(0, 4 * MiB)
    n = rng.randrange(1, 300 * KiB)
    kind = rng.randrange(5)
    if kind == 0:
        data = rng.randbytes(n)
        assert os.pwrite(checked.fd, data, off) == n
        checked.put(off, data)
    elif kind == 1:
        off, n = off // BLOCK * BLOCK, max(BLOCK, n // BLOCK * BLOCK)
        data = rng.randbytes(n)
        direct_write(checked.direct, off, data)
        checked.put(off, data)
    elif kind == 2:
        fallocate(checked.fd, PUNCH_HOLE_KEEP_SIZE, off, n)
        end = min(off + n, len(checked.model))
        if end > off:
            checked.put(off, bytes(end - off))
    elif kind == 3:
        size = max(len(checked.model) - rng.randrange(0, 64 * KiB), pos)
        os.ftruncate(checked.fd, size)
        del checked.model[size:]
    else:
        os.ftruncate(checked.fd, len(checked.model) + n)
        checked.model.extend(bytes(n))
