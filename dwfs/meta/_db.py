"""The working metadata: an in-memory SQLite database whose every change is journaled.

The database lives only in memory: on disk there is nothing but the sealed
journal records and checkpoints in the pool, so the tree's names, sizes and
shape never touch a disk in the clear, and losing this machine's state loses
nothing. Each write statement runs at once and is also recorded with its
parameters in the open txg; committing a txg appends the statements to the
journal, and replaying them in order rebuilds the same database (statement-based
replication: every value, time included, is a parameter, never computed by SQL).

The connection belongs to the trio thread: statements on an in-memory database
take microseconds, far less than a hop to a worker thread.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from dwfs.meta._schema import MIGRATIONS, SCHEMA

Param = int | str | bytes | float | None
Statement = tuple[str, tuple[Param, ...]]


class MetaDB:
    def __init__(self, image: bytes | None = None, txg: int = 0) -> None:
        self.conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        if image is None:
            self.conn.executescript(SCHEMA)
        else:
            self.conn.deserialize(image)
            self.conn.executescript(MIGRATIONS)
        self.txg = txg
        self._pending: list[Statement] = []
        self._depth = 0
        self._rollback_hooks: list[Callable[[], None]] = []

    @property
    def open_txg(self) -> int:
        """The txg that changes made now belong to; self.txg is the last one closed."""
        return self.txg + 1

    def query(self, sql: str, params: Sequence[Param] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, tuple(params)).fetchall()

    def one(self, sql: str, params: Sequence[Param] = ()) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self.conn.execute(sql, tuple(params)).fetchone()
        return row

    def execute(self, sql: str, params: Sequence[Param] = ()) -> int:
        """Run a write statement, record it in the open txg; the rows it changed."""
        cursor = self.conn.execute(sql, tuple(params))
        self._pending.append((sql, tuple(params)))
        return cursor.rowcount

    def next_counter(self, name: str) -> int:
        sql = "UPDATE counters SET value = value + 1 WHERE name = ? RETURNING value - 1"
        ((value,),) = self.conn.execute(sql, (name,)).fetchall()
        self._pending.append((sql, (name,)))
        return int(value)

    def on_rollback(self, hook: Callable[[], None]) -> None:
        """Call hook whenever a transaction rolls back (caches of rows drop what
        they may have read inside it)."""
        self._rollback_hooks.append(hook)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All statements inside happen or none do (in memory; the journal keeps them
        together because a txg is never cut inside a transaction)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        mark = len(self._pending)
        self.conn.execute("BEGIN")
        self._depth = 1
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            del self._pending[mark:]
            for hook in self._rollback_hooks:
                hook()
            raise
        else:
            self.conn.execute("COMMIT")
        finally:
            self._depth = 0

    def has_pending(self) -> bool:
        return bool(self._pending)

    def take_pending(self) -> tuple[int, list[Statement]]:
        """Close the open txg: its number and statements. Not inside a transaction."""
        assert not self._depth, "a txg cannot end inside a transaction"
        txg, statements = self.open_txg, self._pending
        self._pending = []
        self.txg = txg
        return txg, statements

    def apply(self, txg: int, statements: list[Statement]) -> None:
        """Replay one journaled txg."""
        with self.transaction():
            for sql, params in statements:
                self.conn.execute(sql, params).fetchall()
        self._pending.clear()
        self.txg = txg

    def image(self) -> bytes:
        """The whole database as one byte string (SQLite's serialize)."""
        return self.conn.serialize()

    def close(self) -> None:
        self.conn.close()
