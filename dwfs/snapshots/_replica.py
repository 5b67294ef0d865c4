"""The pool's copy on its remote tier: uploads, sync, and attaching new devices.

Chunks go up in the background as they are written (`upload_pending`), each
recorded in the metadata's `remote` table once its pack is stored, so a
restart resumes where uploads stopped. `sync` makes the remote a complete,
mountable copy: every live chunk uploaded, the live chunks of mostly dead packs
moved into new ones (dwfs.snapshots._repack), then a checkpoint of the metadata
(which lists where every chunk lies on the remote), its chunks uploaded, a
manifest of them sealed for the remote, and last the remote's superblock
replaced with the next generation naming that manifest. Until the superblock
is replaced the remote's previous copy stands whole, so a crash anywhere in a
sync leaves a mountable remote; after it, the packs the new copy does not need
are deleted.

Between syncs the remote's journal follows the copy (`upload_journal`): the
txgs committed since, as sealed segments chained from the manifest, each sent
once every chunk its txgs leave live is on the remote, so the remote trails
the devices by one upload round, not by a sync. A sync starts the journal anew
after its manifest and deletes the old one's segments.

`attach` brings the pool up on new devices from the remote alone: the newest
manifest's metadata image, with the journal's segments after it replayed,
becomes the devices' first checkpoint, with every chunk remote-only; reading a
file fetches its chunks. Segments are found by names derived from the key, in
order, until one is missing: the remote can hide the newest ones (a rollback
to an earlier moment after the copy, which a new machine cannot tell), but
cannot change, reorder or splice them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
import time
from pathlib import Path
from typing import Any

import trio

from dwfs.chunks import (
    Credential,
    Pool,
    Tier,
    create_attached,
    open_pool,
    pack_name,
    read_remote,
)
from dwfs.errors import DwfsError, IntegrityError, RemoteError
from dwfs.meta import Metadata, Statement, pack_txgs, tag_of, unpack_txgs
from dwfs.snapshots._repack import repack
from dwfs.tiers import RemoteSuperblock, check_name
from dwfs.types import ChunkId, Plain, PoolServices, RemoteAddr

log = logging.getLogger(__name__)

UPLOAD_BATCH = 4096
"""Chunks one look for pending uploads takes at most."""
MAX_MANIFEST = 64 << 20
MAX_IMAGE = 1 << 34
MAX_SEGMENT = 256 << 20
"""The largest journal segment read back (the tail that makes one is 64 MiB)."""
COMMIT_TRIES = 3


@dataclasses.dataclass(frozen=True)
class RemoteJournal:
    """Where the remote's journal stands: the copy it follows (generation and
    manifest), the last txg it holds, and the next segment's number and link."""

    generation: int
    manifest: str
    txg: int
    seq: int = 0
    prev: bytes = b""


async def upload_pending(meta: Metadata, pool: PoolServices, tier: Tier) -> int:
    """Upload every live local chunk the remote lacks, committing where each went;
    how many went up. Raises RemoteError or TierUnavailable when the remote
    fails (what was stored before stays recorded)."""
    total = 0
    while pending := meta.remote_rows.pending(UPLOAD_BATCH):
        placed = await tier.upload(pending)
        if not placed:
            break
        with meta.db.transaction():
            meta.remote_rows.place(placed)
        pool.store.learn_remote(placed)
        await meta.commit()
        total += len(placed)
        if len(placed) < len(pending):
            break  # unreadable stripes stay pending, for scrub to mend
    return total


async def upload_journal(meta: Metadata, tier: Tier, journal: RemoteJournal) -> RemoteJournal:
    """Send the txgs committed since the remote's journal ends as its next
    segment, when every chunk they leave live is on the remote; where the
    journal stands after (unchanged when nothing could be sent)."""
    tail = meta.tail
    assert tail is not None, "the remote's journal needs the metadata's tail"
    for _ in range(COMMIT_TRIES):
        if (settled := meta.settled_txg()) is not None:
            break
        await meta.commit()
    else:
        return journal
    # No await from here until the txgs are taken: no live chunk lacking its
    # remote copy now means none at the settled txg either.
    if meta.remote_rows.pending(1):
        return journal
    txgs = tail.after(journal.txg, settled)
    if not txgs:
        return journal
    pool = meta.pool.id
    body = await trio.to_thread.run_sync(pack_txgs, txgs)
    sealed = tier.seal_segment(pool, journal.manifest, journal.seq, journal.prev, body)
    await tier.put(tier.segment_name(pool, journal.manifest, journal.seq), sealed)
    last = txgs[-1][0]
    tail.drop_through(last)
    log.debug("journal segment %d to txg %d on %s", journal.seq, last, tier.url)
    return dataclasses.replace(journal, txg=last, seq=journal.seq + 1, prev=tag_of(sealed))


