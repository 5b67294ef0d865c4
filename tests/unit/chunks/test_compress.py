from __future__ import annotations

import os
import random

import lz4.frame
import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from dwfs.chunks import _compress as c
from dwfs.errors import IntegrityError


@pytest.mark.parametrize("algorithm", [c.NONE, c.ZSTD, c.LZ4])
@given(data=st.binary(max_size=20_000))
def test_round_trip(algorithm: int, data: bytes) -> None:
    used, payload = c.compress(algorithm, data)
    assert c.decompress(used, bytes(payload)) == data


@pytest.mark.parametrize("algorithm", [c.ZSTD, c.LZ4])
def test_skipped_when_it_does_not_pay(algorithm: int) -> None:
    assert c.compress(algorithm, os.urandom(100_000))[0] == c.NONE
    used, payload = c.compress(algorithm, b"text " * 20_000)
    assert used == algorithm and len(payload) < 10_000


def test_corrupt_payload_is_an_integrity_error() -> None:
    with pytest.raises(IntegrityError):
        c.decompress(c.ZSTD, b"not zstd at all")


@pytest.mark.parametrize("algorithm", [c.ZSTD, c.LZ4])
def test_a_random_chunk_is_judged_by_its_sample(algorithm: int) -> None:
    noise = os.urandom(256 * 1024)
    probe = c.sample(noise)
    assert probe is not None and len(probe) == c.SAMPLE_SLICES * c.SAMPLE_SLICE
    assert c.compress(algorithm, noise) == (c.NONE, noise)
    assert c.sample(noise[: c.SAMPLE_FROM - 1]) is None, "small chunks are tried whole"


@pytest.mark.parametrize("algorithm", [c.ZSTD, c.LZ4])
@given(
    seed=st.integers(0, 2**32),
    pattern=st.binary(min_size=1, max_size=300),
    random_share=st.floats(0, 1),
    extra=st.integers(0, 5000),
)
def test_sampled_chunks_round_trip(
    algorithm: int, seed: int, pattern: bytes, random_share: float, extra: int
) -> None:
    size = c.SAMPLE_FROM + extra
    noisy = int(size * random_share)
    data = random.Random(seed).randbytes(noisy) + (pattern * size)[: size - noisy]
    used, payload = c.compress(algorithm, data)
    assert c.decompress(used, bytes(payload)) == data


def test_compressible_text_with_random_runs_is_still_compressed() -> None:
    text = b"".join(b"log line %d: all is well\n" % i for i in range(20_000))
    mixed = text[:200_000] + os.urandom(4096) + text[200_000:400_000]
    used, payload = c.compress(c.ZSTD, mixed)
    assert used == c.ZSTD and len(payload) < len(mixed) // 3


@pytest.mark.parametrize("algorithm", [c.ZSTD, c.LZ4])
def test_a_decompression_bomb_is_refused_before_it_is_allocated(algorithm: int) -> None:
    bomb = bytes(c.MAX_PLAIN + 1)
    packed = zstandard.compress(bomb) if algorithm == c.ZSTD else lz4.frame.compress(bomb)
    with pytest.raises(IntegrityError, match="more than"):
        c.decompress(algorithm, packed)
    assert c.decompress(algorithm, packed, limit=len(bomb)) == bomb
