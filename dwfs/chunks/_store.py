"""The block store: content in, chunk ids out, and back again.

put() cuts content into chunks and, for each chunk, in worker threads that share
the put (a PutJob), computes its id, skips it if the pool already holds it,
compresses, seals, erasure-codes and writes the shards. get() reads a chunk
through the plaintext cache, its data shards (the AEAD tag authenticating their
payloads; when it fails, the stripe again with every shard MAC checked, rebuilt
from redundancy and healed), and decompression. All CPU and disk work runs in
trio worker threads under one CapacityLimiter, so both cores work while the trio
thread stays free. Nothing is durable until sync() returns.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import itertools
import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import trio

from dwfs.chunks import _compress, crypto
from dwfs.chunks._cache import ChunkCache
from dwfs.chunks._chunker import Chunker
from dwfs.chunks._id import chunk_id
from dwfs.chunks._index import ChunkIndex
from dwfs.chunks._putjob import Pieces, PutJob
from dwfs.chunks._tier import Fetched, Tier, plan_ranges
from dwfs.chunks.keys import Keys
from dwfs.devices import COMPACTION_RESERVE, DeviceArray
from dwfs.errors import DeviceError, DwfsError, IntegrityError, NoSpace
from dwfs.types import Buffer, ChunkId, ChunkRef, Moved, Plain, RemoteAddr, StripeAddr

T = TypeVar("T")
log = logging.getLogger(__name__)

DEFAULT_CACHE_BYTES = 256 * 1024 * 1024
LOAD_TOGETHER = 16
"""The most chunks whose shard reads are in flight at once: a read-ahead batch
(8) whole, and a bound on the scratch memory a worker thread keeps for them."""
INLINE_BYTES = 64 * 1024
CUT_WINDOW = 4 * 1024 * 1024
LRU_TRACKED = 1 << 18
"""Chunks whose last read eviction remembers (some 50 MB of memory at most; with
chunks of 256 KiB on average, the last 64 GiB read)."""
PUT_BUDGET = 16
"""Chunks a worker stores per thread call before it queues for the limiter again."""
LOAD_BUDGET = 16
"""Chunks of read-ahead a loader loads per thread call before it queues for the
limiter again, so a long sequential read cannot keep puts from their turn."""


def _nothing() -> None:
    """A batch's follow-up when its caller needs none."""


@dataclasses.dataclass
class StoreStats:
    chunks_written: int = 0
    chunks_deduplicated: int = 0
    chunks_loaded: int = 0
    bytes_in: int = 0
    bytes_sealed: int = 0


