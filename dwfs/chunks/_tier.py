"""A pool's remote tier: sealed chunks in packs, and the remote's superblock.

Chunks go up exactly as the devices hold them: the sealed bytes (AEAD, with the
chunk id as associated data) read back from their stripe, concatenated into
packs of about PACK_BYTES so a million small files are not a million PUTs. A
pack's name is `packs/XX/<32 hex>`, a random id: it says nothing of what is in
it. Coming back, a chunk is one ranged GET of its bytes, opened with its id,
so a changed, swapped or truncated object fails authentication and is never
returned as data.

Network calls run in worker threads under their own limiter (so a slow remote
never takes the threads the devices' work needs), each bounded by a timeout
after which the call is abandoned and TierUnavailable raised.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import blake3
import trio

from dwfs.chunks import _compress, crypto
from dwfs.chunks.keys import Keys
from dwfs.devices import DeviceArray
from dwfs.errors import DwfsError, IntegrityError, RemoteError, TierUnavailable
from dwfs.tiers import (
    MAX_SUPERBLOCK,
    SUPERBLOCK,
    Backend,
    RemoteSuperblock,
    decode_superblock,
    encode_superblock,
    get_bounded,
)
from dwfs.types import ChunkId, Plain, RemoteAddr, StripeAddr

T = TypeVar("T")
log = logging.getLogger(__name__)

PACK_BYTES = 16 * 1024 * 1024
"""A pack is closed once it holds this much: large enough that small files do
not cost a request each, small enough that one failed upload redoes little."""
UPLOADS = 4
"""Uploads (and fetches) in flight at once."""
TIMEOUT = 30.0
"""Seconds a remote call may take before it is abandoned and reads get EIO."""
PACK_ID_SIZE = 16


RANGE_BYTES = 8 * 1024 * 1024
"""The most one ranged GET of read-ahead asks for."""
RANGE_GAP = 256 * 1024
"""Chunks this close in a pack are fetched in one GET, the bytes between them with."""


def pack_name(pack: bytes) -> str:
    return f"packs/{pack[:1].hex()}/{pack.hex()}"


def plan_ranges(
    items: list[tuple[ChunkId, RemoteAddr]], most: int = RANGE_BYTES, gap: int = RANGE_GAP
) -> list[list[tuple[ChunkId, RemoteAddr]]]:
    """Chunks to fetch, grouped into byte ranges of one pack each: chunks at most
    `gap` apart share a GET while its range stays within `most` bytes (one chunk
    larger than that is a range of its own). Chunks a file wrote together lie
    together in a pack, so a sequential reader's chunks cost few requests."""
    groups: list[list[tuple[ChunkId, RemoteAddr]]] = []
    ordered = sorted(dict(items).items(), key=lambda item: (item[1].pack, item[1].offset))
    for cid, where in ordered:
        if groups:
            head, reach = groups[-1][0][1], _end(groups[-1])
            near = where.offset - reach <= gap
            fits = max(reach, where.offset + where.length) - head.offset <= most
            if where.pack == head.pack and near and fits:
                groups[-1].append((cid, where))
                continue
        groups.append([(cid, where)])
    return groups


def _end(group: list[tuple[ChunkId, RemoteAddr]]) -> int:
    return max(where.offset + where.length for _, where in group)


@dataclasses.dataclass(frozen=True)
class Fetched:
    """A chunk as the remote gave it, authenticated: its sealed bytes (to keep
    locally as they are) and its opened, still compressed, payload."""

    sealed: bytes
    compression: int
    payload: Plain


@dataclasses.dataclass
class TierStats:
    """What went up and came down, and what failed to verify."""

    packs_uploaded: int = 0
    chunks_uploaded: int = 0
    bytes_uploaded: int = 0
    chunks_fetched: int = 0
    bytes_fetched: int = 0
    gets: int = 0
    """Ranged GETs of packs (one may bring many chunks)."""
    failed_authentication: int = 0
    unavailable: int = 0


