"""Pins on a real in-memory metadata database: a pool that never pinned
anything answers pinned() without asking the database again, and a pin,
once made, is seen by this object and by a new one over the same rows."""

from __future__ import annotations

from dwfs.meta import MetaDB, RemoteRows


def test_pinned_asks_once_while_nothing_is_pinned_then_sees_every_pin() -> None:
    db = MetaDB()
    rows = RemoteRows(db)
    assert not rows.pinned(1)  # asks whether anything is pinned at all
    asked: list[str] = []
    db.conn.set_trace_callback(asked.append)
    assert not any(rows.pinned(ino) for ino in range(2, 50))
    db.conn.set_trace_callback(None)
    assert not asked
    with db.transaction():
        rows.set_pinned(7, True)
    assert rows.pinned(7) and not rows.pinned(8)
    assert RemoteRows(db).pinned(7), "a new reader (as after a remount) sees the pin"
    with db.transaction():
        rows.set_pinned(7, False)
    assert not rows.pinned(7)
