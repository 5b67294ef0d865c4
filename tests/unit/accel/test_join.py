"""The native join against its pure-Python twin, on both sides of the size
above which it copies without the GIL."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dwfs import _accel
from dwfs._accel import _pure

parts = st.lists(st.binary(max_size=40_000), max_size=6)


@given(parts, st.data())
def test_native_join_equals_bytes_join(pieces: list[bytes], data: st.DataObject) -> None:
    views = [data.draw(st.sampled_from([bytes, bytearray, memoryview]))(p) for p in pieces]
    joined = _accel.join(views)
    assert type(joined) is bytes
    assert joined == _pure.join(views) == b"".join(pieces)


def test_long_joins_and_slices() -> None:
    big = bytes(range(256)) * 4096  # 1 MiB, past the GIL-free threshold
    views = [memoryview(big)[i : i + 300_000] for i in (0, 17, 500_000)]
    assert _accel.join(views) == b"".join(views)
    assert _accel.join([]) == b""
