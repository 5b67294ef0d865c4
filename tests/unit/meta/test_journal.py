"""The metadata journal's record format, its chain, typed replay and the guards
around the database, on bytes and in-memory databases."""

from __future__ import annotations

import base64
import json
import sqlite3
import struct

import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from dwfs.chunks.crypto import seal_record
from dwfs.errors import IntegrityError
from dwfs.meta import MetaDB, Statement, _journal
from dwfs.meta._db import COUNTER_RANGE
from dwfs.meta._metadata import _apply_next
from dwfs.meta._ops import INODE_SET, KEEPING_CHUNKS, OPS

KEY = bytes(range(32))
EPOCH = bytes(16)
OTHER_EPOCH = bytes([1] * 16)
params = st.one_of(
    st.none(), st.integers(-(2**62), 2**62), st.text(max_size=20), st.binary(max_size=40)
)


@given(
    st.lists(
        st.tuples(st.sampled_from(sorted(OPS)), st.lists(params, max_size=4).map(tuple)),
        max_size=10,
    ),
    st.binary(max_size=16),
)
def test_records_round_trip_and_are_bound_to_their_place(
    statements: list[tuple[str, tuple[object, ...]]], prev: bytes
) -> None:
    blob = _journal.encode(KEY, "pool", EPOCH, 7, prev, statements)  # type: ignore[arg-type]
    (record,) = _journal.decode_chain(KEY, "pool", EPOCH, prev, blob)
    assert (record.txg, record.statements, record.tag) == (7, statements, _journal.tag_of(blob))
    assert _journal.decode_chain(KEY, "pool", OTHER_EPOCH, prev, blob) == [], "its epoch"
    assert _journal.decode_chain(KEY, "pool", EPOCH, prev + b"x", blob) == [], "its link"
    assert _journal.decode_chain(KEY, "other", EPOCH, prev, blob) == [], "its pool"
    assert _journal.decode_chain(bytes(32), "pool", EPOCH, prev, blob) == [], "its key"


@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**62),
            st.lists(
                st.tuples(st.sampled_from(sorted(OPS)), st.lists(params, max_size=4).map(tuple)),
                max_size=5,
            ),
        ),
        max_size=6,
    )
)
def test_segments_of_txgs_round_trip(txgs: list[tuple[int, list[Statement]]]) -> None:
    body = _journal.pack_txgs(txgs)
    assert _journal.unpack_txgs(body) == txgs


def test_a_segment_not_of_txgs_is_refused() -> None:
    for body in ([1, 2], [[1, [["op", 3]]]], [["1", []]], {"a": 1}):
        data = zstandard.compress(json.dumps(body).encode())
        with pytest.raises(IntegrityError):
            _journal.unpack_txgs(data)
    with pytest.raises(IntegrityError, match="does not decode"):
        _journal.unpack_txgs(b"not zstd")


def test_a_body_declaring_more_than_the_bound_is_refused_before_it_is_allocated() -> None:
    """A frame's header declares its size, and the decompressor allocates what it
    declares whatever bound it is given: this one (found by the fuzz test)
    declares 2 EiB, a MemoryError before."""
    lying = b"(\xb5/\xfd\xe3" + bytes(9) + b" \x17\xb9\x00\x00\x92\x92\x05\x91\x92\xa9chunk.ref"
    with pytest.raises(IntegrityError, match="declares more than"):
        _journal.unpack_txgs(lying)


def chain(*txgs: int, prev: bytes = b"", epoch: bytes = EPOCH) -> list[bytes]:
    records = []
    for txg in txgs:
        record = _journal.encode(KEY, "p", epoch, txg, prev, [("chunk.ref", (b"%d" % txg,))])
        records.append(record)
        prev = _journal.tag_of(record)
    return records


