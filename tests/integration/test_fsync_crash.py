"""fsync through the intent log as a user meets it: a database-like program
appends and overwrites small pages and fsyncs after each, the daemon is killed
with -9 before its next commit, and the next mount has every fsync'd byte."""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3

from tests.integration.conftest import PoolFactory


def test_fsynced_small_writes_survive_kill_9(make_pool: PoolFactory) -> None:
    pool = make_pool()
    path = pool.mnt / "journal.bin"
    rng = random.Random(7)
    expected = bytearray(rng.randbytes(50_000))
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    os.write(fd, expected)
    os.fsync(fd)
    for i in range(200):
        page = rng.randbytes(4096)
        if i % 5 == 4:
            at = rng.randrange(0, len(expected) - 4096)
            os.pwrite(fd, page, at)
            expected[at : at + 4096] = page
        else:
            os.pwrite(fd, page, len(expected))
            expected += page
        os.fsync(fd)
    os.pwrite(fd, b"not fsynced", len(expected))
    pool.crash()
    with contextlib.suppress(OSError):  # the daemon is gone: ENOTCONN
        os.close(fd)
    pool.mount()
    data = path.read_bytes()
    assert data[: len(expected)] == expected
    assert len(data) in (len(expected), len(expected) + len(b"not fsynced"))
    pool.umount()


def test_a_sqlite_database_committed_before_kill_9_is_intact(make_pool: PoolFactory) -> None:
    pool = make_pool()
    db = sqlite3.connect(pool.mnt / "app.db")
    db.execute("PRAGMA journal_mode = WAL")  # a commit is a WAL append and an fsync
    db.execute("PRAGMA synchronous = FULL")
    db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
    for batch in range(40):
        with db:
            db.executemany(
                "INSERT INTO t VALUES (?, ?)", [(batch * 50 + i, "x" * 90) for i in range(50)]
            )
    pool.crash()
    db.close()
    pool.mount()
    check = sqlite3.connect(pool.mnt / "app.db")
    assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert check.execute("SELECT count(*) FROM t").fetchone() == (2000,)
    check.close()
    pool.umount()
