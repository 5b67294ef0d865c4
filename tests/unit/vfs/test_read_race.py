"""Reads that wait for chunk loads while the same file's writes are being stored."""

from __future__ import annotations

import os
import random
from pathlib import Path

import trio

from dwfs import Credential, PoolOptions, create_pool
from dwfs.chunks import PASSPHRASE
from dwfs.vfs import open_volume
from dwfs.vfs._attrs import ROOT_INO
from tests.conftest import FAST_KDF

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
        fh, _ = await volume.create(ROOT_INO, b"f", 0o644, os.O_RDWR, 0, 0)
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
