"""The remote superblock: what is encoded decodes, and any change to it is caught
by its MAC or refused as malformed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dwfs.errors import FormatError, RemoteError
from dwfs.tiers import RemoteSuperblock, decode_superblock, encode_superblock

KEY = bytes(range(32))
config_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
superblocks = st.builds(
    RemoteSuperblock,
    pool=st.text(max_size=40),
    generation=st.integers(1, 2**62),
    config=st.dictionaries(st.text(max_size=10), config_values, max_size=6),
)


@given(superblocks)
def test_what_is_encoded_decodes_and_verifies(sb: RemoteSuperblock) -> None:
    read = decode_superblock(encode_superblock(sb, KEY), "dir:///r")
    assert read.superblock == sb
    assert read.verify(KEY)
    assert not read.verify(bytes(32))


@given(superblocks, st.data())
def test_any_flipped_bit_is_caught(sb: RemoteSuperblock, data: st.DataObject) -> None:
    raw = bytearray(encode_superblock(sb, KEY))
    bit = data.draw(st.integers(0, len(raw) * 8 - 1))
    raw[bit // 8] ^= 1 << (bit % 8)
    try:
        read = decode_superblock(bytes(raw), "dir:///r")
    except (RemoteError, FormatError):
        return
    assert not read.verify(KEY)


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_are_refused_or_fail_the_mac(raw: bytes) -> None:
    try:
        read = decode_superblock(raw, "dir:///r")
    except (RemoteError, FormatError):
        return
    assert not read.verify(KEY)


def test_truncation_is_refused() -> None:
    raw = encode_superblock(RemoteSuperblock("p", 3, {"a": 1}), KEY)
    for cut in (0, 10, len(raw) - 1):
        with pytest.raises(RemoteError, match="holds no dwfs pool"):
            decode_superblock(raw[:cut], "dir:///r")