def _manifest(pool: str, txg: int, placed: list[tuple[ChunkId, int, RemoteAddr]]) -> bytes:
    chunks = [[c.hex(), n, w.pack.hex(), w.offset, w.length] for c, n, w in placed]
    return json.dumps({"pool": pool, "txg": txg, "chunks": chunks}).encode()


def parse_manifest(pool: str, body: bytes) -> tuple[int, list[tuple[ChunkId, int, RemoteAddr]]]:
    """(txg, [(chunk, plaintext length, where)]) of an opened remote manifest.

    Raises:
        IntegrityError: it is not of our shape.
    """
    try:
        obj = json.loads(body)
        if obj["pool"] != pool or type(obj["txg"]) is not int or obj["txg"] < 0:
            raise ValueError("another pool's")
        chunks = []
        for cid, length, pack, offset, sealed in obj["chunks"]:
            numbers = (length, offset, sealed)
            if not all(type(n) is int and 0 <= n < 1 << 40 for n in numbers):
                raise ValueError("not counts")
            chunk, pack_id = bytes.fromhex(cid), bytes.fromhex(pack)
            if len(chunk) != 32 or len(pack_id) != 16:
                raise ValueError("not ids")
            chunks.append((ChunkId(chunk), length, RemoteAddr(pack_id, offset, sealed)))
    except (ValueError, KeyError, TypeError, RecursionError):
        raise IntegrityError("the remote's manifest is malformed") from None
    if sum(n for _, n, _ in chunks) > MAX_IMAGE:
        raise IntegrityError("the remote's manifest names an image larger than any dwfs makes")
    return int(obj["txg"]), chunks


async def sync(meta: Metadata, pool: Pool, tier: Tier) -> dict[str, Any]:
    """Make the remote a complete, mountable copy of the pool as it is now."""
    started = time.monotonic()
    uploaded = await upload_pending(meta, pool, tier)
    repacked = await repack(meta, pool, tier)
    await meta.checkpoint()
    image, txg = list(meta.checkpoint_image), meta.checkpoint_txg
    placed = await tier.upload([(r.chunk_id, r.addr) for r in image])
    if len(placed) != len(image):
        raise IntegrityError("the metadata checkpoint cannot be read back: run `dwfsctl scrub`")
    where = dict(placed)
    previous = await tier.read_superblock(pool.id)
    seen = pool.last_remote_generation()
    _check_writer(tier.url, previous, seen, pool.remote_intent())
    generation = max(previous.generation if previous else 0, seen) + 1
    body = _manifest(pool.id, txg, [(r.chunk_id, r.length, where[r.chunk_id]) for r in image])
    name = f"manifests/{secrets.token_hex(16)}"
    sealed = tier.seal_manifest(pool.id, generation, body)
    await tier.put(name, sealed)
    config = {**pool.public_config(), "manifest": name, "txg": txg}
    pool.record_remote_intent(generation, name)
    await tier.write_superblock(RemoteSuperblock(pool.id, generation, config))
    pool.record_remote_generation(generation)
    removed = 0
    if previous is not None:
        await _forget_manifest(tier, previous)
        await _forget_journal(tier)
        live = {where.pack for _, where in meta.remote_rows.all()} | {
            w.pack for w in where.values()
        }
        removed = await _remove_dead_packs(tier, live)
    log.info("remote copy at generation %d (txg %d): %d chunks uploaded", generation, txg, uploaded)
    return {
        "url": tier.url,
        "generation": generation,
        "manifest": name,
        "txg": txg,
        "chunks_uploaded": uploaded,
        "packs_repacked": repacked.packs,
        "bytes_repacked": repacked.bytes,
        "packs_removed": removed,
        "seconds": round(time.monotonic() - started, 3),
    }


def _check_writer(
    url: str, previous: RemoteSuperblock | None, seen: int, intent: tuple[int, str] | None
) -> None:
    """Refuse to write over a remote that another machine wrote since this one
    last did (the pool was attached elsewhere and used there: two writers would
    each delete what the other needs), or that was rolled back. A copy this
    machine's last sync wrote but did not live to record (its intent names the
    generation and the random manifest name) is this machine's own."""
    if previous is None or previous.generation == seen:
        return
    if intent is not None and intent == (previous.generation, previous.config.get("manifest")):
        log.info("%s holds the copy this machine's last sync wrote before it stopped", url)
        return
    if previous.generation < seen:
        raise IntegrityError(
            f"{url} holds generation {previous.generation} of the pool, but this machine "
            f"wrote generation {seen} there: the remote was rolled back; sync to a new remote"
        )
    if seen:
        raise IntegrityError(
            f"{url} holds generation {previous.generation} of the pool, written elsewhere "
            f"after this machine's generation {seen}: the pool is in use on another machine; "
            "attach it anew here, or remove this remote and add an empty one"
        )
    log.warning("no record of %s on this machine: taking over its copy", url)


