"""A checkpoint taken while other tasks change rows: its image holds what they
changed while its commit waited, so after a crash those changes must be there
once, neither lost nor replayed a second time on top of the image."""

from __future__ import annotations

import os
from pathlib import Path

import trio

from dwfs import open_pool
from dwfs.meta import Metadata
from tests.unit.chunks.test_pool import pw
from tests.unit.meta.test_freshness import make


async def test_changes_made_during_a_checkpoint_replay_once(tmp_path: Path) -> None:
    paths = make(tmp_path)
    async with open_pool(paths[0], pw()) as pool:
        meta = await Metadata.open(pool)
        counter = _counter(meta)
        await pool.store.put(os.urandom(4096))  # so the checkpoint's commit waits for a sync
        writes, done = 0, False

        async def checkpoint() -> None:
            nonlocal done
            await meta.checkpoint()
            done = True

        async with trio.open_nursery() as nursery:
            nursery.start_soon(checkpoint)
            while not done:  # change rows all through the checkpoint
                meta.db.execute("logged.insert", (writes, 1, writes, b"x"))
                meta.db.execute("counter.next", ("next_ino",))  # not idempotent either
                writes += 1
                await trio.lowlevel.checkpoint()
        await meta.commit()
    # no clean close: the next open is what a crash leaves
    async with open_pool(paths[1], pw()) as pool:
        meta = await Metadata.open(pool)
        rows = meta.db.query("SELECT seq FROM logged ORDER BY seq")
        assert [r[0] for r in rows] == list(range(writes))
        assert _counter(meta) == counter + writes


def _counter(meta: Metadata) -> int:
    row = meta.db.one("SELECT value FROM counters WHERE name = 'next_ino'")
    assert row is not None
    return int(row[0])
