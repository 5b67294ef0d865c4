"""Where a commit's journal appends run: on the trio thread while they are fast
and nothing else waits to run, on a worker thread after a slow one."""

from __future__ import annotations

from pathlib import Path

import trio

from dwfs import open_pool
from dwfs.meta import Metadata
from tests.unit.chunks.test_pool import pw
from tests.unit.meta.test_freshness import make, names


async def commit_one(meta: Metadata, name: bytes) -> None:
    meta.db.execute("chunk.upsert", (name, 0, 0, 0, 0, 0))
    await meta.commit()


async def test_fast_appends_stay_on_the_trio_thread_and_a_slow_one_sends_the_next_away(
    tmp_path: Path,
) -> None:
    paths = make(tmp_path)
    limiter = trio.to_thread.current_default_thread_limiter()
    tokens = limiter.total_tokens
    async with open_pool(paths[0], pw()) as pool:
        meta = await Metadata.open(pool)
        limiter.total_tokens = 1
        try:
            with trio.fail_after(20):
                async with trio.open_nursery() as nursery, limiter:  # holds the only thread token
                    await commit_one(meta, b"fast")  # would wait forever for a thread
                    assert meta.append_seconds > 0
                    meta.append_seconds = 1.0  # as after a device that took a second
                    nursery.start_soon(commit_one, meta, b"slow")
                    await trio.sleep(0.3)
                    assert meta.durable_txg == meta.db.txg - 1  # waiting for a thread
            assert meta.durable_txg == meta.db.txg
        finally:
            limiter.total_tokens = tokens
    assert await names(paths[1]) == {"fast", "slow"}


async def test_a_commit_runs_at_once_unless_something_stands_in_its_way(tmp_path: Path) -> None:
    """commit_now() is what lets the mount answer an fsync inline: it commits
    when it can without waiting, and says so, and leaves it to commit() while a
    commit is under way or after a slow append."""
    paths = make(tmp_path)
    async with open_pool(paths[0], pw()) as pool:
        meta = await Metadata.open(pool)
        assert meta.commit_now(), "nothing pending: nothing to wait for"
        meta.db.execute("chunk.upsert", (b"now", 0, 0, 0, 0, 0))
        assert meta.commit_now()
        assert meta.durable_txg == meta.db.txg
        meta.db.execute("chunk.upsert", (b"later", 0, 0, 0, 0, 0))
        async with meta._lock:  # a commit under way
            assert not meta.commit_now()
        meta.append_seconds = 1.0
        assert not meta.commit_now()
        assert meta.db.has_pending(), "left for commit()"
        await meta.commit()
    assert await names(paths[1]) == {"now", "later"}