class Pacer:
    """A bandwidth limit: each transfer books the time its bytes take at `rate`
    bytes a second after those booked before it, and waits for its turn (the
    first goes at once, so a burst is one transfer long)."""

    def __init__(self, rate: int | None = None) -> None:
        self.rate = rate
        self._next = 0.0

    async def wait(self, nbytes: int) -> None:
        if not self.rate:
            return
        start = max(trio.current_time(), self._next)
        self._next = start + nbytes / self.rate
        await trio.sleep_until(start)


class Tier:
    """One pool's remote: uploads, fetches and the superblock there."""

    def __init__(
        self, backend: Backend, array: DeviceArray, keys: Keys, timeout: float = TIMEOUT
    ) -> None:
        self.backend = backend
        self.url = backend.url
        self.stats = TierStats()
        self.timeout = timeout
        self._array = array
        self._keys = keys
        self._limiter = trio.CapacityLimiter(UPLOADS)
        self._lock = threading.Lock()
        self.pacer = Pacer()

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args) in a worker thread, abandoned after the timeout."""
        with trio.move_on_after(self.timeout):
            return await trio.to_thread.run_sync(
                fn, *args, limiter=self._limiter, abandon_on_cancel=True
            )
        raise TierUnavailable(f"{self.url} did not answer within {self.timeout:g} s")

    # -- up -------------------------------------------------------------------

    async def upload(
        self, chunks: list[tuple[ChunkId, StripeAddr]]
    ) -> list[tuple[ChunkId, RemoteAddr]]:
        """Send these locally stored chunks up, in packs; where each now lies.

        A chunk whose stripe cannot be read is left out (scrub's business).
        Raises RemoteError or TierUnavailable when a pack cannot be stored:
        the chunks of packs stored before it are returned by the next call.
        """
        batches: list[list[tuple[ChunkId, StripeAddr]]] = [[]]
        size = 0
        for cid, addr in chunks:
            if size >= PACK_BYTES:
                batches.append([])
                size = 0
            batches[-1].append((cid, addr))
            size += addr.sealed_len
        placed: list[tuple[ChunkId, RemoteAddr]] = []
        failed: list[DwfsError] = []

        async def one(batch: list[tuple[ChunkId, StripeAddr]]) -> None:
            try:
                placed.extend(await self._upload_pack(batch))
            except DwfsError as exc:  # ends the other packs; raised as itself, not in a group
                failed.append(exc)
                nursery.cancel_scope.cancel()

        async with trio.open_nursery() as nursery:  # UPLOADS packs in flight (the limiter)
            for batch in batches:
                if batch:
                    nursery.start_soon(one, batch)
        if failed:
            raise failed[0]
        return placed

    def _read_sealed(self, batch: list[tuple[ChunkId, StripeAddr]]) -> list[tuple[ChunkId, bytes]]:
        found = []
        for cid, addr in batch:
            try:
                found.append((cid, self._array.read_stripe(addr, cid)))
            except IntegrityError as exc:
                log.warning("chunk %s cannot be read from the devices: %s", cid.hex()[:16], exc)
        return found

    async def _upload_pack(
        self, batch: list[tuple[ChunkId, StripeAddr]]
    ) -> list[tuple[ChunkId, RemoteAddr]]:
        sealed = await trio.to_thread.run_sync(self._read_sealed, batch)
        return await self.upload_sealed(sealed)

    async def upload_sealed(
        self, sealed: list[tuple[ChunkId, bytes]]
    ) -> list[tuple[ChunkId, RemoteAddr]]:
        """Store these sealed chunks as one pack; where each lies."""
        pack = secrets.token_bytes(PACK_ID_SIZE)
        placed, offset = [], 0
        for cid, data in sealed:
            placed.append((cid, RemoteAddr(pack, offset, len(data))))
            offset += len(data)
        body = b"".join(data for _, data in sealed)
        await self.pacer.wait(len(body))
        try:
            await self._call(self.backend.put, pack_name(pack), body)
        except TierUnavailable:
            self.stats.unavailable += 1
            raise
        self.stats.packs_uploaded += 1
        self.stats.chunks_uploaded += len(sealed)
        self.stats.bytes_uploaded += len(body)
        return placed

    async def sealed_copies(
        self, chunks: list[tuple[ChunkId, RemoteAddr, StripeAddr | None]]
    ) -> list[tuple[ChunkId, bytes]]:
        """The sealed bytes of these chunks, to store again elsewhere: read from
        their stripes where the devices hold them, else fetched from the remote
        in ranged GETs and authenticated. A chunk found in neither is left out
        (logged), so its old place stays recorded.

        Raises:
            TierUnavailable, RemoteError: the remote could not be read.
        """
        local = [(cid, addr) for cid, _, addr in chunks if addr is not None]
        found = dict(await trio.to_thread.run_sync(self._read_sealed, local))
        far = [(cid, where) for cid, where, _ in chunks if cid not in found]
        for group in plan_ranges(far):
            for cid, fetched in await self.fetch_range(group):
                if fetched is None:
                    log.error("chunk %s cannot be read from %s", cid.hex()[:16], self.url)
                else:
                    found[cid] = fetched.sealed
        return [(cid, found[cid]) for cid, _, _ in chunks if cid in found]

    # -- down -----------------------------------------------------------------

    async def fetch(self, cid: ChunkId, where: RemoteAddr) -> Fetched:
        """One chunk from the remote, authenticated (not yet decompressed).

        Raises:
            IntegrityError: the remote's bytes are not the chunk's (changed,
                swapped, truncated, or the pack deleted); counted in stats.
            TierUnavailable: the remote did not answer in time.
        """
        try:
            fetched = await self._call(self._get_and_open, cid, where)
        except TierUnavailable:
            self.stats.unavailable += 1
            raise
        except (RemoteError, IntegrityError) as exc:
            with self._lock:
                self.stats.failed_authentication += 1
            log.error("chunk %s from %s: %s", cid.hex()[:16], self.url, exc)
            raise IntegrityError(
                f"chunk {cid.hex()[:16]} cannot be read from {self.url}: {exc}"
            ) from None
        return fetched

    async def fetch_range(
        self, group: list[tuple[ChunkId, RemoteAddr]]
    ) -> list[tuple[ChunkId, Fetched | None]]:
        """Chunks lying near each other in one pack (a group of plan_ranges), in one
        ranged GET; each authenticated, or None where it fails (the reader that
        wants it meets the error on its own fetch).

        Raises:
            TierUnavailable, RemoteError: the range could not be read.
        """
        try:
            return await self._call(self._get_range, group)
        except TierUnavailable:
            self.stats.unavailable += 1
            raise

    def _get_range(
        self, group: list[tuple[ChunkId, RemoteAddr]]
    ) -> list[tuple[ChunkId, Fetched | None]]:
        first = group[0][1]
        start = first.offset
        data = self.backend.get(pack_name(first.pack), start, _end(group) - start)
        found: list[tuple[ChunkId, Fetched | None]] = []
        for cid, where in group:
            sealed = data[where.offset - start : where.offset - start + where.length]
            try:
                compression, payload = crypto.open_(self._keys.chunk_data, cid, sealed)
            except IntegrityError:
                with self._lock:
                    self.stats.failed_authentication += 1
                found.append((cid, None))
                continue
            found.append((cid, Fetched(sealed, compression, payload)))
        with self._lock:
            self.stats.chunks_fetched += len(group)
            self.stats.bytes_fetched += len(data)
            self.stats.gets += 1
        return found

    def _get_and_open(self, cid: ChunkId, where: RemoteAddr) -> Fetched:
        sealed = self.backend.get(pack_name(where.pack), where.offset, where.length)
        compression, payload = crypto.open_(self._keys.chunk_data, cid, sealed)
        with self._lock:
            self.stats.chunks_fetched += 1
            self.stats.bytes_fetched += len(sealed)
            self.stats.gets += 1
        return Fetched(sealed, compression, payload)

    async def fetch_plain(self, cid: ChunkId, where: RemoteAddr) -> Plain:
        """One chunk's plaintext, fetched and authenticated."""
        fetched = await self.fetch(cid, where)
        return _compress.decompress(fetched.compression, fetched.payload)

    # -- other objects --------------------------------------------------------

    async def put(self, name: str, data: bytes) -> None:
        await self._call(self.backend.put, name, data)

    async def get(self, name: str, limit: int) -> bytes | None:
        """A whole object of at most limit bytes (None: there is none)."""
        return await self._call(get_bounded, self.backend, name, limit)

    async def delete(self, name: str) -> None:
        await self._call(self.backend.delete, name)

    async def list(self, prefix: str) -> list[str]:
        """Every object under a folder, however deep."""
        return await self._call(self.backend.list, prefix)

    # -- the superblock -------------------------------------------------------

    async def read_superblock(self, pool: str) -> RemoteSuperblock | None:
        """The remote's superblock, verified; None where the remote is empty.

        Raises:
            RemoteError: it holds another pool, or a superblock that fails its MAC.
        """
        raw = await self.get(SUPERBLOCK, MAX_SUPERBLOCK)
        if raw is None:
            return None
        read = decode_superblock(raw, self.url)
        if read.superblock.pool != pool:
            raise RemoteError(
                f"{self.url} holds another pool ({read.superblock.pool}): "
                "use an empty place for this one"
            )
        if not read.verify(self._keys.remote):
            raise IntegrityError(
                f"the superblock on {self.url} fails authentication: it was changed there"
            )
        return read.superblock

    async def write_superblock(self, sb: RemoteSuperblock) -> None:
        await self._call(self.backend.put, SUPERBLOCK, encode_superblock(sb, self._keys.remote))

    def seal_manifest(self, pool: str, generation: int, body: bytes) -> bytes:
        """A manifest sealed for the remote, bound to the superblock generation
        that names it (an older manifest put in its place fails to open)."""
        return crypto.seal_record(self._keys.remote, _manifest_context(pool, generation), body)

    def open_manifest(self, pool: str, generation: int, sealed: bytes) -> bytes:
        return crypto.open_record(self._keys.remote, _manifest_context(pool, generation), sealed)

    def segment_name(self, pool: str, manifest: str, seq: int) -> str:
        """The object name of the seq-th segment of the remote's journal after a
        manifest: opaque, and found again only with the key."""
        digest = blake3.blake3(_segment_context(pool, manifest, seq), key=self._keys.remote)
        return f"journal/{digest.hexdigest(16)}"

    def seal_segment(self, pool: str, manifest: str, seq: int, prev: bytes, body: bytes) -> bytes:
        """A segment of the remote's journal sealed in its place: after the manifest,
        at seq, following the segment whose tag is prev (b"" for the first), so
        segments cannot be reordered, spliced or moved to another copy."""
        context = _segment_context(pool, manifest, seq) + prev
        return crypto.seal_record(self._keys.remote, context, body)

    def open_segment(self, pool: str, manifest: str, seq: int, prev: bytes, sealed: bytes) -> bytes:
        context = _segment_context(pool, manifest, seq) + prev
        return crypto.open_record(self._keys.remote, context, sealed)

    def close(self) -> None:
        self.backend.close()


def _manifest_context(pool: str, generation: int) -> bytes:
    return f"dwfs remote manifest {pool} {generation}".encode()


def _segment_context(pool: str, manifest: str, seq: int) -> bytes:
    return f"dwfs remote journal {pool} {manifest} {seq}|".encode()
