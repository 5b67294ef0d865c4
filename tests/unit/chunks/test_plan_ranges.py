"""plan_ranges: fetches of chunks grouped into ranged GETs of one pack each."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dwfs.chunks._tier import plan_ranges
from dwfs.types import ChunkId, RemoteAddr

packs = st.sampled_from([bytes([i]) * 16 for i in range(3)])
items = st.lists(
    st.tuples(
        st.binary(min_size=32, max_size=32).map(ChunkId),
        st.builds(RemoteAddr, packs, st.integers(0, 1 << 26), st.integers(1, 1 << 21)),
    ),
    max_size=60,
    unique_by=lambda item: item[0],
)


@given(items, st.integers(1, 1 << 24), st.integers(0, 1 << 20))
def test_every_chunk_is_fetched_once_in_a_bounded_range_of_one_pack(
    chunks: list[tuple[ChunkId, RemoteAddr]], most: int, gap: int
) -> None:
    groups = plan_ranges(chunks, most, gap)
    flat = [item for group in groups for item in group]
    assert sorted(flat, key=repr) == sorted(chunks, key=repr)
    for group in groups:
        assert len({where.pack for _, where in group}) == 1
        offsets = [where.offset for _, where in group]
        assert offsets == sorted(offsets)
        start = group[0][1].offset
        end = max(w.offset + w.length for _, w in group)
        assert len(group) == 1 or end - start <= most
        for i in range(1, len(group)):
            reach = max(w.offset + w.length for _, w in group[:i])
            assert group[i][1].offset - reach <= gap


def test_a_files_chunks_written_together_come_in_one_get() -> None:
    pack = b"p" * 16
    chunks = [(ChunkId(bytes([i]) * 32), RemoteAddr(pack, i * 1000, 1000)) for i in range(40)]
    assert len(plan_ranges(chunks, most=1 << 20, gap=0)) == 1
    assert len(plan_ranges(chunks, most=10_000, gap=0)) == 4
