"""An operation whose SQL is rewritten must change the rows exactly as before:
journals written by an older dwfs replay through the new text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dwfs.meta import MetaDB
from dwfs.meta._ops import OPS

DROP_DEAD_IN_BEFORE = (
    "DELETE FROM remote WHERE pack = ? AND id NOT IN (SELECT id FROM chunks WHERE refs > 0)"
)
"""remote.drop_dead_in until 2026-12-05, which listed every live chunk per pack."""

ids = st.binary(min_size=1, max_size=1)
packs = st.sampled_from([b"p1", b"p2", b"p3"])


def _remote_after(
    sql: str, chunks: dict[bytes, int], remote: dict[bytes, bytes], pack: bytes
) -> set[tuple[bytes, bytes]]:
    db = MetaDB()
    db.conn.executemany("INSERT INTO chunks VALUES (?, 1, 1, 0, 1, 1, ?)", list(chunks.items()))
    db.conn.executemany("INSERT INTO remote VALUES (?, ?, 0, 1)", list(remote.items()))
    db.conn.execute(sql, (pack,))
    return {(bytes(i), bytes(p)) for i, p in db.conn.execute("SELECT id, pack FROM remote")}


@given(
    st.dictionaries(ids, st.integers(-1, 2)),
    st.dictionaries(ids, packs),
    packs,
)
def test_drop_dead_in_drops_what_it_dropped_before(
    chunks: dict[bytes, int], remote: dict[bytes, bytes], pack: bytes
) -> None:
    assert _remote_after(OPS["remote.drop_dead_in"], chunks, remote, pack) == _remote_after(
        DROP_DEAD_IN_BEFORE, chunks, remote, pack
    )
