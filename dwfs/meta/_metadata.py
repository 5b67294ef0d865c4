"""Metadata that survives anything the pool survives: journal, checkpoints, replay.

The truth lives in the pool. A commit makes the data stripes of a txg durable,
then appends the txg's sealed journal record to every device and fsyncs it
(group commit: callers whose changes are already in a committed txg return at
once). A checkpoint stores the whole database image as ordinary chunks (unchanged
pages deduplicate against the previous checkpoint), records its manifest in the
superblock ring and starts a new journal epoch; older epochs are then deleted.
Opening loads the newest checkpoint and replays the journal epochs after it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import trio

from dwfs.chunks import ChunkRef, Pool
from dwfs.errors import IntegrityError
from dwfs.meta import _journal
from dwfs.meta._db import MetaDB
from dwfs.types import ChunkId, StripeAddr

log = logging.getLogger(__name__)

CHECKPOINT_AFTER_BYTES = 64 * 1024 * 1024
"""Journal bytes after which a checkpoint is due."""
INLINE_STATEMENTS = 64
"""Journal records of more statements are encoded and sealed in a worker thread."""


def _addr_json(addr: StripeAddr) -> list[int]:
    return [addr.seq, addr.segment, addr.offset, addr.shard_len, addr.sealed_len]


def _ref_json(ref: ChunkRef) -> list[Any]:
    return [ref.chunk_id.hex(), ref.length, _addr_json(ref.addr)]


def _ref(obj: list[Any]) -> ChunkRef:
    return ChunkRef(ChunkId(bytes.fromhex(obj[0])), int(obj[1]), StripeAddr(*obj[2]))


class Metadata:
    """The metadata database of one open pool, with its journal and checkpoints."""

    def __init__(self, pool: Pool, db: MetaDB, epoch: int) -> None:
        self.pool = pool
        self.db = db
        self.epoch = epoch
        self.durable_txg = db.txg
        self.journal_bytes = 0
        self.checkpoint_segments: set[int] = set()
        """Segments holding the current checkpoint, which garbage collection must keep."""
        self._lock = trio.Lock()

    @classmethod
    async def open(cls, pool: Pool) -> Metadata:
        """Load the newest checkpoint and replay the journal after it."""
        checkpoint = pool.array.config.get("checkpoint")
        if checkpoint:
            manifest = json.loads(await pool.store.get(*_locate(checkpoint["manifest"])))
            image = await pool.store.read([_ref(r) for r in manifest["chunks"]])
            db = MetaDB(image, txg=int(checkpoint["txg"]))
            first_epoch = int(checkpoint["epoch"])
        else:
            db = MetaDB()
            first_epoch = 0
        epochs = [e for e in pool.array.journal_epochs() if e >= first_epoch]
        for epoch in epochs:
            copies = await trio.to_thread.run_sync(pool.array.journal_copies, epoch)
            for txg, statements in _journal.best_chain(pool.keys.metadata, pool.id, epoch, copies):
                if txg <= db.txg:
                    continue
                if txg != db.txg + 1:
                    raise IntegrityError(
                        f"the metadata journal of pool {pool.id} skips from txg {db.txg} to "
                        f"{txg}: run `dwfsctl scrub` and report it"
                    )
                db.apply(txg, statements)
        live = "SELECT id, seq, segment, offset, shard_len, sealed_len FROM chunks WHERE refs > 0"
        for row in db.query(live):
            pool.store.index.assign(ChunkId(row[0]), StripeAddr(*row[1:]))
        log.info("metadata at txg %d after replaying %d journal epochs", db.txg, len(epochs))
        meta = cls(pool, db, max([first_epoch - 1, *epochs]) + 1)
        if checkpoint:
            meta.checkpoint_segments = {_ref(r).addr.segment for r in manifest["chunks"]}
            meta.checkpoint_segments.add(_ref(checkpoint["manifest"]).addr.segment)
        return meta

    async def commit(self) -> None:
        """Make every change made so far durable (group commit)."""
        target = self.db.txg if not self.db.has_pending() else self.db.open_txg
        async with self._lock:
            if self.durable_txg >= target:
                return
            await self._commit_locked()

    async def _commit_locked(self) -> None:
        if not self.db.has_pending():
            return
        txg, statements = self.db.take_pending()
        await self.pool.store.sync()
        args = (self.pool.keys.metadata, self.pool.id, self.epoch, txg, statements)
        if len(statements) > INLINE_STATEMENTS:  # encoding a big txg would stall requests
            record = await trio.to_thread.run_sync(_journal.encode, *args)
        else:
            record = _journal.encode(*args)
        await trio.to_thread.run_sync(self.pool.array.append_journal, self.epoch, record)
        self.durable_txg = txg
        self.journal_bytes += len(record)

    @property
    def checkpoint_due(self) -> bool:
        return self.journal_bytes >= CHECKPOINT_AFTER_BYTES

    async def checkpoint(self) -> None:
        """Store the database image in the pool and point the superblocks at it."""
        async with self._lock:
            await self._commit_locked()
            txg, image = self.db.txg, self.db.image()
            refs = await self.pool.store.put(image)
            manifest = json.dumps({"txg": txg, "chunks": [_ref_json(r) for r in refs]}).encode()
            mref = await self.pool.store.put_chunk(manifest)
            await self.pool.store.sync()
            epoch = self.epoch + 1
            entry = {"txg": txg, "epoch": epoch, "manifest": _ref_json(mref)}
            await trio.to_thread.run_sync(lambda: self.pool.update_config(checkpoint=entry))
            self.epoch, self.journal_bytes = epoch, 0
            self.checkpoint_segments = {r.addr.segment for r in [*refs, mref]}
            await trio.to_thread.run_sync(self.pool.array.trim_journals, epoch)
            log.info("checkpoint at txg %d: %d bytes in %d chunks", txg, len(image), len(refs))


def _locate(obj: list[Any]) -> tuple[ChunkId, StripeAddr]:
    ref = _ref(obj)
    return ref.chunk_id, ref.addr
