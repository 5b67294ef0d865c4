"""Compaction: the live chunks of mostly dead segments are copied out, so that
garbage collection can delete those segments.

Segments are append-only: a chunk whose last reference goes leaves a hole that
only the deletion of its whole segment gives back, so without compaction
deleting every other file, or rewriting a database in place, frees nothing.
A segment whose live stripes fill less than LIVE_FRACTION (2/3) of it is a
victim (the least live first, about BUDGET bytes a pass). Its live chunks are
copied to the append point, sealed bytes as they are, while the filesystem
goes on. Then, at a moment when no put is under way (so no put holds an index
address that is about to change) and without an await, the chunk rows and the
dedup index are pointed at the copies and the victims' dead rows are dropped.
The commit that follows makes it durable, copies before the journal record,
and the victims, holding nothing live, are garbage collection's.

A crash before that commit leaves the metadata naming the old stripes, which
nothing touched; after it, the copies, which it made durable first. The
metadata's addresses take precedence over the scan of stripe headers at mount,
so a victim left behind by a crash is only garbage.
"""

from __future__ import annotations

import logging

from dwfs.devices import COMPACTION_RESERVE, SHARD_HEADER_SIZE
from dwfs.meta import Metadata
from dwfs.types import Moved, PoolServices

LIVE_FRACTION = 2 / 3
"""Segments whose live stripes fill less than this share of them are compacted:
the pool then takes at most 1.5 times its live data, and compaction writes at
most two bytes for every byte it frees."""
BUDGET = 64 * 1024 * 1024
"""Live bytes (per device) one pass copies at most, unless one victim holds more."""
log = logging.getLogger(__name__)


def victims(meta: Metadata, pool: PoolServices) -> list[tuple[int, int]]:
    """(segment, live bytes per device) of the segments worth compacting, the
    least live first. The segment being appended to and those holding the
    current checkpoint (whose chunks have no rows) are never victims. A pool
    missing a device has none (copies made then would lack that device's
    shards, trading whole stripes for degraded ones), nor one being
    resilvered (its walk over every stripe must not meet deleted segments)."""
    if pool.space.degraded() or pool.space.resilvering():
        return []
    keep = meta.checkpoint_segments | {pool.space.current_segment}
    found = []
    # live and size both count offsets: a stripe takes its offsets on every
    # device, a declustered one as a hole on the devices it skips
    for segment, live in meta.chunk_rows.live_bytes(SHARD_HEADER_SIZE):
        size = pool.space.segment_end(segment) if segment not in keep else 0
        if size and live < size * LIVE_FRACTION:
            found.append((live / size, segment, live))
    return [(segment, live) for _, segment, live in sorted(found)]


def choose(candidates: list[tuple[int, int]], budget: int, room: int) -> list[int]:
    """The victims one pass takes, in order: only those whose live bytes still
    fit the room the devices have (a victim copied in part frees nothing and
    spends room), and past the first, only while the budget holds."""
    chosen: list[int] = []
    total = 0
    for segment, live in candidates:
        if total + live > room:
            continue
        if chosen and total + live > budget:
            break
        chosen.append(segment)
        total += live
    return chosen


def _choose(meta: Metadata, pool: PoolServices, budget: int) -> list[int]:
    return choose(victims(meta, pool), budget, pool.space.room(COMPACTION_RESERVE))


async def compact(meta: Metadata, pool: PoolServices, budget: int = BUDGET) -> int:
    """Copy the live chunks out of mostly dead segments and commit; how many moved."""
    chosen = _choose(meta, pool, budget)
    return await move_out(meta, pool, chosen) if chosen else 0


async def move_out(meta: Metadata, pool: PoolServices, chosen: list[int]) -> int:
    """Copy the live chunks out of these segments and commit; how many moved."""
    order = {segment: i for i, segment in enumerate(chosen)}
    moves = sorted(  # victim by victim, so the pool's room empties whole ones first
        meta.chunk_rows.live_in(chosen),
        key=lambda move: (order[move[1].segment], move[1].offset),
    )
    copied = await pool.store.relocate(moves)
    await pool.store.wait_for_puts()
    swapped = _swap(meta, pool, copied, chosen)
    await meta.commit()
    log.info(
        "compaction moved %d of %d live chunks out of segments %s", swapped, len(moves), chosen
    )
    return swapped


class Compactor:
    """Compaction passes for a mounted pool's committer. A look for victims
    reads every live chunk row (about 90 ms on the trio thread for 400,000
    chunks, a 100 GiB pool), so a pass runs only when a look may find what the
    last one did not: after chunks died (a covering-index count of dead rows,
    about 20 ms) or a checkpoint moved, or once the devices have the room that
    the victims found then lacked (a full pool, whose garbage collection or
    whose user gave space back since)."""

    def __init__(self, meta: Metadata, pool: PoolServices) -> None:
        self.meta = meta
        self.pool = pool
        self._seen: tuple[int, int] | None = None
        """(dead chunk rows, checkpoints) at the last look that found no victims."""
        self._room_wanted: int | None = None
        """The room the smallest victim of that look needed, if it found any."""

    async def run(self) -> int:
        """A pass if one may find victims; how many chunks it moved."""
        rows = self.meta.chunk_rows
        dead = rows.dead_count() + rows.not_local_count()  # evicted copies leave holes too
        seen = (dead, self.meta.checkpoints)
        if seen == self._seen and not self._room_came():
            return 0
        candidates = victims(self.meta, self.pool)
        chosen = choose(candidates, BUDGET, self.pool.space.room(COMPACTION_RESERVE))
        if not chosen:
            self._seen = seen
            self._room_wanted = min((live for _, live in candidates), default=None)
            return 0
        self._seen = None  # victims remain until a look finds none
        return await move_out(self.meta, self.pool, chosen)

    def _room_came(self) -> bool:
        wanted = self._room_wanted
        return wanted is not None and self.pool.space.room(COMPACTION_RESERVE) >= wanted


def _swap(meta: Metadata, pool: PoolServices, copied: list[Moved], segments: list[int]) -> int:
    """Point rows and index at the copies, drop the victims' dead rows; how many
    moved. Must run with no put under way and no await inside. The index
    changes only once the transaction is in, so a rollback leaves both as
    they were."""
    moved: list[Moved] = []
    rows = meta.chunk_rows
    with meta.db.transaction():
        for move in copied:
            if rows.live_at(move.chunk_id) != move.old:
                continue  # freed meanwhile: the copy is garbage, the dead row goes below
            rows.move(move.chunk_id, move.new)
            moved.append(move)
        dead = rows.dead_in(segments)
        for segment in segments:
            rows.drop_dead(segment)
    pool.store.repoint(moved, dead, set(segments))
    return len(moved)
