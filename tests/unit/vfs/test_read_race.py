"""Reads that wait for chunk loads while the same file's writes are being stored."""

from __future__ import annotations

import os
import random
from pathlib import Path

import trio
import trio.testing

from dwfs import Credential, PoolOptions, create_pool
from dwfs.chunks import PASSPHRASE
from dwfs.chunks._cache import ChunkCache
from dwfs.vfs import AttrChanges, Volume, open_volume
from dwfs.vfs._attrs import ROOT_INO
from dwfs.vfs._files import READ_AHEAD_BYTES
from tests.conftest import FAST_KDF
from tests.unit.vfs.test_inline import credential, make, read_file, write_file

SIZE = 256 * 1024


async def test_a_waiting_read_sees_writes_stored_meanwhile(tmp_path: Path) -> None:
    """The writes are in the file before the read starts; the flush that stores
    them (replacing the extents the read looked up) may finish while the read
    waits for the old chunk: the read must still return them."""
    paths = [tmp_path / f"d{i}" for i in range(3)]
    credential = Credential(PASSPHRASE, bytearray(b"pass"))
    create_pool(paths, credential, PoolOptions(layout="raidz1", kdf=FAST_KDF))
    async with open_volume(paths[0], Credential(PASSPHRASE, bytearray(b"pass"))) as volume:
        volume.pool.store.cache.capacity = 0  # every read loads its chunks
        fh, _ = volume.create(ROOT_INO, b"f", 0o644, os.O_RDWR, 0, 0)
        await volume.write(fh, 0, random.Random(0).randbytes(SIZE))
        await volume.flush(fh)
        for round_ in range(1, 25):
            new = random.Random(round_).randbytes(SIZE)
            await volume.write(fh, 0, new)
            seen: list[bytes] = []

            async def read(into: list[bytes]) -> None:
                into.append(await volume.read(fh, 0, SIZE))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(read, seen)
                await trio.lowlevel.checkpoint()
                nursery.start_soon(volume.flush, fh)
            assert seen == [new], f"round {round_}: the read returned older bytes"
        await volume.release(fh)


async def read_on(volume: Volume, fh: int, start: int) -> bytes:
    """From start to the end, 1 MiB a read, as a sequential reader does (the
    second read on loads a window)."""
    out = bytearray()
    while piece := await volume.read(fh, start + len(out), 1 << 20):
        out += piece
    return bytes(out)


async def test_reads_through_an_open_file_s_extent_window_see_every_change(
    tmp_path: Path,
) -> None:
    """Reads look extents up in a window the open file keeps; overwrites,
    appends, truncates and extensions through the same or another handle must
    show in the very next read, against a bytearray kept alongside."""
    paths = [tmp_path / f"d{i}" for i in range(3)]
    credential = Credential(PASSPHRASE, bytearray(b"pass"))
    create_pool(paths, credential, PoolOptions(layout="raidz1", kdf=FAST_KDF))
    rng = random.Random(5)
    async with open_volume(paths[0], Credential(PASSPHRASE, bytearray(b"pass"))) as volume:
        fh, attr = volume.create(ROOT_INO, b"f", 0o644, os.O_RDWR, 0, 0)
        other = await volume.open(attr.ino, os.O_RDWR)
        model = bytearray(rng.randbytes(3 * 1024 * 1024))
        await volume.write(fh, 0, bytes(model))
        await volume.flush(fh)
        for _ in range(30):
            at = rng.randrange(len(model) + 1)
            kind = rng.choice(["overwrite", "append", "truncate", "extend"])
            if kind in ("truncate", "extend"):
                del model[at:]
                await volume.setattr(attr.ino, AttrChanges(size=at))
                if kind == "extend":  # what was cut off must read as zeros now
                    model += bytes(rng.randrange(1, 300_000))
                    await volume.setattr(attr.ino, AttrChanges(size=len(model)))
            else:
                data = rng.randbytes(rng.randrange(1, 300_000))
                at = len(model) if kind == "append" else at
                model[at : at + len(data)] = data
                await volume.write(rng.choice([fh, other]), at, data)
                await volume.flush(fh)
            assert await read_on(volume, fh, 0) == bytes(model), kind
            start = rng.randrange(len(model) + 1)
            assert await read_on(volume, other, start) == bytes(model[start:]), kind
        await volume.release(other)
        await volume.release(fh)


async def test_a_sequential_reader_finds_the_chunks_ahead_of_it_fetched(tmp_path: Path) -> None:
    """The second read in a row starts read-ahead: the chunks of the next
    READ_AHEAD_BYTES are in the cache before the reader asks for them, and a
    reader that jumps about starts none."""
    paths = [tmp_path / f"d{i}" for i in range(3)]
    credential = Credential(PASSPHRASE, bytearray(b"pass"))
    create_pool(paths, credential, PoolOptions(layout="raidz1", kdf=FAST_KDF))
    async with open_volume(paths[0], Credential(PASSPHRASE, bytearray(b"pass"))) as volume:
        fh, attr = volume.create(ROOT_INO, b"f", 0o644, os.O_RDWR, 0, 0)
        await volume.write(fh, 0, random.Random(3).randbytes(16 << 20))
        await volume.release(fh)
        volume.pool.store.cache = ChunkCache(volume.pool.store.cache.capacity)  # cold
        fh = await volume.open(attr.ino, os.O_RDONLY)
        next_up = volume.data.extents(attr.ino, 3 << 20, (2 << 20) + READ_AHEAD_BYTES)
        ahead = [e.chunk for e in next_up]
        await volume.read(fh, 12 << 20, 1 << 20)
        await volume.read(fh, 1 << 20, 1 << 20)  # a jump: no read-ahead
        await trio.testing.wait_all_tasks_blocked()
        assert not any(volume.pool.store.has_or_loading(c) for c in ahead)
        await volume.read(fh, 2 << 20, 1 << 20)  # follows the last read
        with trio.fail_after(10):
            while not all(volume.pool.store.cache.contains(c) for c in ahead):  # noqa: ASYNC110
                await trio.sleep(0.01)  # loaded by worker threads: no event to wait on
        await volume.release(fh)


async def test_a_read_ahead_cancelled_while_fetching_from_the_remote_leaves_no_chunk_waiting(
    tmp_path: Path,
) -> None:
    """Read-ahead of chunks some of which only the remote has, cancelled while
    it fetches those: the local ones are announced too, so a read of them later
    loads them instead of waiting for a load that never comes."""
    device = make(tmp_path)
    remote = tmp_path / "remote"
    remote.mkdir(mode=0o700)
    far_data, near_data = os.urandom(1 << 20), os.urandom(1 << 20)
    async with open_volume(device, credential()) as volume:
        far = await write_file(volume, b"far", far_data)
        await volume.remote.add(f"dir://{remote}")
        await volume.remote.sync()
        assert (await volume.remote.dehydrate([far]))["chunks_kept"] == 0
        near = await write_file(volume, b"near", near_data)
        store = volume.pool.store
        store.cache = ChunkCache(store.cache.capacity)  # cold
        chunks = [e.chunk for ino in (far, near) for e in volume.data.extents(ino, 0, 1 << 20)]
        assert any(not store.is_local(c) for c in chunks) and any(store.is_local(c) for c in chunks)
        with trio.CancelScope() as scope:
            scope.cancel()
            await store.prefetch(chunks)
        assert not any(store.has_or_loading(c) for c in chunks)
        with trio.fail_after(10):
            assert await read_file(volume, near) == near_data
            assert await read_file(volume, far) == far_data
