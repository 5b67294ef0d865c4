"""Property tests of the vfs layer's pure parts: the dirty map, extent arithmetic, ACLs."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from dwfs.types import Buffer, ChunkId
from dwfs.vfs import _acl
from dwfs.vfs._dirty import DirtyMap
from dwfs.vfs._extents import Extent, ExtentWindow, clip, cut_out, data_ranges, seek, span

writes = st.lists(st.tuples(st.integers(0, 3000), st.binary(min_size=1, max_size=300)), max_size=40)
KINDS: dict[str, Callable[[bytes], Buffer]] = {
    "bytes": bytes,
    "bytearray": bytearray,
    "view": lambda data: memoryview(bytearray(data)),
    "read-only view": lambda data: memoryview(data).toreadonly(),
}
kinds = st.lists(st.sampled_from(sorted(KINDS)), min_size=40, max_size=40)


@given(writes, kinds, st.integers(0, 3500), st.sampled_from([1, 50, 1 << 20]))
def test_dirty_map_matches_a_byte_array(
    ops: list[tuple[int, bytes]], types: list[str], cut: int, keep_min: int
) -> None:
    """Whatever the writes' types and the size from which they are kept by
    reference (1: all that cannot change; 1 MiB: none), the map holds the
    latest bytes, and a buffer that can change, changed after its write, does
    not change them."""
    dirty, model, mask = DirtyMap(keep_min), bytearray(3300), bytearray(3300)
    for (offset, data), kind in zip(ops, types, strict=False):
        written = KINDS[kind](data)
        dirty.write(offset, written)
        if isinstance(written, bytearray) or (
            isinstance(written, memoryview) and not written.readonly
        ):
            written[:] = bytes(len(written))
        model[offset : offset + len(data)] = data
        mask[offset : offset + len(data)] = b"\1" * len(data)
    assert dirty.nbytes == sum(mask)
    spans = dirty.spans()
    assert spans == sorted(spans) and all(a[1] < b[0] for a, b in itertools.pairwise(spans))
    base = bytearray(b"\xee" * 3300)
    dirty.overlay(0, base)
    assert all(base[i] == (model[i] if mask[i] else 0xEE) for i in range(3300))
    for start, end in spans:
        assert b"".join(dirty.exactly(start, end) or [b"?"]) == model[start:end]
        assert dirty.exactly(start, end + 1) is None
        assert end - start < 2 or dirty.exactly(start + 1, end) is None
    dirty.truncate(cut)
    assert dirty.nbytes == sum(mask[:cut])
    assert all(end <= cut for _, end in dirty.spans())


def test_long_writes_that_cannot_change_are_kept_not_copied() -> None:
    dirty = DirtyMap(keep_min=100)
    kept = [bytes([i]) * 100 for i in range(3)]
    view = memoryview(bytes(range(200))).toreadonly()
    for i, piece in enumerate(kept):
        dirty.write(100 * i, piece)
    dirty.write(300, b"short")
    dirty.write(305, view)
    pieces = dirty.exactly(0, 505)
    assert pieces is not None and [p is k for p, k in zip(pieces, kept, strict=False)] == [True] * 3
    assert pieces[4] is view and pieces[3] == bytearray(b"short")
    dirty.write(150, b"\xff" * 10)  # inside a kept piece: it is copied, not changed
    assert kept[1] == b"\1" * 100
    assert dirty.intervals() == [
        (0, kept[0] + b"\1" * 50 + b"\xff" * 10 + b"\1" * 40 + kept[2] + b"short" + bytes(view))
    ]


@given(writes)
def test_merged_under_puts_newer_bytes_on_top(ops: list[tuple[int, bytes]]) -> None:
    half = len(ops) // 2
    older, newer, model = DirtyMap(), DirtyMap(), DirtyMap()
    for offset, data in ops[:half]:
        older.write(offset, data)
        model.write(offset, data)
    for offset, data in ops[half:]:
        newer.write(offset, data)
        model.write(offset, data)
    assert newer.merged_under(older).intervals() == model.intervals()


extents = st.lists(st.integers(1, 500), max_size=8).map(
    lambda lengths: [
        Extent(sum(lengths[:i]), n, ChunkId(bytes([i]) * 32), 7) for i, n in enumerate(lengths)
    ]
)


@given(extents, st.integers(0, 2000), st.integers(0, 2000))
def test_cut_out_keeps_exactly_what_lies_outside(exts: list[Extent], a: int, b: int) -> None:
    start, end = min(a, b), max(a, b)
    removed, kept = cut_out(exts, start, end)
    covered = {i for e in exts for i in range(e.off, e.end)}
    untouched = [e for e in exts if e not in removed]
    kept_bytes = {i for e in kept + untouched for i in range(e.off, e.end)}
    assert kept_bytes == {i for i in covered if not start <= i < end}
    for piece in kept:
        whole = next(e for e in removed if e.off <= piece.off and piece.end <= e.end)
        assert piece.chunk == whole.chunk
        assert piece.chunk_off == whole.chunk_off + (piece.off - whole.off)
    lo, hi = span(exts, start, end)
    assert lo <= start and hi >= end
    assert all(e.end <= lo or e.off >= hi or (lo <= e.off and e.end <= hi) for e in exts)
    assert all(clip(e, start, end) is None or clip(e, start, end).len > 0 for e in exts)  # type: ignore[union-attr]


@given(extents, st.integers(0, 2000), st.integers(0, 2000), st.integers(0, 2000))
def test_an_extent_window_answers_like_a_scan(exts: list[Extent], a: int, b: int, c: int) -> None:
    holes = [e for i, e in enumerate(exts) if i % 3 != 1]  # files have holes too
    lo, mid, hi = sorted((a, b, c))
    window = ExtentWindow.of([e for e in holes if e.end > lo and e.off < hi], lo, hi)
    assert window.covers(lo, hi) and window.covers(mid, hi)
    assert not window.covers(lo - 1, hi) and not window.covers(lo, hi + 1)
    assert window.overlapping(mid, hi) == [e for e in holes if e.end > mid and e.off < hi]
    assert window.starting_in(mid, hi) == [e for e in holes if mid <= e.off < hi]


def test_acl_inheritance_and_mode_bits() -> None:
    default = _acl.encode(
        [
            (_acl.USER_OBJ, 7, 0xFFFFFFFF),
            (_acl.USER, 5, 1000),
            (_acl.GROUP_OBJ, 5, 0xFFFFFFFF),
            (_acl.MASK, 7, 0xFFFFFFFF),
            (_acl.OTHER, 0, 0xFFFFFFFF),
        ]
    )
    mode, access, inherited = _acl.inherit(default, 0o100644, is_dir=False)
    assert mode & 0o777 == 0o640 and access is not None and inherited is None
    assert _acl.mode_bits(access) == (0o640, False)
    assert _acl.inherit(default, 0o40777, is_dir=True)[2] == default
    plain = _acl.encode([(_acl.USER_OBJ, 6, 0), (_acl.GROUP_OBJ, 4, 0), (_acl.OTHER, 4, 0)])
    assert _acl.mode_bits(plain) == (0o644, True)
    assert _acl.mode_bits(_acl.chmod(plain, 0o751)) == (0o751, True)


sparse_extents = extents.flatmap(
    lambda es: st.lists(st.sampled_from(es), unique=True) if es else st.just([])
)
"""Some of a file's extents, so holes lie between them too."""


@given(sparse_extents, st.integers(0, 2100), st.integers(-5, 2200))
def test_seek_data_and_hole_match_a_byte_map(exts: list[Extent], size: int, off: int) -> None:
    stored = bytearray(size)
    for e in exts:
        stored[e.off : min(e.end, size)] = b"\1" * max(0, min(e.end, size) - e.off)
    ranges = data_ranges(exts, size)
    assert all(a[1] < b[0] for a, b in itertools.pairwise(ranges))
    in_data = [lo <= i < hi for i in range(size) for lo, hi in ranges if lo <= i < hi]
    assert len(in_data) == sum(stored)
    if not 0 <= off < size:
        assert seek(ranges, size, off, hole=False) is None
        assert seek(ranges, size, off, hole=True) is None
        return
    data_at = next((i for i in range(off, size) if stored[i]), None)
    hole_at = next((i for i in range(off, size) if not stored[i]), size)
    assert seek(ranges, size, off, hole=False) == data_at
    assert seek(ranges, size, off, hole=True) == hole_at