async def _remove_dead_packs(tier: Tier, live: set[bytes]) -> int:
    """Delete the packs no chunk of the newest copy lies in (those of deleted data,
    of older metadata checkpoints, and of uploads a crash cut off); how many."""
    names = await tier.list("packs/")
    keep = {pack_name(p) for p in live}
    dead = [n for n in names if n not in keep and n.count("/") == 2]
    for name in dead:
        try:
            await tier.delete(check_name(name))
        except DwfsError as exc:
            log.warning("a dead pack on %s stays: %s", tier.url, exc)
            return dead.index(name)
    if dead:
        log.info("removed %d packs no chunk needs from %s", len(dead), tier.url)
    return len(dead)


async def _forget_manifest(tier: Tier, previous: RemoteSuperblock) -> None:
    old = previous.config.get("manifest")
    if not isinstance(old, str):
        return
    try:
        await tier.delete(check_name(old))
    except DwfsError as exc:  # a leftover manifest is garbage, never a failed sync
        log.warning("the previous manifest on %s stays: %s", tier.url, exc)


async def _forget_journal(tier: Tier) -> None:
    """Delete the segments of earlier copies' journals (a sync starts a new one,
    and holds the lock under which segments are sent, so none is the new one's)."""
    for name in await tier.list("journal/"):
        try:
            await tier.delete(check_name(name))
        except DwfsError as exc:
            log.warning("an old journal segment on %s stays: %s", tier.url, exc)
            return


async def load_journal(tier: Tier, sb: RemoteSuperblock) -> list[tuple[int, list[Statement]]]:
    """The txgs of the remote's journal after the copy sb names, in order.

    Raises:
        IntegrityError: a segment was changed, swapped or moved on the remote.
    """
    manifest = str(sb.config.get("manifest"))
    txgs: list[tuple[int, list[Statement]]] = []
    prev, seq = b"", 0
    while (
        sealed := await tier.get(tier.segment_name(sb.pool, manifest, seq), MAX_SEGMENT)
    ) is not None:
        try:
            body = tier.open_segment(sb.pool, manifest, seq, prev, sealed)
        except IntegrityError:
            raise IntegrityError(
                f"segment {seq} of the metadata journal on {tier.url} fails authentication: "
                "it was changed there"
            ) from None
        txgs += await trio.to_thread.run_sync(unpack_txgs, body)
        prev, seq = tag_of(sealed), seq + 1
    return txgs


async def load_image(tier: Tier, sb: RemoteSuperblock) -> tuple[int, bytes]:
    """(txg, metadata image) of the copy a verified remote superblock names."""
    name = sb.config.get("manifest")
    if not isinstance(name, str):
        raise RemoteError(f"{tier.url} holds a pool that was never synced: run `dwfsctl sync`")
    sealed = await tier.get(check_name(name), MAX_MANIFEST)
    if sealed is None:
        raise IntegrityError(f"the manifest {name} is missing from {tier.url}")
    body = tier.open_manifest(sb.pool, sb.generation, sealed)
    txg, chunks = parse_manifest(sb.pool, body)
    parts: list[Plain] = [b""] * len(chunks)

    async def one(i: int, cid: ChunkId, length: int, where: RemoteAddr) -> None:
        data = await tier.fetch_plain(cid, where)
        if len(data) != length:
            raise IntegrityError(f"a chunk of the metadata on {tier.url} has the wrong length")
        parts[i] = data

    async with trio.open_nursery() as nursery:
        for i, (cid, length, where) in enumerate(chunks):
            nursery.start_soon(one, i, cid, length, where)
    return txg, b"".join(parts)


async def attach(
    url: str, paths: list[Path], credential: Credential, layout: str | None = None
) -> dict[str, Any]:
    """Make new devices for the pool on a remote, with its whole tree and every
    chunk remote-only; what was attached."""
    pool_id, sb = await read_remote(url, credential)
    await trio.to_thread.run_sync(lambda: create_attached(paths, credential, sb, layout))
    async with open_pool(paths[0], credential) as pool:
        tier = pool.connect(url)
        txg, image = await load_image(tier, sb)
        journal = await load_journal(tier, sb)
        meta = await Metadata.adopt(pool, image, txg, journal)
        meta.remote_rows.set_url(url)
        await meta.commit()
        files = meta.rows.inode_count()
    return {
        "pool": pool_id,
        "url": url,
        "generation": sb.generation,
        "txg": journal[-1][0] if journal else txg,
        "journal_txgs": len(journal),
        "inodes": files,
    }
