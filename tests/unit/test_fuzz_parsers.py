"""Every parser of device bytes on structured mutations of valid encodings: bit
flips, cuts, splices, repeated and inserted runs. Only our integrity and format
errors may come out (tests/fuzz/targets.py says why); `make fuzz` runs the same
targets under a coverage-guided fuzzer."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.targets import SEEDS, TARGETS


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "repeat", "set", "splice"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=32))
        elif kind == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 32))] * draw(st.integers(1, 8))
        elif kind == "set" and data:
            data[at] = draw(st.sampled_from([0, 0x7F, 0x80, 0xFF, ord("["), ord("9"), ord('"')]))
        elif kind == "splice":
            other = SEEDS[draw(st.sampled_from(sorted(SEEDS)))]
            data[at:] = other[: draw(st.integers(0, len(other)))]
    return bytes(data)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_valid_seeds_parse(name: str) -> None:
    TARGETS[name](SEEDS[name])


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_mutations_raise_only_our_errors(name: str) -> None:
    @given(mutated(SEEDS[name]))
    def check(data: bytes) -> None:
        TARGETS[name](data)

    check()


@pytest.mark.parametrize("name", sorted(TARGETS))
@given(data=st.binary(max_size=2048))
def test_arbitrary_bytes_raise_only_our_errors(name: str, data: bytes) -> None:
    TARGETS[name](data)


def test_known_crashers_of_the_superblock_parser() -> None:
    """Deep JSON nesting and a 1e400 generation once crashed it."""
    from dwfs.devices import _superblock

    for body in (b"[" * 100_000, b'{"generation": 1e400}', b'{"generation": NaN}'):
        raw = _superblock._HEAD.pack(_superblock.MAGIC, _superblock.FORMAT, 0, len(body)) + body
        assert _superblock.decode(raw + bytes(32)) is None


def test_known_crashers_of_the_checkpoint_loader() -> None:
    """Schema text that is not UTF-8 once escaped as UnicodeDecodeError (make fuzz found it)."""
    from dwfs.errors import IntegrityError
    from dwfs.meta import MetaDB

    image = bytearray(MetaDB().image())
    at = image.index(b"CREATE TABLE inodes")
    image[at + 7] = 0xAB
    with pytest.raises(IntegrityError):
        MetaDB(bytes(image))