def test_a_torn_tampered_reordered_or_spliced_record_ends_the_chain() -> None:
    one, two, three = chain(1, 2, 3)
    decode = _journal.decode_chain
    assert len(decode(KEY, "p", EPOCH, b"", one + two + three)) == 3
    assert len(decode(KEY, "p", EPOCH, b"", one + two[:-3])) == 1
    flipped = bytearray(one + two)
    flipped[len(one) + 30] ^= 1
    assert len(decode(KEY, "p", EPOCH, b"", bytes(flipped))) == 1
    assert len(decode(KEY, "p", EPOCH, b"", one + three)) == 1, "a record cut out of the middle"
    assert len(decode(KEY, "p", EPOCH, b"", two + one)) == 0, "reordered"
    (other,) = chain(2, prev=_journal.tag_of(one), epoch=OTHER_EPOCH)
    assert len(decode(KEY, "p", EPOCH, b"", one + other)) == 1, "spliced from another epoch"
    assert len(_journal.best_chain(KEY, "p", EPOCH, b"", [one, one + two, b""])) == 2


def test_an_oversized_record_header_is_not_read() -> None:
    (one,) = chain(1)
    huge = b"DWJ2" + (2**31).to_bytes(4, "little") + one[8:]
    assert _journal.decode_chain(KEY, "p", EPOCH, b"", huge) == []


def test_replaying_operations_rebuilds_the_database() -> None:
    db = MetaDB()
    with db.transaction():
        db.execute("dirent.insert", (1, b"name", 3, 2, 1))
        db.set_inode(1, {"mode": 0o40700, "ctime": 5})
        cookie = db.next_counter("next_cookie")
    txg, statements = db.take_pending()
    assert [op for op, _ in statements] == ["dirent.insert", "inode.set", "counter.raise"]
    replica = MetaDB()
    replica.conn.execute("INSERT INTO inodes VALUES (1, 0, 0, 0, 1, 0, 0, 0, 0, 0, NULL, 0, NULL)")
    replica.apply(txg, statements)
    assert replica.query("SELECT name FROM dirents") == [(b"name",)]
    assert replica.query("SELECT value FROM counters WHERE name = 'next_cookie'") == [
        (cookie + COUNTER_RANGE,)
    ]
    assert replica.txg == txg == 1
    image = db.image()
    assert MetaDB(image, txg=1).query("SELECT name FROM dirents") == [(b"name",)]


@pytest.mark.parametrize(
    "statements",
    [
        [("ATTACH DATABASE '/tmp/x' AS x", ())],
        [("VACUUM INTO '/tmp/stolen'", ())],
        [("inode.set", (1, "mode = 0, uid", 0))],
        [("inode.set", (1, "birth", 0))],
        [("chunk.ref", ())],
        [("chunk.ref", (b"a", b"b"))],
        [("chunk.ref", ((1 << 64) - 1,))],  # past SQLite's 64-bit signed integers
    ],
)
def test_replay_runs_only_our_operations(statements: list[tuple[str, tuple[object, ...]]]) -> None:
    """An authentic record of a former key holder cannot make replay run SQL of its choosing."""
    blob = _journal.encode(KEY, "p", EPOCH, 1, b"", statements)  # type: ignore[arg-type]
    (record,) = _journal.decode_chain(KEY, "p", EPOCH, b"", blob)
    db = MetaDB()
    with pytest.raises(IntegrityError):
        db.apply(record.txg, record.statements)
    assert db.txg == 0


def test_the_database_refuses_statements_outside_our_tables() -> None:
    db = MetaDB()
    for sql in (
        "ATTACH DATABASE ':memory:' AS x",
        "PRAGMA writable_schema = ON",
        "CREATE TABLE evil(x)",
        "DROP TABLE inodes",
        "CREATE TRIGGER t AFTER INSERT ON chunks BEGIN DELETE FROM inodes; END",
        "VACUUM INTO '/tmp/dwfs-stolen'",
    ):
        with pytest.raises(sqlite3.DatabaseError):
            db.conn.execute(sql)


def test_an_image_with_a_schema_not_ours_is_refused() -> None:
    evil = sqlite3.connect(":memory:")
    evil.deserialize(MetaDB().image())
    evil.execute("CREATE TRIGGER t AFTER INSERT ON chunks BEGIN DELETE FROM inodes; END")
    with pytest.raises(IntegrityError, match="does not make"):
        MetaDB(evil.serialize())
    with pytest.raises(IntegrityError, match="not an SQLite database"):
        MetaDB(b"SQLite format 3\0" + bytes(200))


