"""The metadata journal's record format and replay, on bytes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dwfs.meta import MetaDB, _journal

KEY = bytes(range(32))
params = st.one_of(
    st.none(), st.integers(-(2**62), 2**62), st.text(max_size=20), st.binary(max_size=40)
)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["INSERT a", "UPDATE b"]), st.lists(params, max_size=4).map(tuple)
        ),
        max_size=10,
    )
)
def test_records_round_trip(statements: list[tuple[str, tuple[object, ...]]]) -> None:
    blob = _journal.encode(KEY, "pool", 3, 7, statements)  # type: ignore[arg-type]
    assert _journal.decode_chain(KEY, "pool", 3, blob) == [(7, statements)]
    assert _journal.decode_chain(KEY, "pool", 4, blob) == [], "bound to its epoch"
    assert _journal.decode_chain(bytes(32), "pool", 3, blob) == []


def test_a_torn_or_tampered_tail_ends_the_chain() -> None:
    one = _journal.encode(KEY, "p", 1, 1, [("x", (1,))])
    two = _journal.encode(KEY, "p", 1, 2, [("y", (2,))])
    assert len(_journal.decode_chain(KEY, "p", 1, one + two)) == 2
    assert len(_journal.decode_chain(KEY, "p", 1, one + two[:-3])) == 1
    flipped = bytearray(one + two)
    flipped[len(one) + 30] ^= 1
    assert len(_journal.decode_chain(KEY, "p", 1, bytes(flipped))) == 1
    assert len(_journal.best_chain(KEY, "p", 1, [one, one + two, b""])) == 2


def test_replaying_statements_rebuilds_the_database() -> None:
    db = MetaDB()
    with db.transaction():
        db.execute("INSERT INTO counters VALUES (?, ?)", ("x", 41))
        db.execute("UPDATE counters SET value = value + 1 WHERE name = ?", ("x",))
    txg, statements = db.take_pending()
    replica = MetaDB()
    replica.apply(txg, statements)
    assert replica.query("SELECT value FROM counters WHERE name = 'x'") == [(42,)]
    assert replica.txg == txg == 1
    image = db.image()
    assert MetaDB(image, txg=1).query("SELECT value FROM counters WHERE name='x'") == [(42,)]


def test_a_failed_transaction_leaves_no_statements() -> None:
    db = MetaDB()
    try:
        with db.transaction():
            db.execute("INSERT INTO counters VALUES (?, ?)", ("y", 1))
            raise RuntimeError
    except RuntimeError:
        pass
    assert not db.has_pending()
    assert db.query("SELECT * FROM counters WHERE name = 'y'") == []
