"""PutJob: worker threads sharing one put cut and store every chunk exactly once,
at the boundaries the chunker finds in the whole content, however the content
comes in pieces."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import blake3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dwfs import Credential, PoolOptions, create_pool, open_pool
from dwfs.chunks import PASSPHRASE, ChunkerParams
from dwfs.chunks._chunker import Chunker
from dwfs.chunks._putjob import Pieces, PutJob
from dwfs.types import Buffer, ChunkId, StripeAddr
from tests.conftest import FAST_KDF

SMALL = ChunkerParams(min_size=256, avg_size=1024, max_size=4096)
CHUNKER = Chunker(SMALL, b"k" * 32)


def content(seed: int, size: int) -> bytes:
    rng = random.Random(seed)
    block = rng.randbytes(3000)
    parts = [
        block if rng.random() < 0.3 else rng.randbytes(rng.randint(1, 5000)) for _ in range(40)
    ]
    return b"".join(parts)[:size]


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """data in pieces, cut at these offsets (empty pieces included)."""
    at = sorted(min(c, len(data)) for c in cuts)
    return [data[a:b] for a, b in zip([0, *at], [*at, len(data)], strict=True)]


@given(
    seed=st.integers(0, 2**32),
    size=st.integers(0, 30_000),
    cuts=st.lists(st.integers(0, 30_000), max_size=12),
    ranges=st.lists(st.tuples(st.integers(0, 30_000), st.integers(0, 30_000)), max_size=8),
)
def test_pieces_read_as_the_whole(
    seed: int, size: int, cuts: list[int], ranges: list[tuple[int, int]]
) -> None:
    data = content(seed, size)
    pieces = Pieces(split(data, cuts))
    assert pieces.size == len(data)
    for a, b in ranges:
        lo, hi = sorted((min(a, len(data)), min(b, len(data))))
        assert bytes(pieces.range(lo, hi)) == data[lo:hi]


def test_a_range_inside_one_piece_is_not_copied() -> None:
    first, second = bytearray(b"a" * 100), bytearray(b"b" * 100)
    view = Pieces([first, second]).range(110, 150)
    second[20] = ord("c")
    assert bytes(view) == b"b" * 10 + b"c" + b"b" * 29


def run_threads(job: PutJob, threads: int, budget: int) -> None:
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            while job.run(budget):
                pass
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]


@given(
    seed=st.integers(0, 2**32),
    size=st.integers(0, 60_000),
    window=st.sampled_from([8192, 9000, 20_000, 1 << 20]),
    threads=st.integers(1, 4),
    budget=st.integers(1, 7),
    cuts=st.lists(st.integers(0, 60_000), max_size=20),
)
def test_chunks_tile_the_content_at_the_chunkers_boundaries(
    seed: int, size: int, window: int, threads: int, budget: int, cuts: list[int]
) -> None:
    data = content(seed, size)
    seen: list[bytes] = []
    lock = threading.Lock()

    def store(chunk: Buffer) -> tuple[ChunkId, StripeAddr]:
        piece = bytes(chunk)
        with lock:
            seen.append(piece)
        return ChunkId(blake3.blake3(piece).digest()), StripeAddr(0, 0, 0, 0, len(piece))

    job = PutJob(Pieces(split(data, cuts)), CHUNKER.cut, store, window)
    run_threads(job, threads, budget)
    starts = sorted(job.stored)
    assert [job.stored[s][0] for s in starts] == CHUNKER.cut(data, True)
    assert b"".join(data[s : s + job.stored[s][0]] for s in starts) == data
    assert len(seen) == len(starts), "every chunk stored once"


def test_a_failing_store_stops_every_worker() -> None:
    data = content(1, 200_000)
    calls = 0

    def store(chunk: Buffer) -> tuple[ChunkId, StripeAddr]:
        nonlocal calls
        calls += 1
        if calls == 5:
            raise OSError("device full")
        return ChunkId(bytes(32)), StripeAddr(0, 0, 0, 0, 0)

    job = PutJob(Pieces(split(data, [70_000, 130_000])), CHUNKER.cut, store, 10_000)
    with pytest.raises(OSError, match="device full"):
        run_threads(job, 3, 4)
    assert calls < len(CHUNKER.cut(data, True)), "the others stopped taking chunks"


async def test_put_through_a_real_pool_reads_back(tmp_path: Path) -> None:
    paths = [tmp_path / f"d{i}" for i in range(3)]
    credential = Credential(PASSPHRASE, bytearray(b"pass"))
    create_pool(paths, credential, PoolOptions(layout="raidz1", kdf=FAST_KDF, chunker=SMALL))
    data = content(7, 500_000) * 3
    async with open_pool(paths[0], credential) as pool:
        refs = await pool.store.put(data)
        assert [r.length for r in refs] == pool.store.chunker.cut(data, True)
        assert await pool.store.read(refs) == data
        assert pool.store.stats.chunks_deduplicated > 0
        pieces = split(data, [1, 70_000, 70_000, 1_000_000])
        assert await pool.store.put_pieces(pieces) == refs
