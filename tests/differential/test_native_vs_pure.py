"""The native kernels and their pure-Python twins agree byte for byte, on every
vector path the CPU offers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dwfs import _accel
from dwfs._accel import _pure

pytestmark = pytest.mark.skipif(
    _accel.implementation() == "pure Python", reason="the native extension is not built"
)


@pytest.fixture(params=[0, 1, 2], ids=["portable", "ssse3", "avx2"])
def level(request: pytest.FixtureRequest) -> Iterator[int]:
    best = _accel.force_simd_level(2)
    _accel.force_simd_level(request.param)
    yield request.param
    _accel.force_simd_level(2)
    assert _accel.implementation() == best


@given(data=st.data())
def test_matmul_matches_pure(level: int, data: st.DataObject) -> None:
    rows = data.draw(st.integers(1, 5))
    cols = data.draw(st.integers(1, 8))
    length = data.draw(st.integers(0, 300))
    matrix = data.draw(st.binary(min_size=rows * cols, max_size=rows * cols))
    inputs = [data.draw(st.binary(min_size=length, max_size=length)) for _ in range(cols)]
    assert _accel.gf_matmul(matrix, rows, cols, inputs) == _pure.gf_matmul(
        matrix, rows, cols, inputs
    )


def test_matmul_matches_pure_on_long_buffers(level: int) -> None:
    import random

    rng = random.Random(level)
    inputs = [rng.randbytes(100_003) for _ in range(6)]
    matrix = rng.randbytes(3 * 6)
    assert _accel.gf_matmul(matrix, 3, 6, inputs) == _pure.gf_matmul(matrix, 3, 6, inputs)


@given(
    data=st.binary(min_size=0, max_size=6000),
    final=st.booleans(),
    gear=st.binary(min_size=2048, max_size=2048),
)
def test_cdc_matches_pure(data: bytes, final: bool, gear: bytes) -> None:
    args = (data, 64, 256, 1024, 0xFF << 56, 0x3F << 58, gear, final)
    assert _accel.cdc_cuts(*args) == _pure.cdc_cuts(*args)


def test_shape_errors_are_value_errors() -> None:
    with pytest.raises(ValueError):
        _accel.gf_matmul(b"\x01\x02", 1, 2, [b"ab"])
    with pytest.raises(ValueError):
        _accel.gf_matmul(b"\x01\x02", 1, 2, [b"ab", b"abc"])
