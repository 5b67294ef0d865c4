"""File content: reading through extents and unstored writes, storing writes as chunks.

Writes collect in a per-inode DirtyMap. A flush moves the map aside (still
visible to reads as `flushing`), widens each dirty interval to the whole extents
it touches, reads what it does not cover, cuts the region into content-defined
chunks, stores them, and swaps the new extents in with the size and mtime in one
transaction. A per-inode lock serialises flushes and truncates; reads never wait
for it.

Small files keep their bytes in the metadata instead (inline_data, as btrfs
keeps files up to max_inline in its tree): a file whose stored bytes end within
INLINE_MAX and that has no extents is one row, written with the rest of its
metadata, journaled and replicated like it, with no chunk to hash, seal, code
and write. Its content is the inline bytes followed by zeros up to its size. The
first flush that reaches past INLINE_MAX moves the bytes into chunks and drops
the row in the same transaction that adds the first extents: a file has inline
data or extents, never both.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypeAlias

import trio

from dwfs.meta import LIVE, View
from dwfs.types import Buffer, ChunkId, ChunkStore, Plain
from dwfs.vfs._attrs import now_ns
from dwfs.vfs._dirty import DirtyMap
from dwfs.vfs._extents import Extent, ExtentWindow, clip, cut_out, data_ranges, span
from dwfs.vfs._tree import Tree

_END_OF_ANY_FILE = 1 << 62
READ_AHEAD_BYTES = 4 * 1024 * 1024
"""How far past a sequential read its chunks are fetched ahead."""
READ_AHEAD_BATCH = 8
"""Chunks one read-ahead worker call loads."""
REMOTE_AHEAD_MAX = 64 * 1024 * 1024
"""How far read-ahead grows for a sequential reader of chunks only the remote has:
it doubles from READ_AHEAD_BYTES at every read that meets such chunks, so a
remote-only file streams at the remote's speed while a short read stays cheap."""
SEQUENTIAL_SLACK = 2 * 1024 * 1024
"""A read starting this close to where the previous one ended counts as
sequential: the kernel's read-ahead sends several requests at once, out of order."""
REGION_ALIGN = 64 * 1024
"""Dirty bytes are re-chunked in whole blocks of this size at least."""
INLINE_MAX = 2048
"""Files whose bytes end within this many bytes are stored in the metadata."""
LOG_LIMIT = 128 * 1024
"""The most an fsync logs into the metadata journal instead of storing the file as
chunks. Databases and editors fsync a few pages at a time; more is better stored,
since a journal record goes to every device whole (no parity) and the journal
lives in the space each device keeps in reserve (ZFS, likewise, logs only small
writes' bytes and points to large ones)."""
EXTENT_WINDOW = 64 * 1024 * 1024
"""How much of an open file's extent map a read looks up at once: sequential
reads then cost one query per 64 MiB instead of two per request, and each query
on the trio thread gives the GIL up to the loader threads and waits for it back."""
log = logging.getLogger(__name__)


