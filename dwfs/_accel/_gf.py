"""GF(2^8) scalar arithmetic and small-matrix algebra (polynomial 0x11d).

Matrices here are at most 64x64 (shards per stripe), so plain Python is fast
enough; only the matrix-times-buffers product needs native code.
"""

from __future__ import annotations

from collections.abc import Sequence

POLYNOMIAL = 0x11D


def _tables() -> tuple[bytes, bytes]:
    exp = bytearray(512)
    log = bytearray(256)
    x = 1
    for i in range(255):
        exp[i] = x
        log[x] = i
        x <<= 1
        if x & 0x100:
            x ^= POLYNOMIAL
    for i in range(255, 512):
        exp[i] = exp[i - 255]
    return bytes(exp), bytes(log)


EXP, LOG = _tables()

Matrix = list[list[int]]


def mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return EXP[LOG[a] + LOG[b]]


def inv(a: int) -> int:
    if a == 0:
        raise ZeroDivisionError("0 has no inverse in GF(2^8)")
    return EXP[255 - LOG[a]]


def invert(matrix: Sequence[Sequence[int]]) -> Matrix:
    """The inverse of a square matrix; ValueError if it is singular."""
    n = len(matrix)
    work = [[*row, *(1 if i == j else 0 for j in range(n))] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = next((r for r in range(col, n) if work[r][col]), None)
        if pivot is None:
            raise ValueError("singular matrix")
        work[col], work[pivot] = work[pivot], work[col]
        scale = inv(work[col][col])
        work[col] = [mul(v, scale) for v in work[col]]
        for r in range(n):
            factor = work[r][col]
            if r != col and factor:
                work[r] = [v ^ mul(factor, p) for v, p in zip(work[r], work[col], strict=True)]
    return [row[n:] for row in work]


def cauchy(rows: int, cols: int) -> Matrix:
    """A rows x cols Cauchy matrix: every square submatrix is invertible."""
    if rows + cols > 256:
        raise ValueError("at most 256 shards per stripe")
    return [[inv((cols + r) ^ c) for c in range(cols)] for r in range(rows)]


def flatten(matrix: Sequence[Sequence[int]]) -> bytes:
    return bytes(v for row in matrix for v in row)
