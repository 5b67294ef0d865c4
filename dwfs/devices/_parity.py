"""Splitting a sealed chunk into shards and rebuilding it from any decodable subset."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping

from dwfs import _accel
from dwfs._accel import gf
from dwfs.devices._layout import Layout, generator
from dwfs.errors import Unrecoverable
from dwfs.types import Buffer


def shard_length(layout: Layout, sealed_len: int) -> int:
    return max(1, -(-sealed_len // layout.k))


def encode(layout: Layout, sealed: Buffer) -> list[Buffer]:
    """All width shards of one stripe: k data shards (zero-padded) then redundancy.

    Data shards are views into one padded copy of sealed; nothing else is copied.
    """
    size = shard_length(layout, len(sealed))
    pad = size * layout.k - len(sealed)
    if pad:
        padded = memoryview(bytearray(size * layout.k))
        padded[: len(sealed)] = sealed  # via a view: bytearray slice assignment copies twice
    else:
        padded = memoryview(sealed)
    data: list[Buffer] = [padded[i * size : (i + 1) * size] for i in range(layout.k)]
    extra = generator(layout)[layout.k :]
    if not extra:
        return data
    return data + _accel.gf_matmul(gf.flatten(extra), len(extra), layout.k, data)


def _decoding_rows(layout: Layout, have: list[int]) -> list[int]:
    """k available shard indices whose generator rows are independent.

    Any k shards of a Reed-Solomon stripe will do; a mirrored layout needs one copy
    of each data shard (shard i and shard i + k hold the same bytes).
    """
    chosen: list[int] = []
    covered: set[int] = set()
    for index in have:
        if layout.mirrored:
            if index % layout.k in covered:
                continue
            covered.add(index % layout.k)
        chosen.append(index)
        if len(chosen) == layout.k:
            return chosen
    raise Unrecoverable(
        f"stripe cannot be rebuilt: {len(have)} usable shards of {layout.width}, "
        f"{layout.k} independent ones needed"
    )


def decodable(layout: Layout, have: Iterable[int]) -> bool:
    """Whether these shard indices determine the data."""
    try:
        _decoding_rows(layout, sorted(have))
    except Unrecoverable:
        return False
    return True


def reconstruct(layout: Layout, shards: Mapping[int, bytes], wanted: list[int]) -> dict[int, bytes]:
    """The shards listed in `wanted`, rebuilt from the good `shards` given.

    Raises:
        Unrecoverable: the good shards do not determine the data.
    """
    missing = [i for i in wanted if i not in shards]
    result = {i: shards[i] for i in wanted if i in shards}
    if not missing:
        return result
    chosen = _decoding_rows(layout, sorted(shards))
    matrix = _recovery_matrix(layout, tuple(chosen), tuple(missing))
    rebuilt = _accel.gf_matmul(matrix, len(missing), layout.k, [shards[i] for i in chosen])
    result.update(zip(missing, rebuilt, strict=True))
    return result


@functools.lru_cache(maxsize=1024)
def _recovery_matrix(layout: Layout, chosen: tuple[int, ...], missing: tuple[int, ...]) -> bytes:
    """Rows taking the chosen shards straight to each missing one: G[missing] inv(G[chosen])."""
    rows = generator(layout)
    inverse = gf.invert([rows[i] for i in chosen])
    return gf.flatten(
        [
            [_dot(rows[i], [inverse[r][c] for r in range(layout.k)]) for c in range(layout.k)]
            for i in missing
        ]
    )


def _dot(a: list[int], b: list[int]) -> int:
    acc = 0
    for x, y in zip(a, b, strict=True):
        acc ^= gf.mul(x, y)
    return acc


def decode(layout: Layout, shards: Mapping[int, bytes], sealed_len: int) -> bytes:
    """The sealed chunk from any decodable set of good shards."""
    data = reconstruct(layout, shards, list(range(layout.k)))
    return b"".join(data[i] for i in range(layout.k))[:sealed_len]