def test_a_failed_transaction_leaves_no_statements() -> None:
    db = MetaDB()
    with pytest.raises(RuntimeError), db.transaction():
        db.execute("chunk.upsert", (b"y", 1, 1, 1, 1, 1))
        raise RuntimeError
    assert not db.has_pending()
    assert db.query("SELECT * FROM chunks") == []


def test_records_of_the_json_body_still_replay() -> None:
    """Records written before the MessagePack body (JSON, bytes as base64) are
    read as they were, told apart by their first byte."""
    statements = [("chunk.ref", (b"\x00id",)), ("inode.set", (1, "text", 2.5, None))]
    body = json.dumps(
        [
            [op, [{"b": base64.b64encode(v).decode()} if isinstance(v, bytes) else v for v in vs]]
            for op, vs in statements
        ]
    ).encode()
    context = _journal._context("p", EPOCH, 1, b"")
    sealed = seal_record(KEY, context, zstandard.compress(body))
    blob = struct.pack("<4sIQ", _journal.MAGIC, len(sealed), 1) + sealed
    (record,) = _journal.decode_chain(KEY, "p", EPOCH, b"", blob)
    assert record.statements == statements
    assert _journal.statements_of(_journal.parse_body(body)) == statements


def test_the_operations_that_keep_chunks_are_operations() -> None:
    assert {*OPS, INODE_SET} >= KEEPING_CHUNKS
    assert not {"chunk.unref", "chunk.drop_dead", "remote.add", "remote.drop_dead"} & KEEPING_CHUNKS


def test_replay_refuses_a_journal_that_skips_a_txg() -> None:
    db = MetaDB(txg=4)
    _apply_next(db, 5, [], "the remote's journal", "it was changed there")
    with pytest.raises(IntegrityError, match="skips from txg 5 to 7: it was changed there"):
        _apply_next(db, 7, [], "the remote's journal", "it was changed there")
    assert db.txg == 5


def test_logged_writes_take_growing_seqs_and_a_replayed_row_is_never_overtaken() -> None:
    """The intent log's seqs are counted in memory: one journaled statement per
    logged write, and a row that replay brings in is below every later seq."""
    db = MetaDB()
    first = db.next_log_seq()
    with db.transaction():
        db.execute("logged.insert", (first, 2, 0, b"a"))
        db.execute("logged.insert", (db.next_log_seq(), 2, 1, b"b"))
    txg, statements = db.take_pending()
    assert [op for op, _ in statements] == ["logged.insert", "logged.insert"]
    assert db.log_seq() == first + 2
    replica = MetaDB()
    replica.apply(txg, statements)
    assert replica.log_seq() == first + 2
    replica.apply(txg + 1, [("logged.insert", (first + 40, 3, 0, b"c"))])
    assert replica.next_log_seq() == first + 41


def test_counters_hand_out_ranges_that_replay_and_rollback_keep_unique() -> None:
    """A counter's numbers come from ranges reserved in its row: one journaled
    statement per range, and every number handed out is below the row's value,
    in a replica of the journal too and after a rollback undid a reservation
    (whose numbers went only into rows that rolled back with it)."""
    db = MetaDB()
    taken = [db.next_counter("next_ino") for _ in range(COUNTER_RANGE + 5)]
    txg, statements = db.take_pending()
    assert taken == sorted(set(taken))
    assert [op for op, _ in statements] == ["counter.raise", "counter.raise"]
    replica = MetaDB()
    replica.apply(txg, statements)
    assert replica.next_counter("next_ino") > taken[-1]
    with pytest.raises(RuntimeError), db.transaction():
        db.execute("counter.raise", ("next_ino", 0))  # a statement, then a failure
        for _ in range(COUNTER_RANGE):
            taken.append(db.next_counter("next_ino"))  # crosses into a new range
        raise RuntimeError("rolled back")
    after = db.next_counter("next_ino")
    row = db.one("SELECT value FROM counters WHERE name = 'next_ino'")
    assert row is not None and after < int(row[0]), "handed out from a range its row holds"