@dataclasses.dataclass
class FileState:
    """The in-memory state of a file with open handles or unstored writes."""

    size: int
    mtime_ns: int
    handles: int = 0
    dirty: DirtyMap = dataclasses.field(default_factory=DirtyMap)
    flushing: DirtyMap = dataclasses.field(default_factory=DirtyMap)
    lock: trio.Lock = dataclasses.field(default_factory=trio.Lock)
    changed: bool = False
    stored: int = 0
    """Counts changes to the file's stored bytes, so a read that waited for
    chunks can tell that the extents it looked up went stale meanwhile."""
    window: ExtentWindow | None = None
    """Extents reads looked up, dropped by every change to the file's extents."""
    read_end: int | None = None
    """Where the last read of the file ended, to tell sequential readers."""
    ahead: int = READ_AHEAD_BYTES
    """How far read-ahead reaches: grows while a sequential reader meets remote chunks."""
    told_to: int = 0
    """Where the bytes this sequential run of reads told the ahead watcher of end
    (each extent before it was told of whole), while `stored` is `told_at`:
    read-ahead tells only of the extents after it, not again of every extent in
    reach at every read."""
    told_at: int = -1
    asked_to: int = 0
    """Where the reach of this sequential run's last read-ahead ended, while
    `stored` is `asked_at`: read-ahead starts again only once a reader's reach
    passes it by half of `ahead`, so each start asks for a batch's worth of
    chunks, not the one or two each 1 MiB read moves the reach by."""
    asked_at: int = -1
    unlogged: DirtyMap | None = dataclasses.field(default_factory=DirtyMap)
    """Writes since the last fsync logged them or a flush took them; None when
    more than LOG_LIMIT of them piled up (an fsync then stores the file)."""
    logged: bool = False
    """The file may have rows in the intent log (its flushes must drop them)."""
    new: bool = False
    """Created by this mount: until the first change of its stored bytes (which
    `stored` counts), it has no extents and no inline bytes to look up."""
    failed: bool = False
    """Its last flush failed: the next close stores the writes itself, and so
    reports the error, instead of leaving them to the write-behind."""
    behind: bool = False
    """A close left its writes to the write-behind, which keeps them for the
    next try if storing them fails: a release need not store (or drop) them."""
    flush_queued: bool = False
    """A store of the file behind its writer was started and has not yet begun:
    the writes that come meanwhile are its to take, and start no other."""

    @property
    def busy(self) -> bool:
        return bool(self.handles or self.dirty or self.changed)

    @property
    def unstored(self) -> int:
        """Bytes written and not stored yet, the ones being stored included."""
        return self.dirty.nbytes + self.flushing.nbytes

    @property
    def nothing_stored(self) -> bool:
        """Whether the file certainly has no stored bytes, so a flush need not
        ask the database for them (most files an untar or a build writes)."""
        return self.new and self.stored == 0

    def write(self, offset: int, data: bytes) -> None:
        """Take a write into the unstored bytes (and the ones not yet logged)."""
        self.dirty.write(offset, data)
        if self.unlogged is not None:
            self.unlogged.write(offset, data)
            if self.unlogged.nbytes > LOG_LIMIT:
                self.unlogged = None


Span: TypeAlias = tuple[int, Plain | None, int, int, int]
"""Bytes read-ahead brings a front end: (offset in the file, plaintext of the
chunk, offset in it, length, the ticket `coming` gave the range); plaintext
None when the chunk did not load."""


class AheadWatcher:
    """Who is told of read-ahead into live files without unstored writes, for a
    front end that answers the reads of it itself: does nothing until one sets it."""

    def __init__(self) -> None:
        self.coming: Callable[[int, list[tuple[int, int]]], list[int]] = lambda ino, ranges: [
            0 for _ in ranges
        ]
        """A batch of read-ahead is loading the chunks of these (offset, length)
        ranges of a file's bytes: a ticket for each, which its bytes come back with."""
        self.came: Callable[[int, list[Span]], None] = lambda ino, spans: None
        """Bytes of ranges told of are in, whatever happened to them: each range
        comes back once, in this call or another. Called on the trio thread, or
        in the worker thread that loaded them as soon as they are in (so it must
        be thread-safe). The bytes are the file's as they were at `coming`: a
        front end must not use them if a request changed the file since, even
        when the same range was told of again after the change (its ticket
        tells the two apart)."""


