"""The block store and pool on real directories, through the public API."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import pytest
import trio
import trio.lowlevel

from dwfs import Credential, PoolOptions, create_pool, open_pool
from dwfs.chunks import (
    KEYFILE,
    PASSPHRASE,
    RECOVERY,
    ChunkerParams,
    crypto,
    new_recovery_key,
)
from dwfs.chunks._store import LOAD_BUDGET
from dwfs.devices import parse_layout
from dwfs.devices._layout import shards_on
from dwfs.errors import BadKey, IntegrityError, NotFound, UsageError
from dwfs.types import ChunkId, ChunkRef, Plain
from tests.conftest import FAST_KDF

SMALL = ChunkerParams(min_size=4096, avg_size=16384, max_size=65536)


def pw(secret: bytes = b"pass") -> Credential:
    return Credential(PASSPHRASE, bytearray(secret))


def make(tmp_path: Path, layout: str = "raidz1", n: int = 3, **kw: object) -> list[Path]:
    paths = [tmp_path / f"d{i}" for i in range(n)]
    options = PoolOptions(layout=layout, kdf=FAST_KDF, chunker=SMALL, **kw)  # type: ignore[arg-type]
    create_pool(paths, pw(), options)
    return paths


@pytest.mark.parametrize(
    ("cipher", "compression"),
    [("aes-256-gcm", "zstd"), ("chacha20-poly1305", "lz4"), ("aes-256-gcm", "none")],
)
async def test_put_get_dedup_and_reopen(tmp_path: Path, cipher: str, compression: str) -> None:
    paths = make(tmp_path, cipher=cipher, compression=compression)
    text = b"".join(b"line %d of a log file\n" % i for i in range(20_000))
    noise = random.Random(0).randbytes(300_000)
    async with open_pool(paths[0], pw()) as pool:
        refs = await pool.store.put(text + noise)
        assert await pool.store.read(refs) == text + noise
        written = pool.store.stats.chunks_written
        again = await pool.store.put(text + noise)
        assert again == refs
        assert pool.store.stats.chunks_written == written, "the second copy is deduplicated"
        used = pool.status()["capacity"]["used"]
        assert used < len(text) + len(noise) * 1.6, "text compresses"
    async with open_pool(paths[2], pw()) as pool:
        pool.store.cache.capacity = 0
        assert len(pool.store.index) == written, "the index is rebuilt from the devices"
        assert await pool.store.read(refs) == text + noise
        assert await pool.store.put(text + noise) == refs
        assert pool.store.stats.chunks_written == 0, "dedup survives a reopen"


async def test_data_of_at_most_one_chunk_is_stored_as_the_cut_would(tmp_path: Path) -> None:
    """put() stores data no longer than the smallest chunk as one chunk without
    cutting it: the same chunks the cut would give, on either side of that size."""
    paths = make(tmp_path)
    rng = random.Random(5)
    async with open_pool(paths[0], pw()) as pool:
        assert await pool.store.put(b"") == []
        for size in (1, 100, SMALL.min_size - 1, SMALL.min_size, SMALL.min_size + 1, 50_000):
            data = rng.randbytes(size)
            refs = await pool.store.put(data)
            assert [r.length for r in refs] == pool.store.chunker.cut(data)
            assert await pool.store.read(refs) == data
            assert await pool.store.put(data) == refs


async def test_nothing_on_disk_is_plaintext(tmp_path: Path) -> None:
    paths = make(tmp_path, compression="none")
    marker = b"PLAINTEXT-MARKER-" * 4000
    async with open_pool(paths[0], pw()) as pool:
        await pool.store.put(marker)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert b"PLAINTEXT-MARKER" not in path.read_bytes(), path


async def test_degraded_pool_reads_and_scrub_repairs(tmp_path: Path) -> None:
    paths = make(tmp_path, layout="raidz2", n=5)
    data = os.urandom(400_000)
    async with open_pool(paths[0], pw()) as pool:
        refs = await pool.store.put(data)
    shutil.rmtree(paths[3])
    seg = next((paths[1] / "segments").iterdir())
    raw = bytearray(seg.read_bytes())
    for i in range(0, len(raw), 997):
        raw[i] ^= 0xFF
    seg.write_bytes(bytes(raw))
    async with open_pool(paths[0], pw()) as pool:
        pool.store.cache.capacity = 0
        assert pool.status()["state"] == "degraded"
        assert await pool.store.read(refs) == data
        report = (await pool.scrub()).report
        assert report.unrepairable == 0
        assert report.errors_repaired > 0
        await pool.replace(str(paths[3]), tmp_path / "new")
        assert pool.status()["state"] == "online"
    async with open_pool(tmp_path / "new", pw()) as pool:
        report = (await pool.scrub()).report
        assert (report.errors_found, report.unrepairable) == (0, 0)


async def test_keyslot_lifecycle(tmp_path: Path) -> None:
    paths = make(tmp_path)
    recovery = new_recovery_key()
    async with open_pool(paths[0], pw()) as pool:
        assert pool.add_keyslot(PASSPHRASE, b"second") == 1
        assert pool.add_keyslot(KEYFILE, b"key-file-bytes") == 2
        assert pool.add_keyslot(RECOVERY, recovery.encode()) == 3
        assert [s["kind"] for s in pool.keyslots()] == [PASSPHRASE, PASSPHRASE, KEYFILE, RECOVERY]
    async with open_pool(paths[1], Credential(KEYFILE, bytearray(b"key-file-bytes"))) as pool:
        assert pool.unlocked_with == 2
    async with open_pool(paths[1], pw(recovery.encode())) as pool:
        assert pool.unlocked_with == 3
        pool.change_keyslot(0, PASSPHRASE, b"changed")
        with pytest.raises(UsageError, match="holds a recovery"):
            pool.change_keyslot(3, PASSPHRASE, b"x")
    with pytest.raises(BadKey):
        async with open_pool(paths[0], pw()):
            pass
    async with open_pool(paths[0], pw(b"changed")) as pool:
        pool.remove_keyslot(1)
        with pytest.raises(NotFound):
            pool.remove_keyslot(1)
        for slot in (2, 3):
            pool.remove_keyslot(slot)
        with pytest.raises(UsageError, match="last"):
            pool.remove_keyslot(0)
    with pytest.raises(BadKey):
        async with open_pool(paths[0], pw(b"second")):
            pass
    for path in paths:
        assert b'"kind":"keyfile"' not in (path / "superblock").read_bytes(), "wiped everywhere"


async def test_wrong_passphrase_changes_nothing(tmp_path: Path) -> None:
    paths = make(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(BadKey, match="wrong passphrase"):
        async with open_pool(paths[0], pw(b"nope")):
            pass
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert before == after


async def test_whole_pool_rollback_is_refused(tmp_path: Path) -> None:
    paths = make(tmp_path)
    snapshot = tmp_path / "old"
    snapshot.mkdir()
    for p in paths:
        shutil.copytree(p, snapshot / p.name)
    async with open_pool(paths[0], pw()) as pool:
        pool.add_keyslot(PASSPHRASE, b"later")
    for p in paths:
        shutil.rmtree(p)
        shutil.copytree(snapshot / p.name, p)
    with pytest.raises(IntegrityError, match="rolled back"):
        async with open_pool(paths[0], pw()):
            pass
    async with open_pool(paths[0], pw(), accept_rollback=True) as pool:
        restored = pool.array.generation
    async with open_pool(paths[0], pw()) as pool:
        assert pool.array.generation >= restored


async def test_concurrent_gets_of_one_chunk_load_it_once(tmp_path: Path) -> None:
    paths = make(tmp_path, compression="none")
    data = random.Random(1).randbytes(3000)
    async with open_pool(paths[0], pw()) as pool:
        (ref,) = await pool.store.put(data)
        pool.store.cache = type(pool.store.cache)(1 << 20)
        results: list[Plain] = []

        async def get() -> None:
            results.append(await pool.store.get(ref.chunk_id))

        async with trio.open_nursery() as nursery:
            for _ in range(8):
                nursery.start_soon(get)
        assert results == [data] * 8
        assert pool.store.stats.chunks_loaded == 1


async def stored(tmp_path: Path, seed: int, size: int) -> tuple[list[Path], bytes, list[ChunkRef]]:
    """A pool holding `size` random bytes, closed: its devices, the bytes, their refs."""
    paths = make(tmp_path, compression="none")
    data = random.Random(seed).randbytes(size)
    async with open_pool(paths[0], pw()) as pool:
        refs = await pool.store.put(data)
    return paths, data, refs


async def test_a_damaged_data_shard_is_found_by_its_mac_and_healed_on_read(
    tmp_path: Path,
) -> None:
    paths, data, refs = await stored(tmp_path, seed=2, size=200_000)
    layout = parse_layout("raidz1", 3)
    seg = next((paths[1] / "segments").iterdir())
    raw = bytearray(seg.read_bytes())
    for ref in refs:  # one payload byte of this device's shard of every stripe
        raw[ref.addr.offset + 200] ^= 0x01
    seg.write_bytes(bytes(raw))
    data_shard_here = [shards_on(layout, ref.addr.seq)[1] < layout.k for ref in refs]
    assert any(data_shard_here) and not all(data_shard_here)
    async with open_pool(paths[0], pw()) as pool:
        pool.store.cache.capacity = 0
        assert await pool.store.read(refs) == data
        report = (await pool.scrub()).report
        assert report.errors_found == data_shard_here.count(False), (
            "reads healed the damaged data shards; only parity was left for scrub"
        )


async def test_a_short_data_shard_is_rebuilt_from_parity(tmp_path: Path) -> None:
    """A segment cut short on one device: the fast path's read comes up short,
    and the full read rebuilds those shards from the others."""
    paths, data, refs = await stored(tmp_path, seed=4, size=300_000)
    seg = next((paths[1] / "segments").iterdir())
    last = max(refs, key=lambda r: r.addr.offset)
    with open(seg, "r+b") as f:
        f.truncate(last.addr.offset + 1000)
    async with open_pool(paths[0], pw()) as pool:
        pool.store.cache.capacity = 0
        assert await pool.store.read(refs) == data


async def test_prefetch_loads_each_chunk_once_and_leaves_failures_to_readers(
    tmp_path: Path,
) -> None:
    paths = make(tmp_path, compression="none")
    data = random.Random(3).randbytes(300_000)
    async with open_pool(paths[0], pw()) as pool:
        refs = await pool.store.put(data)
        pool.store.cache = type(pool.store.cache)(1 << 24)
        unknown = ChunkId(bytes(32))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pool.store.prefetch, [r.chunk_id for r in refs] + [unknown])
            await trio.lowlevel.checkpoint()
            assert await pool.store.read(refs) == data, "readers join the loads under way"
        assert pool.store.stats.chunks_loaded == len(refs)
        with pytest.raises(IntegrityError):
            await pool.store.get(unknown)


async def test_served_loaders_load_every_batch_once(tmp_path: Path) -> None:
    """Read-ahead's batches queued for the loaders (as a mount serves them),
    many at once and some overlapping: each chunk is loaded once, and every
    prefetch returns with its chunks cached."""
    paths = make(tmp_path, compression="none")
    data = random.Random(6).randbytes(3_000_000)
    async with open_pool(paths[0], pw()) as pool:
        refs = await pool.store.put(data)
        pool.store.cache = type(pool.store.cache)(1 << 26)
        ids = [r.chunk_id for r in refs]
        async with trio.open_nursery() as service:
            await service.start(pool.store.serve_loaders)
            async with trio.open_nursery() as nursery:
                for i in range(0, len(ids), 2):
                    nursery.start_soon(pool.store.prefetch, ids[i : i + 3])
            assert all(pool.store.cache.get(c, count=False) is not None for c in ids)
            assert pool.store.stats.chunks_loaded == len(set(ids))
            service.cancel_scope.cancel()
        assert await pool.store.read(refs) == data


async def test_a_put_takes_its_turn_during_a_long_read_ahead(tmp_path: Path) -> None:
    """Loaders give their thread back every LOAD_BUDGET chunks: a put that
    comes while a long queue of read-ahead is being loaded is stored before the
    queue is done, not after it."""
    paths = make(tmp_path, compression="none")
    async with open_pool(paths[0], pw()) as pool:
        refs = await pool.store.put(random.Random(8).randbytes(24_000_000))
        pool.store.cache.capacity = 0
        ids = [r.chunk_id for r in refs]
        assert len(ids) > 4 * LOAD_BUDGET
        finished: list[str] = []

        async def prefetch(cid: ChunkId) -> None:
            await pool.store.prefetch([cid])
            finished.append("load")

        async def put() -> None:
            await pool.store.put(random.Random(9).randbytes(1_000_000))
            finished.append("put")

        async with trio.open_nursery() as service:
            await service.start(pool.store.serve_loaders)
            async with trio.open_nursery() as nursery:
                for cid in ids:
                    nursery.start_soon(prefetch, cid)
                await trio.sleep(0.001)
                nursery.start_soon(put)
            service.cancel_scope.cancel()
        assert finished.index("put") < len(ids), "the put waited for the whole queue"


async def test_prefetches_queued_when_the_loaders_stop_return_and_leave_chunks_to_readers(
    tmp_path: Path,
) -> None:
    """The loaders' service cancelled (an unmount) with batches still queued:
    their prefetches return rather than wait for ever, and a reader loads what
    they did not."""
    paths = make(tmp_path, compression="none")
    data = random.Random(7).randbytes(2_000_000)
    async with open_pool(paths[0], pw()) as pool:
        refs = await pool.store.put(data)
        pool.store.cache.capacity = 0
        ids = [r.chunk_id for r in refs]
        async with trio.open_nursery() as outer, trio.open_nursery() as service:
            await service.start(pool.store.serve_loaders)
            for cid in ids:
                outer.start_soon(pool.store.prefetch, [cid])
            service.cancel_scope.cancel()
        assert not pool.store.has_or_loading(ids[-1])
        assert await pool.store.read(refs) == data


async def test_a_padded_pool_round_trips_and_seals_padme_lengths(tmp_path: Path) -> None:
    paths = make(tmp_path, padding="padme", compression="none")
    data = random.Random(5).randbytes(900_000)
    async with open_pool(paths[0], pw()) as pool:
        assert pool.status()["padding"] == "padme"
        refs = await pool.store.put(data)
    async with open_pool(paths[1], pw()) as pool:
        pool.store.cache.capacity = 0
        assert await pool.store.read(refs) == data
        for ref in refs:
            assert ref.addr.sealed_len == crypto.OVERHEAD + crypto.padme(ref.length + 4)


async def test_capacity_means_the_same_with_a_device_missing(tmp_path: Path) -> None:
    """Three devices on one filesystem: each has a third of it, and the pool two
    thirds after parity, whether or not one of them is there."""
    paths = make(tmp_path)
    async with open_pool(paths[0], pw()) as pool:
        await pool.store.put(random.Random(2).randbytes(3_000_000))
        await pool.store.sync()
        whole = pool.status()["capacity"]
    shutil.rmtree(paths[2])
    async with open_pool(paths[0], pw()) as pool:
        assert pool.status()["state"] == "degraded"
        missing = pool.status()["capacity"]
    st = os.statvfs(tmp_path)
    assert whole["size"] == missing["size"] == st.f_blocks * st.f_frsize // 3 * 2
    assert whole["used"] >= 3_000_000 and abs(missing["used"] - whole["used"]) < 300_000
    assert 0 < whole["free"] <= st.f_bavail * st.f_frsize