class BlockStore:
    def __init__(
        self,
        array: DeviceArray,
        keys: Keys,
        cipher: int,
        compression: int,
        chunker: Chunker,
        index: ChunkIndex,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        limiter: trio.CapacityLimiter | None = None,
        seal_flags: int = 0,
    ) -> None:
        self.array = array
        self.chunker = chunker
        self.index = index
        self.cache = ChunkCache(cache_bytes)
        self.stats = StoreStats()
        self._keys = keys
        self._cipher = cipher
        self._compression = compression
        self._seal_flags = seal_flags
        self._limiter = limiter or trio.CapacityLimiter(os.cpu_count() or 2)
        self._inflight = 0
        self._idle = trio.Event()
        self._idle.set()
        self._stats_lock = threading.Lock()
        self._loading: dict[ChunkId, trio.Event] = {}
        self._load_epoch = 0
        self._loads: collections.Counter[int] = collections.Counter()
        self._loads_ended = trio.Event()
        self._batches: collections.deque[tuple[list[ChunkId], Callable[[], None], trio.Event]] = (
            collections.deque()
        )
        """Read-ahead's batches waiting for a loader thread, oldest first."""
        self._loaders = 0
        self._loader_nursery: trio.Nursery | None = None
        self.tier: Tier | None = None
        """The remote tier, where the pool has one: chunks with no local copy
        come from it, and are kept locally once fetched."""
        self._remote: dict[ChunkId, RemoteAddr] = {}
        self._hydrated: list[tuple[ChunkId, StripeAddr]] = []
        self._ticks = itertools.count(1)
        self._used: collections.OrderedDict[ChunkId, int] = collections.OrderedDict()
        """When each chunk was last read, in ticks: eviction takes the oldest first.
        At most LRU_TRACKED are remembered; one forgotten counts as never read."""

    async def _work(self, nbytes: int, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args) in a worker thread, or right here when it is too small to be
        worth the hop (a thread round trip costs more than sealing a few KiB)."""
        if nbytes <= INLINE_BYTES:
            await trio.lowlevel.checkpoint()
            return fn(*args)
        return await trio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    # -- writing --------------------------------------------------------------

    def _store_chunk(self, chunk: Buffer) -> tuple[ChunkId, StripeAddr]:
        """Worker-thread body of put: id, dedup, compress, seal, code, write."""
        cid = chunk_id(self._keys.chunk_id, chunk)
        known = self.index.get(cid)
        if known is not None:
            with self._stats_lock:
                self.stats.chunks_deduplicated += 1
            return cid, known
        algorithm, payload = _compress.compress(self._compression, chunk)
        length = crypto.sealed_length(memoryview(payload).nbytes, self._seal_flags)
        padded = crypto.seal(
            self._cipher,
            self._keys.chunk_data,
            cid,
            payload,
            algorithm,
            room=self.array.stripe_room(length),
            flags=self._seal_flags,
        )
        addr = self.array.allocate(length)
        self.array.write_sealed(addr, cid, padded)
        kept = self.index.add(cid, addr)
        with self._stats_lock:
            self.stats.chunks_written += 1
            self.stats.bytes_sealed += length
        return cid, kept

    async def put_chunk(self, chunk: Buffer) -> ChunkRef:
        """Store one chunk as it is (no further cutting)."""
        self._inflight += 1
        self._idle = trio.Event() if self._idle.is_set() else self._idle
        try:
            cid, addr = await self._work(len(chunk), self._store_chunk, chunk)
        finally:
            self._inflight -= 1
            if not self._inflight:
                self._idle.set()
        self.stats.bytes_in += len(chunk)
        return ChunkRef(cid, len(chunk), addr)

    async def put(self, data: Buffer) -> list[ChunkRef]:
        """Cut data into content-defined chunks and store each; their refs in order."""
        return await self.put_pieces([data])

    async def put_pieces(self, pieces: Sequence[Buffer]) -> list[ChunkRef]:
        """put() of the content these pieces make laid end to end, without
        joining them first (chunks are cut as they would be from the whole).

        The worker threads share one PutJob: each takes the next chunk itself,
        PUT_BUDGET chunks per thread call, so other work (reads) can take a turn
        with the limiter between calls.
        """
        content = Pieces(pieces)
        if 0 < content.size <= self.chunker.params.min_size:
            # one chunk however it cuts: no job to share
            return [await self.put_chunk(content.range(0, content.size))]
        window = max(CUT_WINDOW, 2 * self.chunker.params.max_size)
        job = PutJob(content, self.chunker.cut, self._store_chunk, window)
        self._inflight += 1
        self._idle = trio.Event() if self._idle.is_set() else self._idle
        try:
            if content.size <= INLINE_BYTES:
                await trio.lowlevel.checkpoint()
                job.run(content.size)
            else:

                async def worker() -> None:
                    while await trio.to_thread.run_sync(job.run, PUT_BUDGET, limiter=self._limiter):
                        pass

                async with trio.open_nursery() as nursery:
                    for _ in range(int(self._limiter.total_tokens)):
                        nursery.start_soon(worker)
        finally:
            self._inflight -= 1
            if not self._inflight:
                self._idle.set()
        self.stats.bytes_in += content.size
        return [ChunkRef(cid, n, addr) for _, (n, cid, addr) in sorted(job.stored.items())]

    async def wait_for_puts(self) -> None:
        """Return at a moment when no put is under way: every address a put took
        from the index has reached its caller, which records it before its next
        await. The caller acts before its own next await."""
        while self._inflight:
            await self._idle.wait()

    def durable_now(self) -> bool:
        """Whether everything stored so far is durable, with no put under way
        (sync() would return at once)."""
        return self._idle.is_set() and not self.array.needs_sync()

    async def sync(self) -> None:
        """Wait for puts under way, then make everything stored so far durable."""
        await self._idle.wait()
        if self.array.needs_sync():  # an fsync of logged writes often has nothing here
            await trio.to_thread.run_sync(self.array.sync, limiter=self._limiter)

    # -- addresses ------------------------------------------------------------

    def learn(self, chunks: Iterable[tuple[ChunkId, StripeAddr]]) -> None:
        """Take these addresses as the truth: the metadata's, which outrank a scan
        of the stripe headers (a crash may leave copies the metadata never named)."""
        for cid, addr in chunks:
            self.index.assign(cid, addr)

    def repoint(self, moved: list[Moved], dead: list[ChunkId], segments: set[int]) -> None:
        """Point the moved chunks at their copies and forget the dead ones stored
        in these segments (compaction's victims)."""
        for move in moved:
            self.index.assign(move.chunk_id, move.new)
        self.index.discard(dead, segments)

    def learn_remote(self, chunks: Iterable[tuple[ChunkId, RemoteAddr]]) -> None:
        """Where these chunks lie on the remote tier (the metadata's record)."""
        with self._stats_lock:
            self._remote.update(chunks)

    def forget_remote(self) -> None:
        """Forget where chunks lay on the remote tier (it was removed)."""
        with self._stats_lock:
            self._remote.clear()

    def on_remote(self, cid: ChunkId) -> RemoteAddr | None:
        with self._stats_lock:
            return self._remote.get(cid)

    def is_local(self, cid: ChunkId) -> bool:
        return cid in self.index

    def _touch(self, cid: ChunkId) -> None:
        used = self._used
        used[cid] = next(self._ticks)
        used.move_to_end(cid)
        if len(used) > LRU_TRACKED:
            used.popitem(last=False)

    def last_used(self, cid: ChunkId) -> int:
        """When the chunk was last read in this process, in ticks (0: not yet)."""
        return self._used.get(cid, 0)

    def forget_local(self, cids: list[ChunkId]) -> None:
        """Forget the local copies of these chunks (evicted: the remote has them);
        the stripes stay until garbage collection takes their segments."""
        self.index.forget(cids)

    def unrecorded_segments(self) -> set[int]:
        """Segments holding chunks fetched from the remote whose place the metadata
        has not recorded yet: garbage collection must keep them."""
        with self._stats_lock:
            return {addr.segment for _, addr in self._hydrated}

    def take_hydrated(self) -> list[tuple[ChunkId, StripeAddr]]:
        """The chunks fetched from the remote and stored locally since the last
        call, for the metadata to record where they are now."""
        with self._stats_lock:
            taken, self._hydrated = self._hydrated, []
        return taken

    def forget_segments(self, segments: set[int]) -> None:
        """Forget every chunk stored in these segments, so no put deduplicates
        against a stripe that is about to go."""
        self.index.discard_segments(segments)

    # -- reading --------------------------------------------------------------

    def _load_chunk(self, cid: ChunkId, addr: StripeAddr | None) -> Plain:
        addr = addr or self.index.get(cid)
        if addr is None:
            raise IntegrityError(
                f"chunk {cid.hex()[:16]} is referenced but not in the pool: run `dwfsctl scrub`"
            )
        return self._open_chunk(cid, addr, self.array.read_data_shards(addr, cid))

    def _open_chunk(self, cid: ChunkId, addr: StripeAddr, sealed: memoryview | None) -> Plain:
        """A chunk's plaintext from its data shards as read (None: one was missing
        or bad), or, where they fail, from the full read that heals them."""
        opened = None
        if sealed is not None:
            with contextlib.suppress(IntegrityError):  # a damaged shard: the full read finds it
                opened = crypto.open_(self._keys.chunk_data, cid, sealed)
        if opened is None:
            opened = crypto.open_(self._keys.chunk_data, cid, self.array.read_stripe(addr, cid))
        return _compress.decompress(*opened)

    async def get(
        self, cid: ChunkId, addr: StripeAddr | None = None, counted: bool = False
    ) -> Plain:
        """The plaintext of one chunk (at addr, if the caller knows it); `counted`
        when the caller's cached() already counted this read's miss.

        Raises:
            IntegrityError: the pool holds no such chunk, or it fails authentication.
            Unrecoverable: too many of its shards are lost or corrupt.
        """
        self._touch(cid)
        cached = self.cache.get(cid, count=not counted)
        while cached is None:
            loading = self._loading.get(cid)
            if loading is None:
                return await self._load(cid, addr)
            await loading.wait()  # then the cache has it, unless that load failed
            cached = self.cache.get(cid, count=False)
        return cached

    def _fetch(self, cid: ChunkId, addr: StripeAddr | None) -> Plain:
        """Load a chunk into the cache and count it (either thread)."""
        return self._keep(cid, self._load_chunk(cid, addr))

    def _keep(self, cid: ChunkId, data: Plain) -> Plain:
        self.cache.put(cid, data)
        with self._stats_lock:
            self.stats.chunks_loaded += 1
        return data

    def _fetch_many(self, cids: list[ChunkId]) -> None:
        """Load chunks into the cache with all their shard reads in flight at once
        (read-ahead's batches); one that fails is left for its reader to meet."""
        known = [(cid, addr) for cid in cids if (addr := self.index.get(cid)) is not None]
        for start in range(0, len(known), LOAD_TOGETHER):
            self._fetch_together(known[start : start + LOAD_TOGETHER])

    def _fetch_together(self, known: list[tuple[ChunkId, StripeAddr]]) -> None:
        sealed = self.array.read_data_shards_many([(addr, cid) for cid, addr in known])
        for (cid, addr), one in zip(known, sealed, strict=True):
            try:
                self._keep(cid, self._open_chunk(cid, addr, one))
            except Exception as exc:
                log.debug("read-ahead of chunk %s failed: %s", cid.hex()[:16], exc)

    async def _load(self, cid: ChunkId, addr: StripeAddr | None) -> Plain:
        """Load a chunk into the cache; concurrent get()s of it wait for this one."""
        done = self._loading[cid] = trio.Event()
        epoch = self._begin_load()
        try:
            addr = addr or self.index.get(cid)
            where = self.on_remote(cid) if self.tier is not None else None
            if addr is None and where is not None:
                return await self._hydrate(cid, where)
            try:
                return await self._work(addr.sealed_len if addr else 0, self._fetch, cid, addr)
            except (IntegrityError, DeviceError) as exc:
                if where is None:
                    raise
                log.warning(
                    "chunk %s cannot be read here (%s): fetching the remote's copy",
                    cid.hex()[:16],
                    exc,
                )
                return await self._hydrate(cid, where)
        finally:
            self._end_load(epoch)
            del self._loading[cid]
            done.set()

    async def _hydrate(self, cid: ChunkId, where: RemoteAddr) -> Plain:
        """Fetch a chunk that is only on the remote, keep its sealed bytes on the
        devices as they are (when there is room), and cache its plaintext."""
        assert self.tier is not None
        fetched = await self.tier.fetch(cid, where)
        return await self._work(len(fetched.sealed), self._adopt, cid, fetched)

    def _adopt(self, cid: ChunkId, fetched: Fetched) -> Plain:
        try:
            addr = self.array.allocate(len(fetched.sealed))
            self.array.write_sealed(addr, cid, fetched.sealed)
        except DwfsError as exc:  # a full or failing pool: served, not kept
            log.warning("chunk %s fetched but not kept locally: %s", cid.hex()[:16], exc)
        else:
            if self.index.add(cid, addr) == addr:
                with self._stats_lock:
                    self._hydrated.append((cid, addr))
        data = _compress.decompress(fetched.compression, fetched.payload)
        self.cache.put(cid, data)
        return data

    def _begin_load(self) -> int:
        epoch = self._load_epoch
        self._loads[epoch] += 1
        return epoch

    def _end_load(self, epoch: int) -> None:
        self._loads[epoch] -= 1
        if not self._loads[epoch]:
            del self._loads[epoch]
            self._loads_ended.set()
            self._loads_ended = trio.Event()

    async def wait_for_loads(self) -> None:
        """Wait until every load that began before this call has ended, so none
        still reads at an address the index held then (a segment about to go)."""
        before = self._load_epoch
        self._load_epoch += 1
        while any(epoch <= before for epoch in self._loads):
            await self._loads_ended.wait()

    async def prefetch(self, cids: list[ChunkId], then: Callable[[], None] = _nothing) -> None:
        """Load chunks into the cache ahead of need (read-ahead), all in one worker
        call: a thread round trip per chunk cost more than the loads it overlapped.
        The batch's chunks are announced to get()s waiting for them together,
        once it is in: waking the trio thread for each chunk cost more than the
        wait it saved (docs/performance.md). Every shard read of the batch is
        in flight at once, around the page cache (the chunk cache keeps what is
        loaded). A chunk that fails to load is left for a reader to meet the
        error itself.

        `then` is called in the worker thread as soon as the chunks it loaded
        from the devices are in the cache (or failed), before this returns:
        for a caller that hands them on without waiting for a turn of the trio
        thread. It must be thread-safe, and is not called when nothing here
        needed loading from the devices."""
        wanted = [cid for cid in dict.fromkeys(cids) if not self.has_or_loading(cid)]
        if not wanted:
            return
        for cid in wanted:
            self._loading[cid] = trio.Event()

        def announce(cid: ChunkId) -> None:
            self._loading.pop(cid).set()

        remote = [
            (cid, where)
            for cid in wanted
            if self.tier is not None
            and self.index.get(cid) is None
            and (where := self.on_remote(cid)) is not None
        ]
        far = {cid for cid, _ in remote}
        local = [cid for cid in wanted if cid not in far]

        try:
            if remote:
                async with trio.open_nursery() as nursery:
                    for group in plan_ranges(remote):
                        nursery.start_soon(self._prefetch_range, group, announce)
            epoch = self._begin_load()
            try:
                await self._load_batch(local, then)
            finally:
                self._end_load(epoch)
        finally:
            for cid in local:  # in the cache now, or failed, or the call was cancelled
                announce(cid)

    async def serve_loaders(
        self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Own the worker calls that load read-ahead's batches, for as long as it
        runs (a mount's lifetime). Each call takes batch after batch, until none
        is left or it has loaded LOAD_BUDGET chunks: between two batches of one
        call the trio thread is not asked, where a call per batch left a
        thread's turn unused for as long as the trio thread took to hand it the
        next (docs/performance.md)."""
        try:
            async with trio.open_nursery() as nursery:
                self._loader_nursery = nursery
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._loader_nursery = None

    async def _load_batch(self, cids: list[ChunkId], then: Callable[[], None]) -> None:
        """_fetch_many(cids), then then(), in a worker thread: queued for the
        loaders while they are served, else in a worker call of its own."""
        nursery = self._loader_nursery
        if nursery is None:
            await trio.to_thread.run_sync(self._fetch_then, cids, then, limiter=self._limiter)
            return
        done = trio.Event()
        self._batches.append((cids, then, done))
        if self._loaders < self._limiter.total_tokens:
            self._loaders += 1
            nursery.start_soon(self._run_loader, trio.lowlevel.current_trio_token())
        with trio.CancelScope(shield=True):  # a loader sets it, loaded or not
            await done.wait()

    async def _run_loader(self, token: trio.lowlevel.TrioToken) -> None:
        try:
            while self._batches:
                await trio.to_thread.run_sync(
                    self._take_batches, token, LOAD_BUDGET, limiter=self._limiter
                )
        finally:
            self._loaders -= 1
            if not self._loaders:  # cancelled: no loader is left to take these
                while self._batches:
                    self._batches.popleft()[2].set()

    def _take_batches(self, token: trio.lowlevel.TrioToken, budget: int) -> None:
        """Worker-thread body of a loader: load queued batches until none is left
        or `budget` chunks are loaded, telling each batch's waiter (on the trio
        thread) as it is done."""
        while budget > 0:
            try:
                cids, then, done = self._batches.popleft()
            except IndexError:
                return
            try:
                self._fetch_then(cids, then)
            finally:
                token.run_sync_soon(done.set)
            budget -= len(cids)

    def _fetch_then(self, cids: list[ChunkId], then: Callable[[], None]) -> None:
        self._fetch_many(cids)
        then()

    async def _prefetch_range(
        self, group: list[tuple[ChunkId, RemoteAddr]], announce: Callable[[ChunkId], None]
    ) -> None:
        """Fetch chunks near each other in one pack with one GET, keep them, and
        announce each; one that fails is left for its reader's own fetch."""
        assert self.tier is not None
        epoch = self._begin_load()
        try:
            fetched = await self.tier.fetch_range(group)
            size = sum(len(f.sealed) for _, f in fetched if f is not None)
            await self._work(size, self._adopt_all, fetched)
        except DwfsError as exc:
            log.debug("read-ahead from %s failed: %s", self.tier.url, exc)
        finally:
            self._end_load(epoch)
            for cid, _ in group:
                if cid in self._loading:
                    announce(cid)

    def _adopt_all(self, fetched: list[tuple[ChunkId, Fetched | None]]) -> None:
        for cid, one in fetched:
            if one is not None:
                self._adopt(cid, one)

    def cached(self, cid: ChunkId, count: bool = True) -> Plain | None:
        """A chunk's plaintext if it is in the cache, without waiting (a hit is a
        read, for eviction's order; `count`: and for the cache's hit rate)."""
        data = self.cache.get(cid, count)
        if data is not None:
            self._touch(cid)
        return data

    def loading(self) -> bool:
        """Whether any chunk is being loaded."""
        return bool(self._loading)

    def peek(self, cid: ChunkId) -> Plain | None:
        """A chunk's plaintext if it is in the cache, from any thread: not a read,
        for eviction's order or the hit rate."""
        return self.cache.get(cid, count=False)

    def has_or_loading(self, cid: ChunkId) -> bool:
        """Whether a get() of cid would find it cached or join a load under way."""
        return cid in self._loading or self.cache.contains(cid)

    async def loaded(self, cid: ChunkId) -> Plain | None:
        """A chunk's plaintext once a load of it under way is done, without
        starting one: None when it is neither cached nor loading, or its load failed."""
        while (data := self.cache.get(cid, count=False)) is None:
            loading = self._loading.get(cid)
            if loading is None:
                return None
            await loading.wait()
        return data

    async def read(self, refs: list[ChunkRef]) -> bytes:
        """The concatenated plaintext of refs, fetched concurrently."""
        parts: list[Plain] = [b""] * len(refs)

        async def one(i: int, ref: ChunkRef) -> None:
            parts[i] = await self.get(ref.chunk_id, ref.addr)

        async with trio.open_nursery() as nursery:
            for i, ref in enumerate(refs):
                nursery.start_soon(one, i, ref)
        return b"".join(parts)

    # -- compaction -------------------------------------------------------------

    def _copy_stripes(self, moves: list[tuple[ChunkId, StripeAddr]]) -> tuple[list[Moved], bool]:
        """Copy stripes in order; those copied, and whether the pool ran out of room."""
        copied = []
        for cid, addr in moves:
            try:
                new = self.array.copy_stripe(addr, cid, COMPACTION_RESERVE)
                copied.append(Moved(cid, addr, new))
            except NoSpace:
                return copied, True
            except IntegrityError as exc:  # the old stripe stays, for scrub to judge
                log.warning("compaction left chunk %s where it is: %s", cid.hex()[:16], exc)
        return copied, False

    async def relocate(
        self, moves: list[tuple[ChunkId, StripeAddr]], batch: int = PUT_BUDGET
    ) -> list[Moved]:
        """Copy each (chunk, address) to a new stripe at the append point.

        As many workers as the limiter has tokens take batches in turn. A
        stripe that cannot be read is skipped; copying stops when the pool is
        down to COMPACTION_RESERVE. Nothing points at the copies until the
        caller records them, and the index, at their new addresses.
        """
        batches = iter(range(0, len(moves), batch))
        copied: list[Moved] = []
        full = False

        async def worker() -> None:
            nonlocal full
            for start in batches:
                if full:
                    return
                done, out_of_room = await trio.to_thread.run_sync(
                    self._copy_stripes, moves[start : start + batch], limiter=self._limiter
                )
                copied.extend(done)
                full = full or out_of_room

        async with trio.open_nursery() as nursery:
            for _ in range(int(self._limiter.total_tokens)):
                nursery.start_soon(worker)
        return copied
