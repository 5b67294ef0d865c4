"""The remote tier of a mounted volume: add, show, remove, sync, the background
uploader, and what each file's xattrs say of where its data is.

The uploader wakes every UPLOAD_INTERVAL seconds (and at once after `remote
add`), sends up what the remote lacks and commits where it went, and makes the
remote a complete copy at most every AUTO_SYNC_EVERY seconds when something
changed (the first time right after `remote add`); a failing
remote is retried with backoff doubling to BACKOFF_MAX, and never delays a
write, a read of local data, stat or readdir. Chunks fetched from the remote
are kept on the devices; the committer records where before it commits.

Files answer xattrs that listxattr does not list (so cp -a, rsync -X and
backups do not copy them): `user.dwfs.state` (`local`: every byte is here;
`remote`: none is; `partial`; `pending`: some of it is not uploaded yet) and
`user.dwfs.local_bytes`, read-only, and `user.dwfs.pinned` (`1`/`0`), which
setfattr may set like `dwfsctl pin`.

Pinned files (and new files in pinned directories) stay local: they are
fetched in the background and never evicted. The local cache is bounded by
`dwfsctl cache --max-size` and `--min-free`; past either, the committer evicts
the least recently read chunks that the remote holds (its row committed), that
no pinned file uses and no open file reads. Evicted stripes are reclaimed by
compaction and garbage collection like deleted data.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from dwfs import snapshots
from dwfs.chunks import Tier
from dwfs.errors import (
    DwfsError,
    IntegrityError,
    InvalidArgument,
    NoAttribute,
    NotFound,
    RemoteError,
    UsageError,
)
from dwfs.tiers import parse_url, probe
from dwfs.types import ChunkId, RemoteAddr
from dwfs.vfs import _snapshot_tree as snapdir
from dwfs.vfs._attrs import ROOT_INO

if TYPE_CHECKING:
    from dwfs.vfs._volume import Volume

log = logging.getLogger(__name__)

UPLOAD_INTERVAL = 5.0
AUTO_SYNC_EVERY = 600.0
"""A mounted pool with a remote makes the remote a complete copy (as `dwfsctl sync`
does) at most this often, whenever the metadata changed since the last one."""
BACKOFF_MAX = 300.0
COMPUTED = b"user.dwfs."
"""What the names of the xattrs computed rather than stored begin with."""
STATE = COMPUTED + b"state"
LOCAL_BYTES = COMPUTED + b"local_bytes"
PINNED = COMPUTED + b"pinned"
NAMES = (STATE, LOCAL_BYTES, PINNED)
EVICT_SLACK = 0.1
"""Eviction frees this share of the cache's size beyond what it must, so it does
not run again at every commit."""
HYDRATE_BATCH = 256
"""Chunks hydrate asks the store for at once (grouped into ranged GETs there)."""


def _place(where: RemoteAddr | None) -> tuple[bytes, int]:
    """Where a chunk lies on the remote, for ordering fetches pack by pack."""
    return (b"", 0) if where is None else (where.pack, where.offset)


class RemoteOps:
    def __init__(self, volume: Volume) -> None:
        self.volume = volume
        self.meta = volume.meta
        self.pool = volume.pool
        self.lock = trio.Lock()
        """Held by sync, add and remove, so the remote's copy is made by one at a time."""
        self._wake = trio.Event()
        self.last_error = ""
        self.last_sync: dict[str, Any] | None = None
        self.timeout: float | None = None
        self._synced_at: float | None = None
        self.journal: snapshots.RemoteJournal | None = None
        """Where the remote's journal stands, once this mount synced."""

    def connect_saved(self, timeout: float | None = None) -> None:
        """Use the remote the metadata names, if it names one; remote calls are
        abandoned after timeout seconds (the tier's default if None)."""
        self.timeout = timeout
        url = self.meta.remote_rows.url()
        if url is not None:
            self.meta.keep_tail()
            try:
                tier = self.pool.connect(url, timeout)
                tier.pacer.rate = self.meta.remote_rows.bwlimit()
            except DwfsError as exc:
                self.last_error = str(exc)
                log.error("the remote tier cannot be used: %s", exc)

    # -- commands ---------------------------------------------------------------

    async def add(self, url: str, bwlimit: int | None = None) -> dict[str, Any]:
        """Use url as the remote tier: checked (reachable, writable, empty or this
        pool's), recorded, and uploads start (at most bwlimit bytes a second)."""
        parse_url(url)
        async with self.lock:
            if self.meta.remote_rows.url() is not None:
                raise UsageError(
                    f"the pool already has the remote {self.meta.remote_rows.url()}: "
                    "remove it first"
                )
            tier = self.pool.connect(url, self.timeout)
            try:
                await trio.to_thread.run_sync(probe, tier.backend)
                await tier.read_superblock(self.pool.id)
            except BaseException:
                self.pool.disconnect()
                raise
            tier.pacer.rate = bwlimit
            self.meta.keep_tail()
            self.meta.remote_rows.set_url(url)
            self.meta.remote_rows.set_bwlimit(bwlimit)
            await self.meta.commit()
        self._wake.set()
        return self.show()

    async def remove(self) -> dict[str, Any]:
        """Stop using the remote tier; refused while some data is only there."""
        async with self.lock:
            url = self.meta.remote_rows.url()
            if url is None:
                raise NotFound("the pool has no remote tier")
            only_there = self.meta.remote_rows.totals()["remote_only"]
            if only_there:
                raise UsageError(
                    f"{only_there} chunks are only on {url}: hydrate every file "
                    "(`dwfsctl hydrate MOUNTPOINT`) before removing the remote"
                )
            with self.meta.db.transaction():
                self.meta.remote_rows.set_url(None)
                self.meta.remote_rows.set_bwlimit(None)
            await self.meta.commit()
            self.pool.store.forget_remote()
            self.pool.disconnect()
            self.journal, self.meta.tail = None, None
        return {"url": url, "removed": True}

    def show(self) -> dict[str, Any]:
        url = self.meta.remote_rows.url()
        if url is None:
            return {"url": None}
        pending, pending_bytes = self.meta.remote_rows.pending_totals()
        tier = self.pool.tier
        stats = dict(vars(tier.stats)) if tier is not None else {}
        return {
            "url": url,
            "pending_chunks": pending,
            "pending_bytes": pending_bytes,
            "chunks": self.meta.remote_rows.totals(),
            "generation": self.pool.last_remote_generation(),
            "bwlimit": self.meta.remote_rows.bwlimit(),
            "last_sync": self.last_sync,
            "journal_txg": None if self.journal is None else self.journal.txg,
            "last_error": self.last_error,
            "stats": stats,
        }

    def _sync_due(self) -> bool:
        tail, journal = self.meta.tail, self.journal
        if journal is not None and tail is not None and not tail.follows(journal.txg):
            return True  # the tail lost txgs the remote's journal lacks: only a copy helps
        synced = self.last_sync
        if synced is not None and self.meta.db.txg <= synced["txg"]:
            return False  # nothing changed since
        return self._synced_at is None or trio.current_time() - self._synced_at >= AUTO_SYNC_EVERY

    async def sync(self) -> dict[str, Any]:
        """Store every write, upload everything pending and make the remote a
        complete, mountable copy; what was done."""
        tier = self._tier()
        async with self.lock:
            await self.volume.sync_all()
            self.record_hydrated()
            result = await snapshots.sync_remote(self.meta, self.pool, tier)
            self.journal = snapshots.RemoteJournal(
                result["generation"], result["manifest"], result["txg"]
            )
            if self.meta.tail is not None:
                self.meta.tail.drop_through(result["txg"])
        self.last_sync, self.last_error = result, ""
        self._synced_at = trio.current_time()
        return result

    def _tier(self) -> Tier:
        if self.meta.remote_rows.url() is None:
            raise NotFound("the pool has no remote tier: add one with `dwfsctl remote add`")
        if self.pool.tier is None:
            raise RemoteError(f"the remote tier cannot be used: {self.last_error}")
        return self.pool.tier

    # -- background ----------------------------------------------------------------

    def record_hydrated(self) -> None:
        """Record where the chunks fetched from the remote are kept now."""
        taken = self.pool.store.take_hydrated()
        if taken:
            with self.meta.db.transaction():
                for cid, addr in taken:
                    self.meta.chunk_rows.move(cid, addr)

    async def run_uploader(
        self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        delay = 0.0  # at mount: check the remote's freshness and resume uploads at once
        checked: Tier | None = None
        while True:
            with trio.move_on_after(delay):
                await self._wake.wait()
            self._wake = trio.Event()
            tier = self.pool.tier
            if tier is None:
                delay = UPLOAD_INTERVAL
                continue
            try:
                if checked is not tier:
                    await self._check_fresh(tier)
                    checked = tier
                async with self.lock:
                    sent = await snapshots.upload_pending(self.meta, self.pool, tier)
                    if self.journal is not None:
                        self.journal = await snapshots.upload_journal(self.meta, tier, self.journal)
            except DwfsError as exc:
                delay = min(delay * 2, BACKOFF_MAX)
                if str(exc) != self.last_error:
                    log.warning(
                        "uploads to %s paused, retrying in %.0f s: %s", tier.url, delay, exc
                    )
                self.last_error = str(exc)
                continue
            if sent:
                log.info("uploaded %d chunks to %s", sent, tier.url)
            delay, self.last_error = UPLOAD_INTERVAL, ""
            if self._sync_due():
                try:
                    await self.sync()
                except DwfsError as exc:
                    self.last_error = str(exc)
                    log.warning("the periodic sync to %s failed: %s", tier.url, exc)

    async def _check_fresh(self, tier: Tier) -> None:
        """Refuse a remote rolled back below the generation this machine saw there
        (IntegrityError; uploads stop until the remote is replaced)."""
        found = await tier.read_superblock(self.pool.id)
        seen = self.pool.last_remote_generation()
        if found is not None and found.generation < seen:
            message = (
                f"{tier.url} holds generation {found.generation} of the pool, but this "
                f"machine saw generation {seen} there: the remote was rolled back; uploads "
                "stop (remove it and add a new remote)"
            )
            log.error("%s", message)
            raise IntegrityError(message)

    # -- xattrs ---------------------------------------------------------------------

    def xattr(self, ino: int, name: bytes) -> bytes:
        """The value of one of NAMES for a file."""
        chunks = self._chunks(ino)
        store = self.pool.store
        local_bytes = sum(n for c, n in chunks if store.is_local(c))
        if name == LOCAL_BYTES:
            return str(local_bytes + self._inline_bytes(ino)).encode()
        if name != STATE:
            raise NoAttribute("no such attribute")
        remote = self.meta.remote_rows.url() is not None
        unsent = remote and any(store.is_local(c) and store.on_remote(c) is None for c, _ in chunks)
        if self.volume.has_unstored_writes(ino) or unsent:
            return b"pending"
        if all(store.is_local(c) for c, _ in chunks):
            return b"local"
        return b"remote" if local_bytes == 0 else b"partial"

    def _chunks(self, ino: int) -> list[tuple[ChunkId, int]]:
        end = 1 << 62
        return [(ChunkId(c), n) for _, n, c, _ in self.volume.tree.rows.extents(ino, 0, end)]

    def _inline_bytes(self, ino: int) -> int:
        data = self.volume.tree.rows.inline(ino)
        return 0 if data is None else len(data)

    # -- pins, hydration, eviction -------------------------------------------------

    def resolve(self, path: bytes) -> int:
        """The live inode at a path relative to the root.

        Raises:
            NotFound: nothing is there. ReadOnly: it is under .snapshots.
        """
        ino = ROOT_INO
        for part in [p for p in path.split(b"/") if p not in (b"", b".")]:
            if ino == ROOT_INO and part == snapdir.NAME:
                raise snapdir.refuse()
            try:
                ino = self.volume.tree.lookup(ino, part)
            except NotFound:
                shown = path.decode(errors="replace")
                raise NotFound(f"{shown} does not exist in the mounted filesystem") from None
        return ino

    def inherit_pin(self, parent: int, ino: int) -> None:
        """A new entry in a pinned directory is pinned."""
        rows = self.meta.remote_rows
        if rows.pinned(parent):
            rows.set_pinned(ino, True)

    def pinned_xattr(self, ino: int) -> bytes:
        return b"1" if self.meta.remote_rows.pinned(ino) else b"0"

    def set_pinned_xattr(self, ino: int, value: bytes) -> None:
        if value.strip() not in (b"0", b"1"):
            raise InvalidArgument("user.dwfs.pinned is 1 or 0")
        self.set_pinned([ino], value.strip() == b"1")
        self._wake.set()

    def set_pinned(self, roots: list[int], pinned: bool) -> int:
        """Pin or unpin these inodes and everything below them; how many."""
        rows = self.meta.remote_rows
        inos = sorted({i for root in roots for i in rows.subtree(root)})
        with self.meta.db.transaction():
            for ino in inos:
                rows.set_pinned(ino, pinned)
        return len(inos)

    async def pin(self, roots: list[int], pinned: bool) -> dict[str, Any]:
        count = self.set_pinned(roots, pinned)
        await self.meta.commit()
        result: dict[str, Any] = {"pinned" if pinned else "unpinned": count}
        if pinned:
            result.update(await self.hydrate(roots))
        return result

    async def hydrate(self, roots: list[int]) -> dict[str, Any]:
        """Fetch every chunk of these files and trees that is not local."""
        rows = self.meta.remote_rows
        inos = sorted({i for root in roots for i in rows.subtree(root)})
        store = self.pool.store
        missing = sorted(
            (c for c in rows.chunks_of(inos) if not store.is_local(c)),
            key=lambda c: _place(store.on_remote(c)),
        )
        if not missing:
            return {"files": len(inos), "chunks_fetched": 0, "bytes_fetched": 0}
        tier = self._tier()
        before = tier.stats.bytes_fetched
        for start in range(0, len(missing), HYDRATE_BATCH):
            batch = missing[start : start + HYDRATE_BATCH]
            await store.prefetch(batch)  # neighbours in a pack come in one GET
            for cid in batch:
                if not store.is_local(cid):
                    await store.get(cid)  # what read-ahead could not keep, or an error
            self.record_hydrated()
        await self.meta.commit()
        fetched = tier.stats.bytes_fetched - before
        return {"files": len(inos), "chunks_fetched": len(missing), "bytes_fetched": fetched}

    async def dehydrate(self, roots: list[int]) -> dict[str, Any]:
        """Evict the local copies of these files' chunks that may go; what stayed."""
        rows = self.meta.remote_rows
        inos = sorted({i for root in roots for i in rows.subtree(root)})
        wanted = rows.chunks_of(inos)
        store = self.pool.store
        local = {c for c in wanted if store.is_local(c)}
        chosen = [(c, n) for c, n in self._candidates() if c in local]
        freed = await self._evict(chosen)
        kept = len(local) - len(chosen)
        return {
            "files": len(inos),
            "chunks_evicted": len(chosen),
            "bytes_freed": freed,
            "chunks_kept": kept,
        }

    def _candidates(self) -> list[tuple[ChunkId, int]]:
        """The chunks eviction may take, least recently read first: on the remote
        (row committed), not used by a pinned file, not read by an open one."""
        rows = self.meta.remote_rows
        keep = rows.pinned_chunks() | rows.chunks_of(sorted(self.volume.open_inodes()))
        store = self.pool.store
        found = [(c, n) for c, n in rows.evictable() if c not in keep]
        found.sort(key=lambda item: store.last_used(item[0]))
        return found

    async def _evict(self, chosen: list[tuple[ChunkId, int]]) -> int:
        if not chosen:
            return 0
        await self.meta.commit()  # every remote row eviction relies on is durable
        with self.meta.db.transaction():
            for cid, _ in chosen:
                self.meta.chunk_rows.evict(cid)
        self.pool.store.forget_local([c for c, _ in chosen])
        await self.meta.commit()
        return sum(n for _, n in chosen)

    def cache_limits(self) -> dict[str, int | None]:
        return self.meta.remote_rows.cache_limits()

    async def set_cache_limits(self, max_size: int | None, min_free: int | None) -> dict[str, Any]:
        self.meta.remote_rows.set_cache_limits(max_size, min_free)
        await self.meta.commit()
        await self.evict_to_fit()
        return self.cache()

    def cache(self) -> dict[str, Any]:
        limits = self.cache_limits()
        totals = self.meta.remote_rows.totals()
        capacity = self.pool.capacity()
        return {
            **limits,
            "local_bytes": totals["local_bytes"],
            "remote_only_bytes": totals["remote_only_bytes"],
            "free_bytes": max(capacity["size"] - capacity["used"], 0),
        }

    async def evict_to_fit(self) -> int:
        """Evict least recently read chunks until the cache fits its limits."""
        limits = self.cache_limits()
        if self.pool.tier is None or (limits["max_size"] is None and limits["min_free"] is None):
            return 0
        shown = self.cache()
        over = 0
        if limits["max_size"] is not None:
            over = shown["local_bytes"] - limits["max_size"]
        if limits["min_free"] is not None:
            over = max(over, limits["min_free"] - shown["free_bytes"])
        if over <= 0:
            return 0
        over += int((limits["max_size"] or limits["min_free"] or 0) * EVICT_SLACK)
        chosen, total = [], 0
        for cid, length in self._candidates():
            if total >= over:
                break
            chosen.append((cid, length))
            total += length
        freed = await self._evict(chosen)
        if freed:
            log.info("evicted %d chunks (%d bytes) the remote holds", len(chosen), freed)
        return freed
