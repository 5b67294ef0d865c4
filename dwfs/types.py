"""Value types shared by every layer, and the Protocols through which the layers
above `chunks` use the pool; they depend on nothing else in dwfs.

The Protocols name what meta, snapshots and vfs need of a pool (a block store,
a place for the metadata journal, segments to collect), so that a pool whose
chunks also live on a remote tier can stand where a pool of devices stands
without those layers changing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NewType, Protocol, TypeAlias

import trio

ChunkId = NewType("ChunkId", bytes)
"""Keyed BLAKE3 of a chunk's plaintext: 32 bytes that identify it within one pool."""

CHUNK_ID_SIZE = 32

Buffer: TypeAlias = bytes | bytearray | memoryview
"""Anything the block store and the native kernels accept as bytes without copying."""

Plain: TypeAlias = bytes | bytearray
"""A chunk's plaintext as the store hands it out: bytes, or the bytearray it was
decrypted into (never changed after that, so it is shared as freely as bytes)."""


@dataclasses.dataclass(frozen=True, slots=True)
class StripeAddr:
    """Where one stripe lives: the same (segment, offset) on every device it uses.

    seq numbers stripes in write order; it picks which devices hold which shard.
    shard_len is the payload length of each shard, sealed_len the length of the
    sealed chunk the data shards carry (the tail of the last one is padding).
    """

    seq: int
    segment: int
    offset: int
    shard_len: int
    sealed_len: int


@dataclasses.dataclass(frozen=True, slots=True)
class RemoteAddr:
    """Where a sealed chunk lies on the remote tier: a byte range of one pack."""

    pack: bytes
    """The pack's random 16-byte id (its object name is derived from it)."""
    offset: int
    length: int


@dataclasses.dataclass(frozen=True, slots=True)
class ChunkRef:
    """One chunk of some content: its id, plaintext length and where it is stored."""

    chunk_id: ChunkId
    length: int
    addr: StripeAddr


@dataclasses.dataclass(frozen=True, slots=True)
class Moved:
    """A chunk compaction copied: where it was and where its copy is."""

    chunk_id: ChunkId
    old: StripeAddr
    new: StripeAddr


@dataclasses.dataclass(frozen=True)
class ChainHead:
    """Where the metadata journal's chain stood at a commit: the txg, the epoch's
    random id and the last record's tag, and a copy of that record (empty where
    it was durable on the devices before the head was recorded)."""

    txg: int
    epoch_id: bytes
    tag: bytes
    record: bytes = dataclasses.field(default=b"", repr=False)


class ChunkStore(Protocol):
    """Content in, chunk ids out, and back again; nothing durable before sync()."""

    async def put(self, data: Buffer) -> list[ChunkRef]:
        """Cut content into chunks and store those the pool lacks."""

    async def put_pieces(self, pieces: Sequence[Buffer]) -> list[ChunkRef]:
        """put() of the content the pieces make laid end to end, not joined first."""

    async def put_chunk(self, chunk: Buffer) -> ChunkRef:
        """Store one chunk as it is, uncut."""

    async def get(
        self, cid: ChunkId, addr: StripeAddr | None = None, counted: bool = False
    ) -> Plain:
        """One chunk's plaintext, authenticated (`counted`: this read's miss was
        counted by cached() already)."""

    async def read(self, refs: list[ChunkRef]) -> bytes:
        """The concatenated plaintext of refs."""

    def cached(self, cid: ChunkId, count: bool = True) -> Plain | None:
        """A chunk's plaintext if it is in the cache, without waiting (`count`: as a
        read, in the cache's hit rate)."""

    def has_or_loading(self, cid: ChunkId) -> bool:
        """Whether a get() of cid would find it cached or join a load under way."""

    async def loaded(self, cid: ChunkId) -> Plain | None:
        """A chunk's plaintext once a load of it under way is done, without
        starting one: None when it is neither cached nor loading, or its load failed."""

    def peek(self, cid: ChunkId) -> Plain | None:
        """A chunk's plaintext if it is in the cache, from any thread (not a read)."""

    async def prefetch(self, cids: list[ChunkId], then: Callable[[], None] = ...) -> None:
        """Load chunks into the cache ahead of need; then(), in the loading
        thread, once those loaded from the devices are in."""

    async def sync(self) -> None:
        """Make every chunk stored so far durable."""

    def durable_now(self) -> bool:
        """Whether sync() would have nothing to do or wait for."""

    async def relocate(self, moves: list[tuple[ChunkId, StripeAddr]]) -> list[Moved]:
        """Copy chunks to new stripes; nothing points at the copies yet."""

    async def wait_for_puts(self) -> None:
        """Return once no put is under way."""

    async def wait_for_loads(self) -> None:
        """Return once every load begun before the call has ended."""

    def learn(self, chunks: Iterable[tuple[ChunkId, StripeAddr]]) -> None:
        """Take these addresses as the truth (the metadata's, at open)."""

    def repoint(self, moved: list[Moved], dead: list[ChunkId], segments: set[int]) -> None:
        """Point the moved chunks at their copies and forget the dead ones."""

    def forget_segments(self, segments: set[int]) -> None:
        """Forget every chunk stored in these segments (they are about to go)."""

    def learn_remote(self, chunks: Iterable[tuple[ChunkId, RemoteAddr]]) -> None:
        """Where these chunks lie on the remote tier."""

    def forget_local(self, cids: list[ChunkId]) -> None:
        """Forget the local copies of these chunks (evicted: the remote has them)."""

    def is_local(self, cid: ChunkId) -> bool:
        """Whether the devices hold a copy of the chunk."""

    def take_hydrated(self) -> list[tuple[ChunkId, StripeAddr]]:
        """Chunks fetched from the remote and kept locally since the last call."""

    def unrecorded_segments(self) -> set[int]:
        """Segments holding chunks kept locally whose place is not recorded yet."""


