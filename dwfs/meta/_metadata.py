"""Metadata that survives anything the pool survives: journal, checkpoints, replay.

The truth lives in the pool. A commit makes the data stripes of a txg durable,
then appends the txg's sealed journal record to every device and fsyncs it
(group commit: callers whose changes are already in a committed txg return at
once). A checkpoint stores the whole database image as ordinary chunks (unchanged
pages deduplicate against the previous checkpoint), records its manifest in the
superblock ring and starts a new journal epoch; older epochs are then deleted.
Opening loads the newest checkpoint and replays the journal epochs after it.

Freshness: every mount's epoch gets a random id, recorded (with the tag of the
record it continues from) in the MAC'd superblock ring before its first record;
records are chained (each authenticates the one before), and this machine
records the chain head (txg, epoch id, tag) at every commit. Opening refuses a
journal that breaks the chain, ends before the recorded head, or holds another
record at its txg.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import secrets
import time
from typing import Any

import trio

from dwfs.chunks import HEAD_COPY_LIMIT
from dwfs.errors import FormatError, IntegrityError
from dwfs.meta import _journal
from dwfs.meta._chunk_rows import ChunkRows, RemoteRows
from dwfs.meta._db import MetaDB, Statement
from dwfs.meta._ops import KEEPING_CHUNKS
from dwfs.meta._rows import TreeRows
from dwfs.meta._snapshot_rows import SnapshotRows
from dwfs.meta._tail import Tail
from dwfs.types import ChainHead, ChunkId, ChunkRef, Plain, PoolServices, StripeAddr

log = logging.getLogger(__name__)

CHECKPOINT_AFTER_BYTES = 12 * 1024 * 1024
"""Journal bytes after which a checkpoint is due. Every device holds the whole
journal, in the 16 MiB each keeps in reserve for it (devices.RESERVE), and since
fsyncs log small writes' bytes there (the intent log) it grows with data too;
a checkpoint trims it."""
INLINE_STATEMENTS = 64
"""Journal records of more statements are encoded and sealed in a worker thread."""
INLINE_APPEND_SECONDS = 0.002
"""A commit appends its record from the trio thread itself when nothing else is
ready to run there and the last append took less than this: handing it to a
worker thread costs two cross-thread wake-ups, 0.3-0.5 ms on an idle machine
here, more than the flushes themselves (docs/performance.md). A slow device (a
disk spinning up, a network share) sends the next appends to worker threads,
so requests are not held behind it."""


def _addr_json(addr: StripeAddr) -> list[int]:
    return [addr.seq, addr.segment, addr.offset, addr.shard_len, addr.sealed_len]


def _ref_json(ref: ChunkRef) -> list[Any]:
    return [ref.chunk_id.hex(), ref.length, _addr_json(ref.addr)]


def _ref(obj: Any) -> ChunkRef:
    """A chunk reference as a checkpoint entry or manifest lists it.

    Raises:
        IntegrityError: it is not of that shape.
    """
    try:
        cid, length, addr = obj
        fields = [length, *addr]
        if len(addr) != 5 or not all(type(f) is int and 0 <= f < 1 << 63 for f in fields):
            raise ValueError("not counts")
        chunk_id = bytes.fromhex(cid)
        if len(chunk_id) != 32:
            raise ValueError("not a chunk id")
    except (ValueError, TypeError):
        raise IntegrityError("a checkpoint's chunk reference is malformed") from None
    return ChunkRef(ChunkId(chunk_id), length, StripeAddr(*addr))


def parse_manifest(data: Plain) -> list[ChunkRef]:
    """The chunks of a checkpoint's image, from its (authenticated) manifest.

    Raises:
        IntegrityError: the manifest is not of our shape.
    """
    try:
        body = json.loads(data)
        chunks = body["chunks"]
        if not isinstance(chunks, list):
            raise TypeError("chunks is not a list")
    except (ValueError, KeyError, TypeError, RecursionError):
        raise IntegrityError("the metadata checkpoint's manifest is malformed") from None
    return [_ref(r) for r in chunks]


@dataclasses.dataclass(frozen=True)
class Epoch:
    """One mount's journal epoch as the superblock ring records it: its number (the
    file's name), its random id (bound into every record) and the tag of the
    record the epoch continues from."""

    number: int
    id: bytes
    prev: bytes

    def to_json(self) -> dict[str, Any]:
        return {"n": self.number, "id": self.id.hex(), "prev": self.prev.hex()}

    @classmethod
    def from_json(cls, obj: Any) -> Epoch:
        try:
            return cls(int(obj["n"]), bytes.fromhex(obj["id"]), bytes.fromhex(obj["prev"]))
        except (KeyError, TypeError, ValueError):
            raise IntegrityError("the superblock's journal epoch list is malformed") from None


@dataclasses.dataclass
class _ClosedTxg:
    """A txg closed for a commit, and how far its commit got."""

    number: int
    statements: list[Statement]
    record: bytes | None = None
    """Its sealed journal record, once encoded (a retry appends the same bytes)."""
    on_devices: bool = False
    """Whether the devices hold the record durably (only the head is left)."""


class Metadata:
    """The metadata database of one open pool, with its journal and checkpoints."""

    def __init__(self, pool: PoolServices, db: MetaDB, epoch: Epoch, epochs: list[Epoch]) -> None:
        self.pool = pool
        self.db = db
        self.rows = TreeRows(db)
        self.chunk_rows = ChunkRows(db)
        self.remote_rows = RemoteRows(db)
        self.snapshot_rows = SnapshotRows(db)
        self.epoch = epoch
        self.epochs = epochs
        """The epochs since the current checkpoint, this one last."""
        self.head = epoch.prev
        """The tag of the newest durable record: the next record's link."""
        self.durable_txg = db.txg
        self.journal_bytes = 0
        """Journal bytes written since the last checkpoint."""
        self.records = 0
        self.checkpoints = 0
        """Journal records and checkpoints this open wrote."""
        self.append_seconds = 0.0
        """How long the last record's appends took, flushes and chain head included."""
        self.checkpoint_segments: set[int] = set()
        """Segments holding the current checkpoint, which garbage collection must keep."""
        self.checkpoint_image: list[ChunkRef] = []
        """The chunks of the current checkpoint's image, in order (when this process
        wrote it)."""
        self.checkpoint_txg = db.txg
        """The txg the current checkpoint's image holds (when this process wrote it)."""
        self.warnings: list[str] = []
        """What the mount should tell its user (a freshness check it could not make)."""
        self.tail: Tail | None = None
        """The txgs closed since keep_tail, for the remote's journal."""
        self._unfinished: _ClosedTxg | None = None
        """The closed txg being committed, or whose commit failed: the next commit
        finishes it first, so the journal never skips a txg nor holds two records
        of one (and a failed fsync loses nothing the next one cannot make durable)."""
        self._lock = trio.Lock()

    @classmethod
    async def open(cls, pool: PoolServices) -> Metadata:
        """Load the newest checkpoint, replay the journal after it, check the result
        against this machine's record of the chain, and start a new epoch.

        Raises:
            IntegrityError: the journal was cut, spliced or rolled back, or holds
                operations that do not apply.
            FormatError: the journal holds records of an older dwfs's format.
        """
        checkpoint = pool.config.get("checkpoint")
        chunks: list[ChunkRef] = []
        if checkpoint:
            chunks = parse_manifest(await pool.store.get(*_locate(checkpoint["manifest"])))
            image = await pool.store.read(chunks)
            db = MetaDB(image, txg=int(checkpoint["txg"]))
            first = int(checkpoint["epoch"])
            tag = bytes.fromhex(str(checkpoint.get("tag", "")))
        else:
            db, first, tag = MetaDB(), 0, b""
        journal = pool.config.get("journal", {})
        epochs = [Epoch.from_json(e) for e in journal.get("epochs", [])]
        epochs = [e for e in epochs if e.number >= first]
        listed = pool.journal.journal_epochs()
        await _refuse_legacy(pool, listed, first, {e.number for e in epochs})
        replay = _Replay(db, tag, pool.chain_head())
        for epoch in epochs:
            copies = await trio.to_thread.run_sync(pool.journal.journal_copies, epoch.number)
            replay.epoch(pool, epoch, copies)
        meta_warnings = replay.verdict(pool.id)
        pool.store.learn(ChunkRows(db).live())
        pool.store.forget_local(ChunkRows(db).not_local())
        pool.store.learn_remote(RemoteRows(db).all())
        log.info("metadata at txg %d after replaying %d journal epochs", db.txg, len(epochs))
        number = max([first - 1, *(e.number for e in epochs), *listed]) + 1
        epoch = Epoch(number, secrets.token_bytes(_journal.EPOCH_ID_SIZE), replay.tag)
        meta = cls(pool, db, epoch, [*epochs, epoch])
        meta.warnings = meta_warnings
        if checkpoint:
            meta.checkpoint_segments = {r.addr.segment for r in chunks}
            meta.checkpoint_segments.add(_ref(checkpoint["manifest"]).addr.segment)
        if replay.restored:
            message = (
                f"pool {pool.id}'s devices lacked the journal record of txg {replay.restored} "
                "(a crash while it was written, or it was cut from them): restored from this "
                "machine's copy"
            )
            log.warning("%s", message)
            meta.warnings.append(message)
            await meta.checkpoint()  # the devices' journal lacks it: only a checkpoint holds it
        else:
            await meta._announce_epoch()
        if replay.head is None or replay.head.txg < db.txg:
            await meta._record_head(replay.last_epoch_id, replay.tag)
        return meta

    @classmethod
    async def adopt(
        cls,
        pool: PoolServices,
        image: bytes,
        txg: int,
        journal: list[tuple[int, list[Statement]]] | None = None,
    ) -> Metadata:
        """The metadata of new, empty devices from an image made elsewhere (the
        pool's copy on its remote tier) and the txgs journaled after it: every
        chunk starts with no local copy, and the result becomes this pool's first
        checkpoint.

        Raises:
            IntegrityError: the journal does not follow the image or does not apply.
        """
        db = MetaDB(image, txg=txg)
        for number, statements in journal or []:
            _apply_next(db, number, statements, "the remote's journal", "it was changed there")
        epoch = Epoch(0, secrets.token_bytes(_journal.EPOCH_ID_SIZE), b"")
        meta = cls(pool, db, epoch, [epoch])
        await meta._announce_epoch()
        with db.transaction():
            meta.chunk_rows.evict_all()
        await meta.checkpoint()
        pool.store.learn_remote(meta.remote_rows.all())
        return meta

    def settled_txg(self) -> int | None:
        """The durable txg in which the same chunks are live and on the remote as
        in the rows now (so a question about those may be asked of the rows):
        None while a commit is under way, or while the open txg holds an
        operation that could end a chunk's life or change the remote table."""
        if self.durable_txg != self.db.txg or not self.db.pending_only(KEEPING_CHUNKS):
            return None
        return self.durable_txg

    def keep_tail(self) -> None:
        """Keep every txg closed from now on in self.tail (a pool with a remote)."""
        if self.tail is None:
            self.tail = Tail(self.db.txg)

    async def _announce_epoch(self, **changes: Any) -> None:
        """Record the epochs (this one last) in the superblock ring, before any record
        of the new epoch is written."""
        journal = {"epochs": [e.to_json() for e in self.epochs]}
        update = functools.partial(
            self.pool.update_config, epoch_id=self.epoch.id.hex(), journal=journal, **changes
        )
        await trio.to_thread.run_sync(update)

    async def _record_head(self, epoch_id: bytes, tag: bytes) -> None:
        head = ChainHead(self.db.txg, epoch_id, tag)
        await trio.to_thread.run_sync(self.pool.record_chain_head, head)

    async def commit(self) -> None:
        """Make every change made so far durable (group commit)."""
        target = self.db.txg if not self.db.has_pending() else self.db.open_txg
        async with self._lock:
            if self.durable_txg >= target:
                return
            with trio.CancelScope(shield=True):  # a commit begun is a commit finished
                await self._commit_locked()

    def commit_now(self) -> bool:
        """commit() without waiting, when nothing stands in its way (no commit
        under way or left unfinished, nothing stored left to sync, a small txg,
        appends fast enough for this thread): whether it did. An fsync of logged
        writes usually is."""
        if self._lock.locked() or self._unfinished is not None or not self.pool.store.durable_now():
            return False
        if not self.db.has_pending():
            return True
        if self.db.pending_statements > INLINE_STATEMENTS or not self._append_inline():
            return False
        txg = self._close_txg()
        txg.record = _journal.encode(*self._record_args(txg))
        self._append_now(txg)
        self._committed(txg)
        return True

    async def _commit_locked(self) -> None:
        """Finish the txg a failed commit left, then commit the open one."""
        if self._unfinished is not None:
            await self._finish(self._unfinished)
        if self.db.has_pending():
            await self._finish(self._close_txg())

    def _close_txg(self) -> _ClosedTxg:
        txg = _ClosedTxg(*self.db.take_pending())
        self._unfinished = txg
        return txg

    async def _finish(self, txg: _ClosedTxg) -> None:
        await self.pool.store.sync()
        if txg.record is None:
            args = self._record_args(txg)
            if len(txg.statements) > INLINE_STATEMENTS:  # encoding it would stall requests
                txg.record = await trio.to_thread.run_sync(_journal.encode, *args)
            else:
                txg.record = _journal.encode(*args)
        if self._append_inline():
            self._append_now(txg)
        else:
            await trio.to_thread.run_sync(self._append_now, txg)
        self._committed(txg)

    def _record_args(self, txg: _ClosedTxg) -> tuple[Any, ...]:
        key, pool = self.pool.metadata_key, self.pool.id
        return (key, pool, self.epoch.id, txg.number, self.head, txg.statements)

    def _committed(self, txg: _ClosedTxg) -> None:
        assert txg.record is not None
        self._unfinished = None
        if self.tail is not None:
            self.tail.add(txg.number, txg.statements, len(txg.record))
        self.head = _journal.tag_of(txg.record)
        self.durable_txg = txg.number
        self.journal_bytes += len(txg.record)
        self.records += 1

    def _append_now(self, txg: _ClosedTxg) -> None:
        """Append a txg's record to every online device, durably on m + 1 of them,
        and record the new chain head on this machine, all flushed at once.

        The head carries a copy of its record, so it may be durable before the
        devices' copies: a crash between leaves a head whose record the devices
        lack, and the next mount restores the record from the copy (_Replay)
        rather than taking the devices for rolled back. A record too large to
        copy (HEAD_COPY_LIMIT) is flushed on the devices first and the head
        after it. Usually this runs on the trio thread (INLINE_APPEND_SECONDS).

        When a step fails, the retry repeats what did not happen with the same
        bytes: the devices' records in the same places (they advance only when
        the record is durable), or the head alone."""
        began = time.perf_counter()
        record = txg.record
        assert record is not None
        head = ChainHead(txg.number, self.epoch.id, _journal.tag_of(record))
        if len(record) <= HEAD_COPY_LIMIT:
            head = dataclasses.replace(head, record=record)
        if not txg.on_devices:
            also = [self.pool.chain_head_write(head)] if head.record else []
            errors = self.pool.journal.append_journal(self.epoch.number, record, also)
            txg.on_devices = True
            if also and not any(errors):
                self.append_seconds = time.perf_counter() - began
                return
        self.pool.record_chain_head(head)
        self.append_seconds = time.perf_counter() - began

    def _append_inline(self) -> bool:
        """Whether this commit's appends run on the trio thread (INLINE_APPEND_SECONDS)."""
        return (
            self.append_seconds < INLINE_APPEND_SECONDS
            and trio.lowlevel.current_statistics().tasks_runnable == 0
        )

    @property
    def checkpoint_due(self) -> bool:
        return self.journal_bytes >= CHECKPOINT_AFTER_BYTES

    async def checkpoint(self) -> None:
        """Store the database image in the pool and point the superblocks at it.

        Not cancellable once begun: a checkpoint cut between its superblock and
        its new epoch would leave the two disagreeing."""
        with trio.CancelScope(shield=True):
            await self._checkpoint()

    async def _checkpoint(self) -> None:
        async with self._lock:
            await self._commit_locked()
            if self.db.has_pending():
                # Other tasks changed rows while the commit waited. The image holds
                # their changes, so their txg closes here, kept by the checkpoint:
                # journaled after it as well, replay would apply them twice.
                txg, statements = self.db.take_pending()
                if self.tail is not None:
                    self.tail.add(txg, statements)
            txg, image = self.db.txg, self.db.image()
            refs = await self.pool.store.put(image)
            manifest = json.dumps({"txg": txg, "chunks": [_ref_json(r) for r in refs]}).encode()
            mref = await self.pool.store.put_chunk(manifest)
            await self.pool.store.sync()
            epoch = Epoch(
                self.epoch.number + 1, secrets.token_bytes(_journal.EPOCH_ID_SIZE), self.head
            )
            entry = {
                "txg": txg,
                "epoch": epoch.number,
                "manifest": _ref_json(mref),
                "tag": self.head.hex(),
            }
            self.epoch, self.epochs = epoch, [epoch]
            await self._announce_epoch(checkpoint=entry)
            self.durable_txg = txg
            self.checkpoint_txg = txg
            self.journal_bytes = 0
            self.checkpoints += 1
            self.checkpoint_segments = {r.addr.segment for r in [*refs, mref]}
            self.checkpoint_image = refs
            await trio.to_thread.run_sync(self.pool.journal.trim_journals, epoch.number)
            log.info("checkpoint at txg %d: %d bytes in %d chunks", txg, len(image), len(refs))


