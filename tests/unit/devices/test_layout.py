from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dwfs.devices import default_layout_name, parse_layout
from dwfs.devices._layout import device_of, shards_on
from dwfs.errors import UsageError


@pytest.mark.parametrize(
    ("spec", "n", "k", "m", "width"),
    [
        ("raid0", 3, 3, 0, 3),
        ("raid1", 3, 1, 2, 3),
        ("raid10", 4, 2, 1, 4),
        ("raid10", 6, 3, 1, 6),
        ("raid5", 3, 2, 1, 3),
        ("raidz1", 5, 4, 1, 5),
        ("raid6", 4, 2, 2, 4),
        ("raidz2", 6, 4, 2, 6),
        ("raidz3", 5, 2, 3, 5),
        ("4+2", 6, 4, 2, 6),
        ("4+2", 9, 4, 2, 6),
        ("8+3", 11, 8, 3, 11),
        ("RAIDZ1", 3, 2, 1, 3),
    ],
)
def test_shapes(spec: str, n: int, k: int, m: int, width: int) -> None:
    layout = parse_layout(spec, n)
    assert (layout.k, layout.m, layout.width, layout.n) == (k, m, width, n)
    assert layout.declustered == (width < n)


@pytest.mark.parametrize(
    ("spec", "n", "message"),
    [
        ("raid6", 3, "at least 4 devices"),
        ("raid10", 5, "even number"),
        ("raid1", 1, "at least 2"),
        ("4+2", 5, "at least 6"),
        ("0+2", 5, "k must be"),
        ("raid7", 4, "unknown layout"),
        ("raid0", 0, "at least one device"),
    ],
)
def test_layouts_that_do_not_fit_are_refused(spec: str, n: int, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_layout(spec, n)


def test_defaults() -> None:
    assert [default_layout_name(n) for n in (1, 2, 3, 8)] == ["raid0", "raid1", "raidz1", "raidz1"]


@given(
    st.sampled_from(["raidz1", "raid6", "raid10", "2+1", "3+2", "raid1"]), st.integers(0, 10_000)
)
def test_each_shard_of_a_stripe_on_its_own_device(spec: str, seq: int) -> None:
    for n in range(4, 10):
        try:
            layout = parse_layout(spec, n)
        except UsageError:
            continue
        devices = [device_of(layout, seq, i) for i in range(layout.width)]
        assert len(set(devices)) == layout.width
        assert all(0 <= d < n for d in devices)
        assert sorted(shards_on(layout, seq).values()) == list(range(layout.width))


def test_parity_rotates_and_declustered_stripes_cover_every_device() -> None:
    layout = parse_layout("raidz1", 3)
    assert {device_of(layout, seq, 2) for seq in range(3)} == {0, 1, 2}
    declustered = parse_layout("2+1", 7)
    used = {d for seq in range(7) for d in shards_on(declustered, seq)}
    assert used == set(range(7))