class SegmentSpace(Protocol):
    """The pool's append-only segments, as compaction and garbage collection see them."""

    @property
    def current_segment(self) -> int:
        """The segment being appended to."""

    def segments(self) -> list[int]:
        """Every segment that exists."""

    def segment_end(self, segment: int) -> int:
        """How far a segment is written, per device."""

    def room(self, reserve: int) -> int:
        """Bytes each device can still take before its free space is down to reserve."""

    def remove_segment(self, segment: int) -> None:
        """Delete a segment that holds nothing live."""

    def degraded(self) -> bool:
        """Whether a member is missing or faulted."""

    def resilvering(self) -> bool:
        """Whether a resilver is due or under way."""


class JournalStore(Protocol):
    """Where the metadata journal's sealed records live: epochs of appended records,
    each appended to a set of members, durably on enough of them."""

    def journal_epochs(self) -> list[int]:
        """The epochs present."""

    def journal_copies(self, epoch: int) -> list[bytes]:
        """Every member's copy of one epoch."""

    def append_journal(
        self, epoch: int, record: bytes, also: Sequence[tuple[int, bytes, int]] = ()
    ) -> list[int]:
        """Append a record on every member, durably on enough of them, making the
        writes `also` ((descriptor, bytes, offset)) and their flushes in the same
        round; their errnos."""

    def trim_journals(self, before: int) -> None:
        """Delete every epoch older than `before`."""


class PoolServices(Protocol):
    """What the metadata and snapshot layers use of an open pool."""

    @property
    def id(self) -> str:
        """The pool's uuid."""

    @property
    def store(self) -> ChunkStore:
        """The block store."""

    @property
    def journal(self) -> JournalStore:
        """Where the metadata journal lives."""

    @property
    def space(self) -> SegmentSpace:
        """The segments chunks are stored in."""

    @property
    def segments_lock(self) -> trio.Lock:
        """Held while segments are deleted (and by a scrub while it reads stripes)."""

    @property
    def config(self) -> dict[str, Any]:
        """The configuration the newest superblock generation carries."""

    @property
    def metadata_key(self) -> bytes:
        """The key journal records and checkpoints are sealed with."""

    @property
    def state_dir(self) -> Path:
        """This machine's directory for the pool (for messages that name it)."""

    def update_config(
        self, everywhere: bool = False, epoch_id: str | None = None, **changes: Any
    ) -> None:
        """Write a new superblock generation with these entries changed."""

    def chain_head(self) -> ChainHead | None:
        """This machine's record of the journal's chain head, if it has one."""

    def record_chain_head(self, head: ChainHead) -> None:
        """Record the chain head durably on this machine."""

    def chain_head_write(self, head: ChainHead) -> tuple[int, bytes, int]:
        """The write that records the chain head (and the copy of its record it
        carries): (descriptor, bytes, offset), made and flushed by the caller."""