class _Replay:
    """Replay of the journal's epochs in order, following the chain of tags, and
    the freshness verdict against this machine's record of the chain head."""

    def __init__(self, db: MetaDB, tag: bytes, head: ChainHead | None) -> None:
        self.db = db
        self.tag = tag
        self.head = head
        self.last_epoch_id = b""
        self.seen_head = head is not None and head.txg <= db.txg and head.tag == tag
        self.checkpoint_txg = db.txg
        self.restored = 0
        """The txg whose record the devices lacked and this machine's copy gave."""

    def epoch(self, pool: PoolServices, epoch: Epoch, copies: list[bytes]) -> None:
        if epoch.prev != self.tag:
            raise IntegrityError(
                f"the metadata journal of pool {pool.id} is broken before epoch {epoch.number}: "
                "records were cut or deleted on every device, so fsync'd changes are missing; "
                "restore the devices from a copy"
            )
        key = pool.metadata_key
        for record in _journal.best_chain(key, pool.id, epoch.id, self.tag, copies):
            self._apply(pool.id, epoch, record)
        head = self.head
        if head is not None and head.epoch_id == epoch.id and head.txg == self.db.txg + 1:
            for record in _journal.decode_chain(key, pool.id, epoch.id, self.tag, head.record):
                self._apply(pool.id, epoch, record)
                self.restored = record.txg

    def _apply(self, pool: str, epoch: Epoch, record: _journal.Record) -> None:
        _apply_next(
            self.db,
            record.txg,
            record.statements,
            f"the metadata journal of pool {pool}",
            "run `dwfsctl scrub` and report it",
        )
        self.tag, self.last_epoch_id = record.tag, epoch.id
        if self.head is not None and record.txg == self.head.txg:
            if (record.tag, epoch.id) != (self.head.tag, self.head.epoch_id):
                raise IntegrityError(
                    f"pool {pool}'s metadata journal at txg {record.txg} is not the one "
                    "this machine committed: the devices carry another history; restore "
                    "them from a copy"
                )
            self.seen_head = True

    def verdict(self, pool: str) -> list[str]:
        """Refuse a chain shorter than this machine's record; the warnings to show."""
        if self.head is None:
            message = (
                f"no record of pool {pool} on this machine: freshness cannot be checked "
                "this time (a rolled-back journal would go unnoticed)"
            )
            log.warning("%s", message)
            return [message]
        if self.head.txg > self.db.txg:
            raise IntegrityError(
                f"pool {pool}'s metadata journal ends at txg {self.db.txg}, but this machine "
                f"committed txg {self.head.txg}: fsync'd changes were cut from every device "
                "(rolled back); restore the devices, or if you restored them on purpose, "
                "mount with -o accept_rollback"
            )
        if not self.seen_head and self.head.txg >= self.checkpoint_txg:
            raise IntegrityError(
                f"pool {pool}'s metadata journal does not hold txg {self.head.txg} as this "
                "machine committed it: the devices carry another history; restore them"
            )
        return []


def _apply_next(
    db: MetaDB, txg: int, statements: list[Statement], journal: str, advice: str
) -> None:
    """Apply txg's statements, which must follow the db's txg: a journal that
    skips one was changed (a txg cut out of it cannot be told from a rollback)."""
    if txg != db.txg + 1:
        raise IntegrityError(f"{journal} skips from txg {db.txg} to {txg}: {advice}")
    db.apply(txg, statements)


async def _refuse_legacy(
    pool: PoolServices, listed: list[int], first: int, known: set[int]
) -> None:
    """Refuse records of the first journal format, which replay cannot trust."""
    for number in listed:
        if number < first or number in known:
            continue
        copies = await trio.to_thread.run_sync(pool.journal.journal_copies, number)
        if any(_journal.is_legacy(c) for c in copies):
            raise FormatError(
                f"pool {pool.id} holds journal records of an older dwfs (epoch {number}): "
                "mount it once with that version and unmount it cleanly, then use this one"
            )


def _locate(obj: list[Any]) -> tuple[ChunkId, StripeAddr]:
    ref = _ref(obj)
    return ref.chunk_id, ref.addr
