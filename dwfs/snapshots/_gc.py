"""Garbage collection: segments that hold nothing live are deleted.

A segment is live while a chunk with references is stored in it, while it
holds the current checkpoint, or while it is the one being appended to.
Deleting a segment first drops its chunks from the metadata and the dedup
index and commits that, so no write can deduplicate against a stripe that is
about to go, and checks once more before the files are removed. Chunks that
died inside a segment that still holds live ones stay until compaction
(dwfs.snapshots._compact) moves the live ones out. Before files are removed,
loads that began earlier (and may still read at an address in them) end.
"""

from __future__ import annotations

import logging

import trio

from dwfs.meta import NOT_LOCAL, Metadata
from dwfs.types import PoolServices

log = logging.getLogger(__name__)


def dead_segments(meta: Metadata, pool: PoolServices) -> list[int]:
    keep = meta.chunk_rows.live_segments() | meta.checkpoint_segments | {pool.space.current_segment}
    keep |= pool.store.unrecorded_segments()
    return [s for s in pool.space.segments() if s not in keep]


async def collect(meta: Metadata, pool: PoolServices, writers_active: int) -> int:
    """Delete dead segments; how many. Call only when no write is storing chunks.
    Nothing is deleted while a resilver walks the stripes it listed."""
    if writers_active or pool.space.resilvering():
        return 0
    if meta.chunk_rows.remote_dead_count():
        with meta.db.transaction():
            meta.chunk_rows.drop_dead(NOT_LOCAL)
        await meta.commit()
    dead = dead_segments(meta, pool)
    if not dead:
        return 0
    with meta.db.transaction():
        for segment in dead:
            meta.chunk_rows.drop_dead(segment)
    pool.store.forget_segments(set(dead))
    await meta.commit()
    await pool.store.wait_for_loads()
    async with pool.segments_lock:
        gone = [s for s in dead if s in set(dead_segments(meta, pool))]
        for segment in gone:
            await trio.to_thread.run_sync(pool.space.remove_segment, segment)
    log.info("garbage collection deleted %d segments", len(gone))
    return len(gone)
