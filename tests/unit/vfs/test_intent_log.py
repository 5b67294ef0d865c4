"""The intent log: an fsync of small writes puts their bytes into the journal
record instead of storing chunks; a crash before the file's next flush leaves
them in the metadata, and the next mount stores them. Real pools; a "crash" is a
volume dropped without its close (no flush, no checkpoint), as kill -9 leaves it."""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from dwfs import open_pool
from dwfs.meta import Metadata
from dwfs.vfs import Volume, open_volume
from dwfs.vfs._attrs import ROOT_INO
from tests.unit.vfs.test_inline import credential, make


@asynccontextmanager
async def crashing(device: Path) -> AsyncIterator[Volume]:
    """A volume that ends as a kill -9 would end it: nothing stored or committed
    after what the body made durable itself."""
    async with open_pool(device, credential()) as pool:
        meta = await Metadata.open(pool)
        volume = Volume(pool, meta)
        volume.tree.ensure_root(os.getuid(), os.getgid())
        yield volume


async def content(device: Path, name: bytes) -> bytes:
    async with open_volume(device, credential()) as volume:
        ino = volume.lookup(ROOT_INO, name).ino
        fh = await volume.open(ino, os.O_RDONLY)
        size = volume.attr(ino).size
        data = await volume.read(fh, 0, size)
        await volume.release(fh)
        assert not volume.data.logged_files(), "stored and dropped at mount"
        return data


async def test_fsynced_appends_survive_a_crash_without_storing_chunks(tmp_path: Path) -> None:
    device = make(tmp_path)
    expected = bytearray(random.Random(1).randbytes(10_000))
    async with crashing(device) as volume:
        fh, _ = volume.create(ROOT_INO, b"db", 0o644, os.O_RDWR, 0, 0)
        await volume.write(fh, 0, bytes(expected))
        await volume.fsync(fh)
        written = volume.pool.store.stats.chunks_written
        for i in range(50):
            block = os.urandom(4096)
            await volume.write(fh, len(expected), block)
            expected += block
            await volume.fsync(fh)
            if i == 20:
                await volume.write(fh, 100, b"overwritten")
                expected[100:111] = b"overwritten"
        await volume.write(fh, len(expected), b"never fsynced")
        assert volume.pool.store.stats.chunks_written == written, "no chunk per fsync"
        assert volume.data.logged_files()
    assert await content(device, b"db") == expected


async def test_an_fsync_of_logged_writes_is_answered_at_once(tmp_path: Path) -> None:
    """fsync_now() is the native front end's inline fsync: it logs and commits
    without waiting, and leaves to fsync() the writes too large to log."""
    device = make(tmp_path)
    async with crashing(device) as volume:
        fh, _ = volume.create(ROOT_INO, b"small", 0o644, os.O_RDWR, 0, 0)
        assert volume.write_now(fh, 0, b"fsynced at once") == 15
        assert volume.fsync_now(fh)
        assert volume.meta.durable_txg == volume.meta.db.txg
        big, _ = volume.create(ROOT_INO, b"big", 0o644, os.O_RDWR, 0, 0)
        assert volume.write_now(big, 0, os.urandom(1 << 20)) == 1 << 20
        assert not volume.fsync_now(big), "a megabyte is stored as chunks, by fsync()"
        assert volume.write_now(fh, 15, b" and never") == 10
    assert await content(device, b"small") == b"fsynced at once"


async def test_a_truncate_after_logged_writes_is_kept(tmp_path: Path) -> None:
    device = make(tmp_path)
    async with crashing(device) as volume:
        fh, attr = volume.create(ROOT_INO, b"f", 0o644, os.O_RDWR, 0, 0)
        await volume.write(fh, 0, b"a" * 9000)
        await volume.fsync(fh)
        await volume.write(fh, 6000, b"c" * 100)
        await volume.fsync(fh)
        state = volume._files[attr.ino]
        await volume.data.truncate(attr.ino, state, 3000)
        await volume.data.truncate(attr.ino, state, 8000)
        await volume.write(fh, 5000, b"b" * 100)
        await volume.fsync(fh)
    assert await content(device, b"f") == b"a" * 3000 + bytes(2000) + b"b" * 100 + bytes(2900)


async def test_a_flush_drops_the_rows_it_stored_and_keeps_later_ones(tmp_path: Path) -> None:
    device = make(tmp_path)
    async with crashing(device) as volume:
        fh, attr = volume.create(ROOT_INO, b"f", 0o644, os.O_RDWR, 0, 0)
        await volume.write(fh, 0, b"x" * 5000)
        await volume.fsync(fh)
        assert volume.data.logged_files() == [attr.ino]
        await volume.flush(fh)
        assert volume.data.logged_files() == [attr.ino], "close leaves logged writes to the timer"
        await volume.sync_all()
        assert volume.data.logged_files() == []
        await volume.write(fh, 5000, b"y" * 10)
        await volume.fsync(fh)
        assert volume.data.logged_files() == [attr.ino]
    assert await content(device, b"f") == b"x" * 5000 + b"y" * 10


async def test_large_unstored_writes_are_stored_as_chunks_at_fsync(tmp_path: Path) -> None:
    device = make(tmp_path)
    data = os.urandom(3 << 20)
    async with crashing(device) as volume:
        fh, _ = volume.create(ROOT_INO, b"big", 0o644, os.O_RDWR, 0, 0)
        await volume.write(fh, 0, data)
        await volume.fsync(fh)
        assert volume.pool.store.stats.chunks_written > 0
        assert not volume.data.logged_files()
    assert await content(device, b"big") == data


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["write", "fsync", "flush", "truncate"]),
            st.integers(0, 40_000),
            st.integers(1, 6000),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_what_was_fsynced_last_is_what_a_crash_leaves(ops: list[tuple[str, int, int]]) -> None:
    """A model: after the crash the file is exactly as it was at its last fsync."""
    import tempfile

    import trio

    with tempfile.TemporaryDirectory() as tmp:
        device = make(Path(tmp))
        model = bytearray()
        durable = b""

        async def run() -> None:
            nonlocal durable
            async with crashing(device) as volume:
                fh, attr = volume.create(ROOT_INO, b"f", 0o644, os.O_RDWR, 0, 0)
                await volume.fsync(fh)
                rng = random.Random(len(ops))
                for op, offset, length in ops:
                    if op == "write":
                        data = rng.randbytes(length)
                        await volume.write(fh, offset, data)
                        model.extend(bytes(max(0, offset + length - len(model))))
                        model[offset : offset + length] = data
                    elif op == "truncate":
                        size = offset % (len(model) + 1)
                        await volume.data.truncate(attr.ino, volume._files[attr.ino], size)
                        del model[size:]
                    elif op == "flush":
                        await volume.flush(fh)
                    else:
                        await volume.fsync(fh)
                        durable = bytes(model)

        trio.run(run)
        assert trio.run(content, device, b"f") == durable
