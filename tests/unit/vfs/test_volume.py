"""Volume's lifetimes of inodes, on a real pool in temporary directories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from dwfs.errors import NotFound
from dwfs.vfs import AttrChanges, open_volume
from dwfs.vfs._attrs import ROOT_INO
from tests.unit.vfs.test_inline import credential, make, read_file, write_file


async def test_a_forgotten_unlinked_inode_is_purged_at_the_next_commit(tmp_path: Path) -> None:
    device = make(tmp_path)
    async with open_volume(device, credential()) as volume:
        fh, attr = volume.create(ROOT_INO, b"f", 0o644, os.O_RDWR, 0, 0)
        await volume.write(fh, 0, os.urandom(100_000))
        await volume.release(fh)
        volume.lookup(ROOT_INO, b"f")
        volume.unlink(ROOT_INO, b"f")
        assert volume.tree.attr(attr.ino).nlink == 0, "the kernel still holds it"
        volume.forget(attr.ino, 2)
        assert volume.tree.attr(attr.ino).nlink == 0, "purged with the next commit"
        await volume.sync_all()
        with pytest.raises(NotFound):
            volume.tree.attr(attr.ino)
        assert volume.db.one("SELECT count(*) FROM extents WHERE ino = ?", (attr.ino,)) == (0,)


async def test_a_forgotten_inode_that_is_still_linked_stays(tmp_path: Path) -> None:
    device = make(tmp_path)
    async with open_volume(device, credential()) as volume:
        fh, attr = volume.create(ROOT_INO, b"f", 0o644, os.O_RDWR, 0, 0)
        await volume.release(fh)
        volume.forget(attr.ino, 1)
        await volume.sync_all()
        assert volume.lookup(ROOT_INO, b"f").ino == attr.ino


async def test_many_files_written_at_once_stay_within_the_write_budget(tmp_path: Path) -> None:
    """Each file stays below its own 32 MiB limit; together they would not."""
    device = make(tmp_path)
    data = {i: os.urandom(3 << 20) for i in range(24)}
    peak = 0
    async with open_volume(device, credential()) as volume:
        volume.budget.limit = 16 << 20
        handles = {}
        for i in data:
            handles[i], _ = volume.create(ROOT_INO, b"f%d" % i, 0o644, os.O_RDWR, 0, 0)

        async def writer(i: int) -> None:
            nonlocal peak
            for off in range(0, len(data[i]), 128 << 10):
                await volume.write(handles[i], off, data[i][off : off + (128 << 10)])
                peak = max(peak, volume.budget.total)

        async with trio.open_nursery() as nursery:
            for i in data:
                nursery.start_soon(writer, i)
        for i, fh in handles.items():
            assert await volume.read(fh, 0, len(data[i])) == data[i]
            await volume.release(fh)
    assert peak <= (16 << 20) + (128 << 10), f"{peak} unstored bytes at once"


async def test_calls_that_answer_at_once_decline_what_must_wait(tmp_path: Path) -> None:
    """The *_now calls the native front end answers inline do the whole job or
    nothing: a write beyond the budget, a truncating open, a size change, and a
    flush that must store chunks without room for the write-behind are left to
    the waiting calls, unchanged."""
    device = make(tmp_path)
    async with open_volume(device, credential()) as volume:
        volume.budget.limit = 1 << 20
        fh, attr = volume.create(ROOT_INO, b"small", 0o644, os.O_RDWR, 0, 0)
        assert volume.write_now(fh, 0, b"hello") == 5
        assert volume.setattr_now(attr.ino, AttrChanges(size=1)) is None
        assert volume.setattr_now(attr.ino, AttrChanges(mode=0o600)) is not None
        assert volume.release_now(fh) is False, "unstored bytes: release must store them"
        assert volume.flush_now(fh), "a small file is stored inline without waiting"
        assert volume.data.inline(attr.ino) == b"hello"
        assert volume.release_now(fh)
        assert volume.open_now(attr.ino, os.O_WRONLY | os.O_TRUNC) is None
        assert volume.attr(attr.ino).size == 5, "the declined open truncated nothing"

        fh, attr = volume.create(ROOT_INO, b"big", 0o644, os.O_RDWR, 0, 0)
        big = os.urandom(900 << 10)
        assert volume.write_now(fh, 0, big) == len(big)
        assert volume.write_now(fh, len(big), big) is None, "over the budget: write() waits"
        assert volume.attr(attr.ino).size <= len(big)
        assert volume.flush_now(fh), "too big to keep inline: the write-behind stores it"
        assert await volume.write(fh, len(big), big) == len(big)
        volume.budget.limit = volume.statfs()["free"]
        volume._roomy_until = 0
        assert volume.flush_now(fh) is False, "no room for the write-behind: flush() stores"
        await volume.flush(fh)
        assert volume.release_now(fh)
        reader = volume.open_now(attr.ino, os.O_RDONLY)
        assert reader is not None
        assert await volume.read(reader, 0, 2 * len(big)) == big + big
        await volume.release(reader)


async def test_each_read_of_a_chunk_counts_once_in_the_cache_hit_rate(tmp_path: Path) -> None:
    device = make(tmp_path)
    data = os.urandom(3 << 20)
    async with open_volume(device, credential()) as volume:
        ino = await write_file(volume, b"f", data)
    async with open_volume(device, credential()) as volume:
        chunks = len(volume.data.extents(ino, 0, len(data)))
        cache = volume.pool.store.cache
        hits, misses = cache.hits, cache.misses  # the metadata's own, at open
        assert await read_file(volume, ino) == data
        assert (cache.hits - hits, cache.misses - misses) == (0, chunks)
        assert await read_file(volume, ino) == data
        assert (cache.hits - hits, cache.misses - misses) == (chunks, chunks)


async def test_an_inode_is_bare_until_it_has_an_xattr_and_after_it_is_purged(
    tmp_path: Path,
) -> None:
    """bare() tells the native front end it may answer getxattr ENODATA itself;
    an inode purged between a getxattr and that question has no xattr either."""
    device = make(tmp_path)
    async with open_volume(device, credential()) as volume:
        fh, attr = volume.create(ROOT_INO, b"f", 0o644, os.O_RDWR, 0, 0)
        await volume.release(fh)
        assert volume.bare(attr.ino)
        volume.setxattr(attr.ino, b"user.a", b"1", 0)
        assert not volume.bare(attr.ino)
        volume.unlink(ROOT_INO, b"f")
        volume.forget(attr.ino, 1)
        await volume.sync_all()
        with pytest.raises(NotFound):
            volume.attr(attr.ino)
        assert volume.bare(attr.ino)


async def test_the_times_a_kernel_keeps_are_the_times_stored(tmp_path: Path) -> None:
    """With the writeback cache the kernel stamps a file's mtime and ctime and
    sends them in a setattr: a write arriving later stamps nothing, and what
    the kernel sent is what is stored. Without it, a write stamps the mtime."""
    device = make(tmp_path)
    async with open_volume(device, credential()) as volume:
        fh, plain = volume.create(ROOT_INO, b"plain", 0o644, os.O_RDWR, 0, 0)
        await trio.sleep(0.01)
        await volume.write(fh, 0, os.urandom(1000))
        assert volume.attr(plain.ino).mtime_ns > plain.mtime_ns
        await volume.release(fh)

        volume.kernel_keeps_times = True
        fh, attr = volume.create(ROOT_INO, b"kept", 0o644, os.O_RDWR, 0, 0)
        await trio.sleep(0.01)
        await volume.write(fh, 0, os.urandom(100_000))
        assert volume.attr(attr.ino).mtime_ns == attr.mtime_ns, "the write stamped its arrival"
        sent = attr.mtime_ns + 5_000_000
        volume.setattr_now(attr.ino, AttrChanges(mtime_ns=sent, ctime_ns=sent))
        await volume.release(fh)
    async with open_volume(device, credential()) as volume:
        seen = volume.attr(attr.ino)
        assert (seen.mtime_ns, seen.ctime_ns, seen.size) == (sent, sent, 100_000)
