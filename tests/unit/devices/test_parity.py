"""For every layout and every set of up to m lost shards the data comes back
bit-exact; with more than m lost (where the code cannot cover it) the error is
Unrecoverable."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dwfs.devices import Layout, parse_layout
from dwfs.devices._parity import decode, encode, reconstruct
from dwfs.errors import Unrecoverable

LAYOUTS = [
    ("raid0", 3),
    ("raid1", 2),
    ("raid1", 4),
    ("raid10", 4),
    ("raid10", 6),
    ("raid5", 3),
    ("raidz1", 4),
    ("raid6", 4),
    ("raidz2", 6),
    ("raidz3", 5),
    ("raidz3", 7),
    ("4+2", 6),
    ("8+3", 11),
    ("2+2", 7),
    ("3+1", 6),
]


def layouts() -> list[Layout]:
    return [parse_layout(spec, n) for spec, n in LAYOUTS]


@pytest.mark.parametrize("layout", layouts(), ids=lambda lay: f"{lay.name}-{lay.n}")
@given(sealed=st.binary(min_size=0, max_size=2000))
def test_every_loss_of_up_to_m_shards_decodes(layout: Layout, sealed: bytes) -> None:
    shards = encode(layout, sealed)
    assert len(shards) == layout.width
    assert len({len(s) for s in shards}) == 1
    for lost in range(layout.m + 1):
        for gone in itertools.combinations(range(layout.width), lost):
            have = {i: bytes(s) for i, s in enumerate(shards) if i not in gone}
            assert decode(layout, have, len(sealed)) == sealed
            assert reconstruct(layout, have, list(gone)) == {i: shards[i] for i in gone}


@pytest.mark.parametrize("layout", layouts(), ids=lambda lay: f"{lay.name}-{lay.n}")
def test_losing_more_than_the_code_covers_is_a_clear_error(layout: Layout) -> None:
    sealed = bytes(range(256)) * 7
    shards = encode(layout, sealed)
    for gone in itertools.combinations(range(layout.width), layout.m + 1):
        have = {i: bytes(s) for i, s in enumerate(shards) if i not in gone}
        decodable = _decodable(layout, set(have))
        if decodable:
            assert decode(layout, have, len(sealed)) == sealed
        else:
            with pytest.raises(Unrecoverable, match="cannot be rebuilt"):
                decode(layout, have, len(sealed))


def _decodable(layout: Layout, have: set[int]) -> bool:
    if layout.mirrored:
        return all(i in have or i + layout.k in have for i in range(layout.k))
    return len(have) >= layout.k


def test_raid10_survives_one_loss_per_pair() -> None:
    layout = parse_layout("raid10", 6)
    sealed = b"mirrored pairs, striped" * 40
    shards = encode(layout, sealed)
    have = {i: bytes(s) for i, s in enumerate(shards) if i not in (0, 4, 2)}
    assert decode(layout, have, len(sealed)) == sealed
