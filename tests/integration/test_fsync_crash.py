"""fsync through the intent log as a user meets it: a database-like program
appends and overwrites small pages and fsyncs after each, the daemon is killed
with -9 before its next commit, and the next mount has every fsync'd byte."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
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


def test_fsynced_writes_need_only_m_plus_1_devices(make_pool: PoolFactory) -> None:
    """A commit waits for its record on m + 1 devices (dev0 and dev1 here, since
    one filesystem holds all three) and leaves the third's copy in the page cache.
    A power cut that loses every copy the third held, with the loss of a device
    that synced, still leaves every fsync'd byte."""
    pool = make_pool()
    path = pool.mnt / "log.bin"
    rng = random.Random(9)
    expected = b""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    for _ in range(50):
        page = rng.randbytes(4096)
        os.write(fd, page)
        os.fsync(fd)
        expected += page
    pool.crash()
    with contextlib.suppress(OSError):
        os.close(fd)
    newest = max((pool.devices[2] / "journal").iterdir())
    newest.write_bytes(bytes(newest.stat().st_size))  # as the preallocated zeros were
    shutil.rmtree(pool.devices[0])
    pool.mount(pool.devices[1], "degraded")
    assert path.read_bytes() == expected
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