class FileData:
    def __init__(self, tree: Tree, store: ChunkStore) -> None:
        self.tree = tree
        self.db = tree.db
        self.rows = tree.rows
        self.store = store
        self.active = 0
        """Flushes under way: garbage collection waits until there are none."""
        self.background: trio.Nursery | None = None
        """Where read-ahead runs; set while the volume is open."""
        self.ahead = AheadWatcher()

    def extents(self, ino: int, start: int, end: int, view: View = LIVE) -> list[Extent]:
        rows = self.rows.extents(ino, start, end, view)
        return [Extent(o, n, ChunkId(c), co) for o, n, c, co in rows]

    async def _gather(self, pieces: list[Extent]) -> list[memoryview]:
        """Each piece's bytes, out of the cache or fetched, the misses in parallel."""
        views: list[memoryview | None] = []
        missing = []
        for i, piece in enumerate(pieces):
            data = self.store.cached(piece.chunk)
            views.append(None if data is None else _view(piece, data))
            if data is None:
                missing.append(i)

        async def fetch(i: int) -> None:
            views[i] = _view(pieces[i], await self.store.get(pieces[i].chunk, counted=True))

        if len(missing) == 1:
            await fetch(missing[0])
        elif missing:
            async with trio.open_nursery() as nursery:
                for i in missing:
                    nursery.start_soon(fetch, i)
        return [v for v in views if v is not None]

    async def _fill(self, buf: bytearray, offset: int, extents: list[Extent]) -> None:
        """Copy the extents' bytes that fall in buf's range into buf."""
        pieces = _clipped(extents, offset, offset + len(buf))
        for piece, view in zip(pieces, await self._gather(pieces), strict=True):
            memoryview(buf)[piece.off - offset : piece.end - offset] = view

    async def read(
        self,
        ino: int,
        state: FileState | None,
        size: int,
        off: int,
        length: int,
        view: View = LIVE,
    ) -> list[Buffer]:
        """Bytes of a file, as pieces to send one after another: its stored
        content as `view` shows it, under the unstored writes of its open state
        (the live view's only). A clean read is views of cached chunks, so an
        adapter that can send a vector sends them without joining them first."""
        end = min(off + length, size)
        if off >= end:
            return []
        noted = False
        while True:
            stored = state.stored if state else 0
            flushing = state.flushing if state else None
            extents = self._read_extents(ino, state, off, end, view)
            pieces = _clipped(extents, off, end)
            if not noted:  # before waiting: the reads behind this one need read-ahead now
                self.note_read(ino, state, off, end)
                noted = True
            views = await self._gather(pieces)
            if state is None or state.stored == stored:
                break
        clean = state is None or not (flushing or state.flushing or state.dirty)
        if clean and _covers(pieces, off, end):
            return list(views)
        buf = bytearray(end - off)
        into = memoryview(buf)
        for piece, got in zip(pieces, views, strict=True):
            into[piece.off - off : piece.end - off] = got
        if not extents:
            self._copy_inline(ino, buf, off, view)
        if state is not None:
            assert flushing is not None
            for newer in (flushing, state.flushing, state.dirty):  # oldest first
                newer.overlay(off, buf)
        return [buf]

    def stable_extents(
        self, ino: int, state: FileState, start: int, end: int
    ) -> list[tuple[int, Plain, int, int]]:
        """The stored bytes of an open file with no unstored write, around
        [start, end), as whole extents whose plaintext is cached: (file offset,
        plaintext, offset in it, length). For an adapter that answers reads of
        them itself until the file changes."""
        end = min(end, state.size)
        if state.dirty or state.flushing or start >= end:
            return []
        window = state.window
        if window is not None and window.covers(start, end):
            extents = window.overlapping(start, end)
        else:
            extents = self.extents(ino, start, end)
        out = []
        for extent in extents:
            data = self.store.cached(extent.chunk, count=False)
            length = min(extent.end, state.size) - extent.off
            if data is not None and length > 0:
                out.append((extent.off, data, extent.chunk_off, length))
        return out

    def _read_extents(
        self, ino: int, state: FileState | None, start: int, end: int, view: View
    ) -> list[Extent]:
        """The extents overlapping [start, end): from the open file's window when
        it covers them (and, for a sequential read, its read-ahead too), else a
        sequential read loads a new window from start on, and any other read
        asks the database for just its range (a random reader would load a
        whole window per read)."""
        window = state.window if state else None
        sequential = _sequential(state, start)
        ahead = end + READ_AHEAD_BYTES if sequential else end
        if window is not None and window.covers(start, ahead):
            return window.overlapping(start, end)
        if state is None or not sequential:
            return self.extents(ino, start, end, view)
        hi = max(ahead, start + EXTENT_WINDOW)
        window = state.window = ExtentWindow.of(self.extents(ino, start, hi), start, hi)
        return window.overlapping(start, end)

    def note_read(self, ino: int, state: FileState | None, off: int, end: int) -> None:
        """A read of [off, end) of the file, answered here or by the front end
        itself: sequential readers get read-ahead."""
        if state is not None:
            if _sequential(state, off):
                self._read_ahead(ino, state, end)
            else:
                state.ahead = READ_AHEAD_BYTES
                state.told_to = state.asked_to = 0
            state.read_end = end

    def inline(self, ino: int) -> bytes | None:
        """The bytes of a small file kept in the metadata, if it is one."""
        return self.rows.inline(ino)

    def _copy_inline(self, ino: int, buf: bytearray, offset: int, view: View = LIVE) -> None:
        data = self.rows.inline(ino, view)
        if data is not None and offset < len(data):
            piece = data[offset : offset + len(buf)]
            buf[: len(piece)] = piece

    def _has_extents(self, ino: int) -> bool:
        return self.rows.has_extents(ino)

    def _read_ahead(self, ino: int, state: FileState, end: int) -> None:
        """Start fetching the chunks after a read into the cache, as sequential
        readers will want them next."""
        if self.background is None:
            return
        window, reach = state.window, end + state.ahead
        if state.asked_at == state.stored and reach < state.asked_to + state.ahead // 2:
            return
        state.asked_to, state.asked_at = reach, state.stored
        if window is None or not window.covers(end, reach):
            hi = max(reach, end + EXTENT_WINDOW)
            window = state.window = ExtentWindow.of(self.extents(ino, end, hi), end, hi)
        ahead = [e.chunk for e in window.starting_in(end, reach)]
        wanted = [c for c in ahead if not self.store.has_or_loading(c)]
        far = [c for c in ahead if not self.store.is_local(c)]
        remote = [c for c in wanted if not self.store.is_local(c)]
        if remote and len(remote) * 2 >= len(far):
            # One call once half the window is not yet asked for: the store fetches
            # neighbours in a pack with one ranged GET, so the batch makes few large
            # GETs, not a small one behind every read.
            self.background.start_soon(self.store.prefetch, remote)
            state.ahead = min(state.ahead * 2, REMOTE_AHEAD_MAX)
        wanted = [c for c in wanted if self.store.is_local(c)]
        step = READ_AHEAD_BATCH
        batches = [wanted[i : i + step] for i in range(0, len(wanted), step)]
        promised = self._promise(ino, state, window.overlapping(end, reach), batches)
        for batch, told in zip(batches, promised, strict=True):
            self.background.start_soon(self._load_ahead, ino, batch, told)

    def _promise(
        self, ino: int, state: FileState, extents: list[Extent], batches: list[list[ChunkId]]
    ) -> list[list[tuple[Extent, int]]]:
        """Tell the watcher of the bytes read-ahead brings, if the file has no
        unstored write (its stored bytes are its bytes): for each batch, the
        extents (cut at the file's size) of its chunks, and with the first, those
        of chunks another read is loading, each with its ticket; the extents
        whose chunks are cached already come at once. Only extents after those
        this run of reads told of already (`told_to`), up to the first it cannot
        tell of. The extent a read ends in is among them or was told of before,
        so the next read, which starts in it, finds all its bytes told of."""
        told: list[list[Extent]] = [[] for _ in batches]
        if state.dirty or state.flushing:
            state.told_to = 0
            return [[] for _ in batches]
        after = state.told_to if state.told_at == state.stored else 0
        batch_of = {chunk: i for i, batch in enumerate(batches) for chunk in batch}
        cached: list[tuple[Extent, Plain]] = []
        for e in extents:
            if e.off < after:
                continue
            piece = clip(e, e.off, state.size)
            if piece is None:
                break
            i = batch_of.get(e.chunk)
            if i is not None:
                told[i].append(piece)
            elif (data := self.store.cached(e.chunk, count=False)) is not None:
                cached.append((piece, data))
            elif told:
                told[0].append(piece)
            else:
                break
            after = piece.end
        state.told_to, state.told_at = after, state.stored
        if cached:
            tickets = self.ahead.coming(ino, [(e.off, e.len) for e, _ in cached])
            self.ahead.came(
                ino,
                [
                    (e.off, data, e.chunk_off, e.len, ticket)
                    for (e, data), ticket in zip(cached, tickets, strict=True)
                ],
            )
        promised: list[list[tuple[Extent, int]]] = []
        for pieces in told:
            tickets = self.ahead.coming(ino, [(e.off, e.len) for e in pieces]) if pieces else []
            promised.append(list(zip(pieces, tickets, strict=True)))
        return promised

    async def _load_ahead(
        self, ino: int, batch: list[ChunkId], promised: list[tuple[Extent, int]]
    ) -> None:
        """Load a batch of read-ahead; then hand the watcher the bytes it was told
        of: from the loading thread, those whose chunks are in as soon as they
        are (a turn of the trio thread less between them and the reads waiting
        for them); the rest once their chunks are in (another read or batch was
        loading them)."""
        left = promised

        def hand_over() -> None:
            nonlocal left
            ready: list[Span] = []
            rest: list[tuple[Extent, int]] = []
            for e, ticket in left:
                data = self.store.peek(e.chunk)
                if data is None:
                    rest.append((e, ticket))
                else:
                    ready.append((e.off, data, e.chunk_off, e.len, ticket))
            left = rest
            if ready:
                self.ahead.came(ino, ready)

        spans: list[Span] = []
        try:
            await self.store.prefetch(batch, hand_over)
            for e, ticket in left:
                data = await self.store.loaded(e.chunk)
                spans.append((e.off, data, e.chunk_off, e.len, ticket))
        finally:
            spans += [(e.off, None, e.chunk_off, e.len, t) for e, t in left[len(spans) :]]
            if spans:
                self.ahead.came(ino, spans)

    async def flush(self, ino: int, state: FileState) -> None:
        """Store the unstored writes of one file (not yet durable: commit does that)."""
        self.active += 1
        try:
            await self._flush(ino, state)
        finally:
            self.active -= 1

    async def _flush(self, ino: int, state: FileState) -> None:
        async with _holding(state.lock):
            if not state.dirty and not state.changed:
                return
            with self._taking(ino, state):
                if state.flushing:
                    await self._store(ino, state)
                    state.stored += 1

    def flush_now(self, ino: int, state: FileState) -> bool:
        """Flush without waiting, when that stores no chunk (nothing unstored, or a
        file that stays inline) and no flush of the file is under way: whether it
        did. Most closes of small files need nothing more, and so answer at once."""
        if state.lock.locked():
            return False
        content = None
        if state.dirty:
            content = self._inline_content(ino, state, state.dirty)
            if content is None:
                return False
        elif not state.changed:
            return True
        state.lock.acquire_nowait()
        self.active += 1
        try:
            with self._taking(ino, state):
                if content is not None:
                    self.rows.set_inline(ino, content)
                    state.stored += 1
        finally:
            self.active -= 1
            state.lock.release()
        return True

    @contextlib.contextmanager
    def _taking(self, ino: int, state: FileState) -> Iterator[None]:
        """Move the file's unstored writes aside while the body stores them, then
        record its size and mtime and drop the intent-log rows they make stale;
        if the body fails, the writes stay unstored."""
        state.flushing, state.dirty = state.dirty, DirtyMap()
        state.unlogged = DirtyMap()
        logged_before = self._next_log() if state.logged else 0
        try:
            yield
            self._record_size(ino, state)
            if state.logged:  # most flushes have no rows to drop: no journaled op
                self.rows.forget_logged(ino, logged_before)
                state.logged = self._next_log() != logged_before
            state.changed = False
        except BaseException:
            state.dirty = state.dirty.merged_under(state.flushing)
            state.unlogged = None
            raise
        finally:
            state.flushing = DirtyMap()

    def _record_size(self, ino: int, state: FileState) -> None:
        """Put the file's size and mtime in its row. Its ctime moves up to the
        mtime, never back: a change after the write (a chmod) made it later.
        What a stat shows does not change (Volume.attr answers an open or
        unstored file's size and times from its state, and its ctime as the later
        of the row's and the mtime), so the tree's watcher is not told."""
        mtime = state.mtime_ns
        ctime = max(mtime, self.tree.attr(ino).ctime_ns)
        self.tree.record_fields(ino, size=state.size, mtime=mtime, ctime=ctime)

    # -- the intent log -----------------------------------------------------------

    def log_unstored(self, ino: int, state: FileState) -> bool:
        """Make an fsync cheap: put the writes not yet logged into the metadata (the
        `logged` table, journaled with the next commit) instead of storing the file
        as chunks and stripes; whether it could (not with more than LOG_LIMIT of
        them, nor while a flush of the file is under way).

        The bytes stay unstored too; the file's next flush stores them as chunks
        and drops the rows logged before it began. A crash before that leaves the
        rows, which apply_logged() stores at the next mount.
        """
        if state.unlogged is None or state.lock.locked():
            return False
        if not state.unlogged:
            return True  # written nothing since: the commit alone makes the rest durable
        with self.db.transaction():
            for offset, data in state.unlogged.intervals():
                self.rows.log_write(ino, offset, data)
            state.logged = True
            self._record_size(ino, state)
        state.unlogged = DirtyMap()
        return True

    def _next_log(self) -> int:
        return self.rows.next_log()

    def forget_logged(self, ino: int) -> None:
        """Drop the logged writes of a file whose unstored writes were dropped."""
        self.rows.forget_logged(ino)

    def logged_files(self) -> list[int]:
        """Files with logged writes (after a crash: what apply_logged must store)."""
        return self.rows.logged_files()

    async def apply_logged(self, ino: int) -> None:
        """Store a file's logged writes (in the order they were logged, within its
        recorded size) as its content, then drop them."""
        attr = self.tree.attr(ino)
        state = FileState(attr.size, attr.mtime_ns, logged=True)
        for offset, data in self.rows.logged_writes(ino):
            piece = data[: max(0, attr.size - offset)]
            if piece:
                state.dirty.write(int(offset), piece)
        state.changed = True
        await self.flush(ino, state)

    async def _store(self, ino: int, state: FileState) -> None:
        """Store state.flushing: inline when the file stays small, else as chunks."""
        content = self._inline_content(ino, state, state.flushing)
        if content is not None:
            self.rows.set_inline(ino, content)
            return
        old = None if state.nothing_stored else self.inline(ino)
        if old is not None:
            inline = DirtyMap()
            inline.write(0, old)
            state.flushing = state.flushing.merged_under(inline)
        for lo, hi in self._regions(ino, state):
            await self._store_region(ino, state, lo, hi, drop_inline=old is not None)
            old = None

    def _inline_content(self, ino: int, state: FileState, writes: DirtyMap) -> bytes | None:
        """The file's inline bytes with writes laid over them, or None when the
        file has or would need extents."""
        if min(writes.end(), state.size) > INLINE_MAX:
            return None  # too big whatever is stored: no need to ask
        bare = state.nothing_stored
        old = None if bare else self.inline(ino)
        held = old or b""
        end = max(len(held), min(writes.end(), state.size))
        if end > INLINE_MAX or (old is None and not bare and self._has_extents(ino)):
            return None
        content = bytearray(end)
        content[: len(held)] = held
        writes.overlay(0, content)
        return bytes(content)

    def _regions(self, ino: int, state: FileState) -> list[tuple[int, int]]:
        """The ranges to re-chunk: each dirty interval widened to the extents it
        touches, overlapping ones merged, so every chunk is rewritten once per flush
        however many small writes landed in it."""
        spans = []
        for start, stop in state.flushing.spans():
            end = min(stop, state.size)
            if end > start:
                # Small writes into holes would each become a tiny chunk; widening
                # to whole blocks keeps chunks, and reads of them, few.
                lo = start - start % REGION_ALIGN
                hi = min(end + (-end % REGION_ALIGN), state.size)
                spans.append(span(self._stored_extents(ino, state, lo, hi), lo, hi))
        merged: list[tuple[int, int]] = []
        for lo, hi in sorted(spans):
            if merged and lo < merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        return merged

    async def _store_region(
        self, ino: int, state: FileState, lo: int, hi: int, drop_inline: bool = False
    ) -> None:
        dirty = state.flushing
        old = self._stored_extents(ino, state, lo, hi)
        pieces = None if old else dirty.exactly(lo, hi)  # appends: no copy of the bytes
        if pieces is None:
            filled = bytearray(hi - lo)
            await self._fill(filled, lo, old)
            dirty.overlay(lo, filled)
            pieces = [filled]
        refs = await self.store.put_pieces(pieces)
        state.window = None
        with self.db.transaction():
            if drop_inline:
                self.rows.set_inline(ino, None)
            if not state.nothing_stored:
                self._replace(ino, lo, hi)
            pos = lo
            for ref in refs:
                self.rows.record_chunk(ref.chunk_id, ref.addr)
                self._add_extent(ino, Extent(pos, ref.length, ref.chunk_id, 0))
                pos += ref.length
        state.new = False  # it has extents now, even if a later region of this flush fails

    def _stored_extents(self, ino: int, state: FileState, lo: int, hi: int) -> list[Extent]:
        return [] if state.nothing_stored else self.extents(ino, lo, hi)

    def _add_extent(self, ino: int, e: Extent) -> None:
        self.rows.add_extent(ino, e.off, e.len, e.chunk, e.chunk_off)

    def _replace(self, ino: int, start: int, end: int) -> None:
        """Remove [start, end) from the file's extents, keeping the parts outside it."""
        removed, kept = cut_out(self.extents(ino, start, end), start, end)
        for e in removed:
            self.rows.remove_extent(ino, e.off, e.chunk)
        for e in kept:
            self._add_extent(ino, e)

    async def data_ranges(self, ino: int, state: FileState, size: int) -> list[tuple[int, int]]:
        """Where the file's bytes lie (data_ranges); its unstored writes are stored
        first, so the extents say it all (lseek's SEEK_DATA and SEEK_HOLE)."""
        await self.flush(ino, state)
        if self.inline(ino) is not None:
            return [(0, size)] if size else []
        return data_ranges(self.extents(ino, 0, size), size)

    async def punch(self, ino: int, state: FileState, start: int, end: int) -> None:
        """Make [start, end) of the file a hole (fallocate's punch hole and zero
        range): its extents there go, and reads give zeros. The size stays."""
        await self.flush(ino, state)
        async with _holding(state.lock):
            end = min(end, state.size)
            if start >= end:
                return
            for dirty in (state.dirty, state.unlogged):
                if dirty is not None:
                    for lo, hi in dirty.spans():  # written since the flush above
                        lo, hi = max(lo, start), min(hi, end)
                        if lo < hi:
                            dirty.write(lo, bytes(hi - lo))
            state.stored += 1
            state.window = None
            now = now_ns()
            state.mtime_ns = now
            with self.db.transaction():
                self._replace(ino, start, end)
                old = self.inline(ino)
                if old is not None and start < len(old):
                    cut = min(end, len(old))
                    self.rows.set_inline(ino, old[:start] + bytes(cut - start) + old[cut:])
                self.tree.set_fields(ino, mtime=now, ctime=now)

    async def share(
        self,
        src: int,
        src_state: FileState,
        off_in: int,
        dst: int,
        dst_state: FileState,
        off_out: int,
        length: int,
    ) -> bool:
        """Make dst's [off_out, off_out + length) the bytes of src's [off_in, ...)
        by pointing at the same chunks (copy_file_range: nothing is read, written
        or stored twice); False where that cannot be done (a file stored inline,
        or writes arriving meanwhile), and the caller copies bytes instead."""
        await self.flush(src, src_state)
        await self.flush(dst, dst_state)
        if self.inline(src) is not None or self.inline(dst) is not None:
            return False
        async with _holding(dst_state.lock):
            if src_state.dirty or dst_state.dirty:
                return False
            pieces = _clipped(self.extents(src, off_in, off_in + length), off_in, off_in + length)
            now = now_ns()
            size = max(dst_state.size, off_out + length)
            with self.db.transaction():
                self._replace(dst, off_out, off_out + length)
                shift = off_out - off_in
                for p in pieces:
                    self._add_extent(dst, Extent(p.off + shift, p.len, p.chunk, p.chunk_off))
                self.tree.set_fields(dst, size=size, mtime=now, ctime=now)
            dst_state.size, dst_state.mtime_ns = size, now
            dst_state.stored += 1
            dst_state.window = None
        return True

    async def truncate(self, ino: int, state: FileState, size: int) -> None:
        async with _holding(state.lock):
            state.dirty.truncate(size)
            if state.unlogged is not None:
                state.unlogged.truncate(size)
            state.stored += 1
            state.window = None
            with self.db.transaction():
                if size < state.size:
                    if state.logged:
                        self.rows.cut_logged(ino, size)
                    self._replace(ino, size, _END_OF_ANY_FILE)
                    old = self.inline(ino)
                    if old is not None and len(old) > size:
                        self.rows.set_inline(ino, old[:size])
                now = now_ns()
                state.size, state.mtime_ns = size, now
                self.tree.set_fields(ino, size=size, mtime=now, ctime=now)


def _sequential(state: FileState | None, off: int) -> bool:
    """Whether a read at off follows the file's last one (within SEQUENTIAL_SLACK)."""
    end = state.read_end if state else None
    return end is not None and abs(off - end) <= SEQUENTIAL_SLACK


def _clipped(extents: list[Extent], start: int, end: int) -> list[Extent]:
    return [p for e in extents if (p := clip(e, start, end)) is not None]


def _view(piece: Extent, data: Plain) -> memoryview:
    return memoryview(data)[piece.chunk_off : piece.chunk_off + piece.len]


def _covers(pieces: list[Extent], start: int, end: int) -> bool:
    """Whether the pieces, in order, leave no hole in [start, end)."""
    pos = start
    for piece in pieces:
        if piece.off != pos:
            return False
        pos = piece.end
    return pos == end


@contextlib.asynccontextmanager
async def _holding(lock: trio.Lock) -> AsyncIterator[None]:
    """Hold lock, without a pass through trio's scheduler when it is free: most
    flushes find nothing to store, and that pass cost more than the check."""
    try:
        lock.acquire_nowait()
    except trio.WouldBlock:
        await lock.acquire()
    try:
        yield
    finally:
        lock.release()
