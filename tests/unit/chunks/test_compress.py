from __future__ import annotations

import os

import pytest
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
