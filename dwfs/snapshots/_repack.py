"""Repacking: the live chunks of mostly dead packs on the remote are stored
again in new packs, so the old ones can be deleted and the space deleted data
took on the remote comes back (as compaction does for segments).

A sync repacks before it takes the checkpoint it uploads: the live chunks'
sealed bytes (from the devices where they are local, else fetched from the old
pack and authenticated) go up in new packs, and their new places are committed.
The old packs stay on the remote until a superblock names a copy that no longer
needs them; the sync deletes them after that (dead packs), so a crash anywhere
leaves the remote's current copy whole and the new packs, at worst, garbage that
the next sync deletes.
"""

from __future__ import annotations

import dataclasses
import logging

from dwfs.chunks import PACK_BYTES, Pool, Tier
from dwfs.meta import Metadata
from dwfs.types import ChunkId, RemoteAddr, StripeAddr

log = logging.getLogger(__name__)

REPACK_BELOW = 0.5
"""A pack whose live chunks fill less than this share of it is repacked: at
most half of what a repack uploads is moved data, and no pack stays more than
half dead (restic's prune repacks at any waste above a threshold; S3QL never
repacks, and a deleted file's share of an object stays billed)."""


SMALL_PACK = PACK_BYTES // 4
"""Packs smaller than this (the uploader sends what is pending every few seconds,
so a trickle of writes makes many) are merged at a sync when there are two or
more: a remote of thousands of tiny objects costs more to list, to hold and to
read back (a sequential reader's range stops at each pack's end). At most this
much is sent again per sync, when the last merge's pack is merged anew."""


@dataclasses.dataclass
class Repacked:
    """What a repack did."""

    packs: int = 0
    chunks: int = 0
    bytes: int = 0


async def repack(meta: Metadata, pool: Pool, tier: Tier) -> Repacked:
    """Move the live chunks of sparse packs (and of small ones, two or more) into
    new packs and commit their new places; forget the dead chunks those packs
    held. Raises RemoteError or TierUnavailable when the remote fails (what moved
    before stays moved)."""
    with meta.db.transaction():
        meta.remote_rows.estimate_pack_sizes()
    sparse = meta.remote_rows.sparse_packs(REPACK_BELOW)
    small = meta.remote_rows.small_packs(SMALL_PACK)
    if len(small) >= 2:
        sparse += [pack for pack in small if pack not in sparse]
    done = Repacked()
    batch: list[tuple[ChunkId, RemoteAddr, StripeAddr | None]] = []
    size = 0
    for pack in sparse:
        live = meta.remote_rows.live_in_pack(pack)
        batch.extend(live)
        size += sum(where.length for _, where, _ in live)
        if size >= PACK_BYTES:
            await _move(meta, pool, tier, batch, done)
            batch, size = [], 0
    await _move(meta, pool, tier, batch, done)
    with meta.db.transaction():
        for pack in sparse:
            meta.remote_rows.drop_dead_in(pack)
        meta.remote_rows.forget_unused_packs()
    await meta.commit()
    done.packs = len(sparse)
    if sparse:
        log.info(
            "repacked %d packs of %s: %d live chunks (%d bytes) moved",
            done.packs,
            tier.url,
            done.chunks,
            done.bytes,
        )
    return done


async def _move(
    meta: Metadata,
    pool: Pool,
    tier: Tier,
    chunks: list[tuple[ChunkId, RemoteAddr, StripeAddr | None]],
    done: Repacked,
) -> None:
    if not chunks:
        return
    sealed = await tier.sealed_copies(chunks)
    if not sealed:
        return
    placed = await tier.upload_sealed(sealed)
    with meta.db.transaction():
        meta.remote_rows.place(placed)
    pool.store.learn_remote(placed)
    await meta.commit()
    done.chunks += len(placed)
    done.bytes += sum(where.length for _, where in placed)
