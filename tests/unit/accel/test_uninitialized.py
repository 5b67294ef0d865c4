"""The unzeroed buffer a read or a decryption fills: a real, writable
bytearray of the size asked for, on both implementations."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dwfs import _accel
from dwfs._accel import _pure


@pytest.mark.parametrize("make", [_accel.uninitialized, _pure.uninitialized])
@given(size=st.integers(0, 3 << 20))
def test_a_writable_bytearray_of_the_size(make: Callable[[int], bytearray], size: int) -> None:
    buf = make(size)
    assert type(buf) is bytearray
    assert len(buf) == size
    memoryview(buf)[:] = b"\xa5" * size
    assert buf.count(0xA5) == size


@pytest.mark.parametrize("make", [_accel.uninitialized, _pure.uninitialized])
def test_a_negative_size_is_refused(make: Callable[[int], bytearray]) -> None:
    with pytest.raises((ValueError, OverflowError)):
        make(-1)
