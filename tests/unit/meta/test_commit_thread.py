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
