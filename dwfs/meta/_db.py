"""The working metadata: an in-memory SQLite database whose every change is journaled.

The database lives only in memory: on disk there is nothing but the sealed
journal records and checkpoints in the pool, so the tree's names, sizes and
shape never touch a disk in the clear, and losing this machine's state loses
nothing. Each write is one of the fixed operations of `_ops`: it runs at once
and is also recorded (its name and values) in the open txg; committing a txg
appends the operations to the journal, and replaying them in order rebuilds the
same database (every value, time included, is a parameter, never computed by SQL).

The database is guarded against what an authentic but hostile record or image
could carry: an SQLite authorizer allows only reads and row changes on our own
tables (no ATTACH, PRAGMA, schema changes or VACUUM), `trusted_schema` is off,
and a loaded image must have exactly our schema (no triggers, views or extra
tables).

The connection belongs to the trio thread: statements on an in-memory database
take microseconds, far less than a hop to a worker thread.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from dwfs.errors import IntegrityError
from dwfs.meta._ops import INODE_SET, SUBTREE, inode_set_sql, statement
from dwfs.meta._schema import INODES_V1, MIGRATIONS, REBUILD_INODES, SCHEMA

Param = int | str | bytes | float | None
Statement = tuple[str, tuple[Param, ...]]
"""One journaled write: an operation's name (see _ops) and its values."""

TABLES = frozenset(
    {
        "inodes",
        "dirents",
        "extents",
        "inline_data",
        "xattrs",
        "chunks",
        "counters",
        "logged",
        "snapshots",
        "settings",
        "remote",
        "pins",
        "packs",
    }
)
_RUNS_CODE = "SELECT 1 FROM sqlite_master WHERE type IN ('trigger', 'view')"
SNAPSHOT_OPS = "snapshot."
"""Operations on the snapshots table (the only ones that change the newest snapshot)."""
_INODES_SQL = "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'inodes'"
_ROW_ACTIONS = {sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE}
_READ_ACTIONS = {sqlite3.SQLITE_READ}
_PLAIN_ACTIONS = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_TRANSACTION,
    sqlite3.SQLITE_FUNCTION,
    sqlite3.SQLITE_RECURSIVE,
}


def _authorize(
    action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None
) -> int:
    """SQLite's authorizer: reads and row changes of our tables in main, nothing else."""
    if trigger not in (None, SUBTREE) or db not in (None, "main"):
        return sqlite3.SQLITE_DENY
    if action in _PLAIN_ACTIONS:
        return sqlite3.SQLITE_OK
    if action in _ROW_ACTIONS | _READ_ACTIONS and arg1 in TABLES:
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


@functools.cache
def _our_schema() -> frozenset[tuple[str, str, str, str | None]]:
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(SCHEMA)
        return _schema_of(conn)
    finally:
        conn.close()


def _schema_of(conn: sqlite3.Connection) -> frozenset[tuple[str, str, str, str | None]]:
    rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    return frozenset((str(t), str(n), str(b), None if q is None else str(q)) for t, n, b, q in rows)


COUNTER_RANGE = 1024
"""Numbers a counter's row is raised by at once (MetaDB.next_counter)."""
_LOG_SEQ_SQL = (
    "SELECT max((SELECT value FROM counters WHERE name = 'next_log'), "
    "coalesce((SELECT max(seq) + 1 FROM logged), 0))"
)


