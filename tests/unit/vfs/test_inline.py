"""Small files kept in the metadata: through a real Volume on real directories."""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from dwfs import Credential, PoolOptions, create_pool
from dwfs.chunks import PASSPHRASE
from dwfs.vfs import AttrChanges, Volume, open_volume
from dwfs.vfs._attrs import ROOT_INO
from dwfs.vfs._files import INLINE_MAX
from tests.conftest import FAST_KDF


def credential() -> Credential:
    return Credential(PASSPHRASE, bytearray(b"pass"))


def make(tmp_path: Path) -> Path:
    paths = [tmp_path / f"d{i}" for i in range(3)]
    create_pool(paths, credential(), PoolOptions(layout="raidz1", kdf=FAST_KDF))
    return paths[0]


async def write_file(volume: Volume, name: bytes, data: bytes, at: int = 0) -> int:
    fh, attr = volume.create(ROOT_INO, name, 0o644, os.O_RDWR, 0, 0)
    await volume.write(fh, at, data)
    await volume.fsync(fh)
    await volume.release(fh)
    await volume.sync_all()  # fsync logged the bytes; the timer stores them
    return attr.ino


async def read_file(volume: Volume, ino: int) -> bytes:
    fh = await volume.open(ino, os.O_RDONLY)
    try:
        return await volume.read(fh, 0, volume.attr(ino).size + 10)
    finally:
        await volume.release(fh)


async def test_small_files_store_no_chunks_and_survive_remounts(tmp_path: Path) -> None:
    device = make(tmp_path)
    files = {b"f%d" % i: random.Random(i).randbytes(i * 97 % (INLINE_MAX + 1)) for i in range(40)}
    async with open_volume(device, credential()) as volume:
        inos = {name: await write_file(volume, name, data) for name, data in files.items()}
        assert volume.pool.store.stats.chunks_written == 0
        assert {name: await read_file(volume, ino) for name, ino in inos.items()} == files
    async with open_volume(device, credential()) as volume:
        for name, ino in inos.items():
            assert await read_file(volume, ino) == files[name], "replayed from the pool"


async def test_growing_past_the_limit_moves_the_bytes_into_chunks(tmp_path: Path) -> None:
    device = make(tmp_path)
    head = os.urandom(INLINE_MAX - 10)
    tail = os.urandom(5000)
    async with open_volume(device, credential()) as volume:
        ino = await write_file(volume, b"grows", head)
        assert volume.data.inline(ino) == head
        fh = await volume.open(ino, os.O_RDWR)
        await volume.write(fh, len(head), tail)
        await volume.fsync(fh)
        await volume.release(fh)
        await volume.sync_all()  # fsync logged the tail; the timer stores it
        assert volume.data.inline(ino) is None
        assert volume.pool.store.stats.chunks_written > 0
        assert await read_file(volume, ino) == head + tail
    async with open_volume(device, credential()) as volume:
        assert await read_file(volume, ino) == head + tail


async def test_truncate_and_holes_in_an_inline_file(tmp_path: Path) -> None:
    device = make(tmp_path)
    async with open_volume(device, credential()) as volume:
        ino = await write_file(volume, b"t", b"0123456789")
        await volume.setattr(ino, AttrChanges(size=4))
        assert await read_file(volume, ino) == b"0123"
        await volume.setattr(ino, AttrChanges(size=100_000))
        assert await read_file(volume, ino) == b"0123" + bytes(100_000 - 4)
        fh = await volume.open(ino, os.O_RDWR)
        await volume.write(fh, 50, b"x")
        await volume.fsync(fh)
        await volume.release(fh)
        await volume.sync_all()
        assert volume.data.inline(ino) == b"0123" + bytes(46) + b"x"
        expected = b"0123" + bytes(46) + b"x" + bytes(100_000 - 51)
        assert await read_file(volume, ino) == expected
    async with open_volume(device, credential()) as volume:
        assert await read_file(volume, ino) == expected


@given(
    writes=st.lists(
        st.tuples(st.integers(0, 3 * INLINE_MAX), st.binary(min_size=1, max_size=INLINE_MAX)),
        max_size=6,
    ),
    cut=st.integers(0, 4 * INLINE_MAX),
)
async def test_any_writes_and_a_truncate_read_back_as_in_a_bytearray(
    writes: list[tuple[int, bytes]], cut: int
) -> None:
    with tempfile.TemporaryDirectory() as d:
        device = make(Path(d))
        model = bytearray()
        async with open_volume(device, credential()) as volume:
            fh, attr = volume.create(ROOT_INO, b"m", 0o644, os.O_RDWR, 0, 0)
            for at, data in writes:
                await volume.write(fh, at, data)
                await volume.flush(fh)
                model[len(model) : at] = bytes(max(0, at - len(model)))
                model[at : at + len(data)] = data
            await volume.setattr(attr.ino, AttrChanges(size=cut))
            del model[cut:]
            model.extend(bytes(cut - len(model)))
            await volume.fsync(fh)
            await volume.release(fh)
            assert await read_file(volume, attr.ino) == bytes(model)
        async with open_volume(device, credential()) as volume:
            assert await read_file(volume, attr.ino) == bytes(model)


@settings(max_examples=25, deadline=None)
@given(
    writes=st.lists(
        st.tuples(st.integers(0, 3 << 20), st.integers(1, 300_000)), min_size=1, max_size=5
    ),
    later=st.lists(st.tuples(st.integers(0, 4 << 20), st.integers(1, 200_000)), max_size=3),
)
async def test_a_new_files_first_flush_asks_for_nothing_stored(
    writes: list[tuple[int, int]], later: list[tuple[int, int]]
) -> None:
    """A file this mount created has nothing stored until its first flush, which
    therefore queries no extents or inline bytes before it stores its first
    region (later regions and flushes do), and the file reads back as its model
    throughout and after a remount."""
    rng = random.Random(len(writes) * 31 + len(later))
    with tempfile.TemporaryDirectory() as d:
        device = make(Path(d))
        model = bytearray()

        async def write(volume: Volume, fh: int, at: int, n: int) -> None:
            data = rng.randbytes(n)
            await volume.write(fh, at, data)
            model[len(model) : at] = bytes(max(0, at - len(model)))
            model[at : at + n] = data

        async with open_volume(device, credential()) as volume:
            fh, attr = volume.create(ROOT_INO, b"new", 0o644, os.O_RDWR, 0, 0)
            for at, n in writes:
                await write(volume, fh, at, n)
            asked: list[str] = []
            volume.meta.db.conn.set_trace_callback(asked.append)
            await volume.flush(fh)
            volume.meta.db.conn.set_trace_callback(None)
            stored = [i for i, q in enumerate(asked) if q.startswith("INSERT INTO extents")]
            first = asked[: stored[0]] if stored else asked
            assert not [q for q in first if "FROM extents" in q or "FROM inline_data" in q]
            for at, n in later:
                await write(volume, fh, at, n)
                await volume.flush(fh)
            await volume.fsync(fh)
            await volume.release(fh)
            assert await read_file(volume, attr.ino) == bytes(model)
        async with open_volume(device, credential()) as volume:
            assert await read_file(volume, attr.ino) == bytes(model)
