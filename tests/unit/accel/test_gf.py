from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dwfs._accel import gf

nonzero = st.integers(1, 255)
byte = st.integers(0, 255)


@given(byte, byte, byte)
def test_field_laws(a: int, b: int, c: int) -> None:
    assert gf.mul(a, b) == gf.mul(b, a)
    assert gf.mul(a, gf.mul(b, c)) == gf.mul(gf.mul(a, b), c)
    assert gf.mul(a, b ^ c) == gf.mul(a, b) ^ gf.mul(a, c)


@given(nonzero)
def test_inverse(a: int) -> None:
    assert gf.mul(a, gf.inv(a)) == 1


def test_zero_has_no_inverse() -> None:
    with pytest.raises(ZeroDivisionError):
        gf.inv(0)


@pytest.mark.parametrize(("rows", "cols"), [(2, 4), (3, 8), (4, 4)])
def test_every_square_submatrix_of_cauchy_is_invertible(rows: int, cols: int) -> None:
    matrix = gf.cauchy(rows, cols)
    for size in range(1, rows + 1):
        for rs in itertools.combinations(range(rows), size):
            for cs in itertools.combinations(range(cols), size):
                sub = [[matrix[r][c] for c in cs] for r in rs]
                inverse = gf.invert(sub)
                product = [
                    [_dot(sub[i], [inverse[r][j] for r in range(size)]) for j in range(size)]
                    for i in range(size)
                ]
                assert product == [[int(i == j) for j in range(size)] for i in range(size)]


def _dot(a: list[int], b: list[int]) -> int:
    acc = 0
    for x, y in zip(a, b, strict=True):
        acc ^= gf.mul(x, y)
    return acc


def test_singular_matrix_is_refused() -> None:
    with pytest.raises(ValueError, match="singular"):
        gf.invert([[1, 2], [1, 2]])