class MetaDB:
    def __init__(self, image: bytes | None = None, txg: int = 0) -> None:
        self.conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA trusted_schema = OFF")
        try:
            if image is None:
                self.conn.executescript(SCHEMA)
            else:
                self._load(image)
        except BaseException:
            self.conn.close()
            raise
        self.conn.set_authorizer(_authorize)
        self.txg = txg
        self._pending: list[Statement] = []
        self._depth = 0
        self._rollback_hooks: list[Callable[[], None]] = []
        self._newest_snapshot: int | None = None
        self._log_seq: int | None = None
        self._ranges: dict[str, list[int]] = {}
        """Counters' ranges reserved in their rows: [next number, end]."""

    def _load(self, image: bytes) -> None:
        """Take a checkpoint's image, refusing one whose schema is not ours."""
        if len(image) < 512 or not image.startswith(b"SQLite format 3\0"):
            raise IntegrityError("the metadata checkpoint is not an SQLite database")
        try:
            self.conn.deserialize(image)
            if self.conn.execute(_RUNS_CODE).fetchone() is not None:
                raise IntegrityError(
                    "the metadata checkpoint holds triggers or views dwfs does not make: "
                    "it is not from this dwfs; report it"
                )
            (inodes,) = self.conn.execute(_INODES_SQL).fetchone() or ("",)
            if INODES_V1 in str(inodes):
                self.conn.executescript(REBUILD_INODES)
            self.conn.executescript(MIGRATIONS)
            schema = _schema_of(self.conn)
            self.conn.execute("PRAGMA quick_check").fetchall()
        except (sqlite3.Error, UnicodeDecodeError) as exc:  # schema text may not be UTF-8
            raise IntegrityError(
                f"the metadata checkpoint is not a database dwfs made: {exc}"
            ) from None
        if schema != _our_schema():
            raise IntegrityError(
                "the metadata checkpoint holds tables, indexes or triggers dwfs does not make: "
                "it is not from this dwfs; report it"
            )

    @property
    def open_txg(self) -> int:
        """The txg that changes made now belong to; self.txg is the last one closed."""
        return self.txg + 1

    def query(self, sql: str, params: Sequence[Param] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, tuple(params)).fetchall()

    def one(self, sql: str, params: Sequence[Param] = ()) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self.conn.execute(sql, tuple(params)).fetchone()
        return row

    def execute(self, op: str, params: Sequence[Param] = ()) -> int:
        """Run write operation `op` (a name in _ops.OPS), record it in the open txg;
        the rows it changed."""
        values = tuple(params)
        sql, args = statement(op, values)
        cursor = self.conn.execute(sql, args)
        self._pending.append((op, values))
        if op.startswith(SNAPSHOT_OPS):
            self._newest_snapshot = None
        return cursor.rowcount

    def newest_snapshot(self) -> int:
        """The txg of the newest snapshot, or -1 if there is none. Every change of
        a row asks it (to keep what a snapshot sees), so it is kept between
        changes of the snapshots table."""
        if self._newest_snapshot is None:
            row = self.one("SELECT max(txg) FROM snapshots")
            self._newest_snapshot = -1 if row is None or row[0] is None else int(row[0])
        return self._newest_snapshot

    def set_inode(self, ino: int, fields: Mapping[str, Param]) -> None:
        """Assign columns of one live inode row (names from _ops.INODE_FIELDS)."""
        self.conn.execute(inode_set_sql(tuple(fields)), (*fields.values(), ino))
        self._pending.append((INODE_SET, (ino, *[x for kv in fields.items() for x in kv])))

    def next_counter(self, name: str) -> int:
        """The counter's next number (inode numbers, directory cookies, snapshot
        ids): unique, growing, not dense. Numbers come from a range of
        COUNTER_RANGE reserved in the row by one journaled statement, so most
        takes are a step in memory; a crash or an unmount leaves the rest of
        the range unused, as a rolled-back transaction drops the range it
        reserved."""
        taken = self._ranges.get(name)
        if taken is None or taken[0] >= taken[1]:
            row = self.one("SELECT value FROM counters WHERE name = ?", (name,))
            if row is None:
                raise IntegrityError(f"the metadata has no counter {name!r}")
            taken = self._ranges[name] = [int(row[0]), int(row[0]) + COUNTER_RANGE]
            self.execute("counter.raise", (name, taken[1]))
        value = taken[0]
        taken[0] += 1
        return value

    def next_log_seq(self) -> int:
        """A new seq for the intent log. Seqs only need to grow within one mount
        (a mount stores and drops every logged row before it logs any), so they
        are counted here rather than in a row: logging a write is one journaled
        statement, not two."""
        seq = self.log_seq()
        self._log_seq = seq + 1
        return seq

    def log_seq(self) -> int:
        """The seq the next logged write takes: every row logged so far has a smaller one."""
        if self._log_seq is None:
            row = self.one(_LOG_SEQ_SQL)
            assert row is not None, "an aggregate always has its one row"
            self._log_seq = int(row[0])
        return self._log_seq

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
            self._newest_snapshot = None
            self._ranges.clear()  # a range reserved inside is no longer in its row
            for hook in self._rollback_hooks:
                hook()
            raise
        else:
            self.conn.execute("COMMIT")
        finally:
            self._depth = 0

    def has_pending(self) -> bool:
        return bool(self._pending)

    def pending_only(self, ops: frozenset[str]) -> bool:
        """Whether every operation of the open txg is one of ops."""
        return all(op in ops for op, _ in self._pending)

    @property
    def pending_statements(self) -> int:
        return len(self._pending)

    def take_pending(self) -> tuple[int, list[Statement]]:
        """Close the open txg: its number and statements. Not inside a transaction."""
        assert not self._depth, "a txg cannot end inside a transaction"
        txg, statements = self.open_txg, self._pending
        self._pending = []
        self.txg = txg
        return txg, statements

    def apply(self, txg: int, statements: list[Statement]) -> None:
        """Replay one journaled txg: only operations of _ops, all or none.

        Raises:
            IntegrityError: an operation is unknown, malformed or fails.
        """
        try:
            with self.transaction():
                for op, values in statements:
                    self.conn.execute(*statement(op, values)).fetchall()
        except (sqlite3.Error, OverflowError) as exc:  # OverflowError: an int past 64 bits
            raise IntegrityError(f"journal txg {txg} does not apply: {exc}") from None
        self._pending.clear()
        self._newest_snapshot = None
        self._log_seq = None
        self._ranges.clear()
        self.txg = txg

    def image(self) -> bytes:
        """The whole database as one byte string (SQLite's serialize, which reads the
        schema with statements of its own that the authorizer would refuse)."""
        self.conn.set_authorizer(None)
        try:
            return self.conn.serialize()
        finally:
            self.conn.set_authorizer(_authorize)

    def close(self) -> None:
        self.conn.close()
