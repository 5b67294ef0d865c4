"""A pool: its devices, its keys and its block store, opened as one.

create_pool() makes a new pool; open_pool() unlocks one with a credential,
brings its devices together, rebuilds the dedup index and yields a Pool whose
block store is ready. Keyslot changes, scrub and replace are Pool methods, so
the command line and the filesystem reach the same code.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import trio

from dwfs.chunks import _compress, crypto, keys
from dwfs.chunks._chunker import Chunker, ChunkerParams
from dwfs.chunks._events import Events
from dwfs.chunks._index import ChunkIndex
from dwfs.chunks._localstate import LocalState
from dwfs.chunks._scrub import PAUSED, RUNNING, Scrubber, ScrubJob
from dwfs.chunks._scrub import Progress as ScrubProgress
from dwfs.chunks._store import BlockStore
from dwfs.chunks._tier import TIMEOUT, Tier
from dwfs.devices import (
    DEFAULT_SEGMENT_SIZE,
    SHARD_HEADER_SIZE,
    DeviceArray,
    check_new_devices,
    create_devices,
    default_layout_name,
    finish_resilver,
    new_pool_id,
    open_array,
    parse_layout,
    read_slots,
    resilver_batch,
    swap_in,
)
from dwfs.devices import replace as replace_device
from dwfs.errors import Busy, DeviceError, IntegrityError, NotFound, RemoteError, UsageError
from dwfs.tiers import (
    MAX_SUPERBLOCK,
    SUPERBLOCK,
    RemoteSuperblock,
    decode_superblock,
    get_bounded,
    open_backend,
)
from dwfs.types import ChainHead

log = logging.getLogger(__name__)
T = TypeVar("T")

Progress = Callable[[int, int], None]
RESILVER_BATCH = 64


@dataclasses.dataclass(frozen=True)
class PoolOptions:
    """Choices made once, when a pool is created."""

    layout: str | None = None
    cipher: str = "aes-256-gcm"
    compression: str = "zstd"
    padding: str = "none"
    chunker: ChunkerParams = dataclasses.field(default_factory=ChunkerParams)
    segment_size: int = DEFAULT_SEGMENT_SIZE
    kdf: dict[str, Any] = dataclasses.field(default_factory=lambda: dict(keys.DEFAULT_KDF))


def create_pool(paths: list[Path], credential: keys.Credential, options: PoolOptions) -> str:
    """Make a new pool on the given device directories; its uuid.

    Everything is checked before anything is written.
    """
    layout = parse_layout(options.layout or default_layout_name(len(paths)), len(paths))
    crypto.cipher_id(options.cipher)
    _compress.algorithm_id(options.compression)
    crypto.padding_flags(options.padding)
    check_new_devices(paths)
    pool = new_pool_id()
    master = keys.new_master_key()
    try:
        slot = keys.make_keyslot(pool, 0, credential.kind, credential.secret, master, options.kdf)
        config = {
            "cipher": options.cipher,
            "compression": options.compression,
            "padding": options.padding,
            "chunker": options.chunker.to_json(),
            "kdf": options.kdf,
            "keyslots": [slot],
        }
        derived = keys.derive_keys(master)
        create_devices(paths, layout, config, derived.superblock, pool, options.segment_size)
    finally:
        keys.wipe(master)
    local = LocalState(pool)
    local.record_generation(1)
    local.record_chain_head(derived.local_state, ChainHead(0, b"", b""))
    local.close()
    return pool


PUBLIC_CONFIG = ("cipher", "compression", "padding", "chunker", "kdf", "keyslots")
"""What of a pool's config its remote copy carries: enough to unlock it and to
read and write its chunks on new devices."""


async def read_remote(url: str, credential: keys.Credential) -> tuple[str, RemoteSuperblock]:
    """(the pool id, its verified remote superblock) of the pool on a remote.

    Raises:
        RemoteError: the remote holds no dwfs pool, or cannot be read.
        BadKey: the credential opens none of its keyslots.
        IntegrityError: the superblock fails authentication, or is older than
            one this machine saw there (the remote was rolled back).
    """
    backend = await trio.to_thread.run_sync(open_backend, url)
    try:
        raw = await trio.to_thread.run_sync(get_bounded, backend, SUPERBLOCK, MAX_SUPERBLOCK)
        if raw is None:
            raise RemoteError(f"{url} holds no dwfs pool: check the URL")
    finally:
        backend.close()
    read = decode_superblock(raw, url)
    sb = read.superblock
    slots = sb.config.get("keyslots")
    master, _ = keys.unlock(sb.pool, slots if isinstance(slots, list) else [], credential)
    try:
        if not read.verify(keys.derive_keys(master).remote):
            raise IntegrityError(
                f"the superblock on {url} fails authentication: it was changed there"
            )
    finally:
        keys.wipe(master)
    seen = LocalState(sb.pool).last_remote_generation()
    if sb.generation < seen:
        raise IntegrityError(
            f"{url} holds generation {sb.generation} of pool {sb.pool}, but this machine "
            f"saw generation {seen} there: the remote was rolled back"
        )
    return sb.pool, sb


def create_attached(
    paths: list[Path],
    credential: keys.Credential,
    remote: RemoteSuperblock,
    layout_name: str | None = None,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
) -> None:
    """Make new devices for a pool that exists on a remote: its id, keyslots and
    chunk format, no data (every chunk starts remote-only). Everything is
    checked before anything is written."""
    layout = parse_layout(layout_name or default_layout_name(len(paths)), len(paths))
    config = {k: remote.config[k] for k in PUBLIC_CONFIG if k in remote.config}
    crypto.cipher_id(str(config.get("cipher")))
    _compress.algorithm_id(str(config.get("compression")))
    ChunkerParams(**config["chunker"])
    check_new_devices(paths)
    master, _ = keys.unlock(remote.pool, config["keyslots"], credential)
    try:
        derived = keys.derive_keys(master)
        create_devices(paths, layout, config, derived.superblock, remote.pool, segment_size)
    finally:
        keys.wipe(master)
    local = LocalState(remote.pool)
    local.start_over(1, derived.local_state)
    local.record_remote_generation(remote.generation)
    local.close()


class Pool:
    """An unlocked, open pool of devices. What meta and snapshots use of it is
    named by dwfs.types.PoolServices: the block store, the journal (the device
    array) and its segments (the device array again)."""

    def __init__(self, array: DeviceArray, master: bytearray, slot: int) -> None:
        self.array = array
        self.id = array.pool
        self.unlocked_with = slot
        self._master = master
        self.local = LocalState(self.id)
        self.keys = keys.derive_keys(master)
        self.tier: Tier | None = None
        config = array.config
        self.store = BlockStore(
            array,
            self.keys,
            crypto.cipher_id(config["cipher"]),
            _compress.algorithm_id(config["compression"]),
            Chunker(ChunkerParams(**config["chunker"]), self.keys.chunker),
            ChunkIndex(),
            seal_flags=crypto.padding_flags(config.get("padding", "none")),
        )
        self.segments_lock = trio.Lock()
        """Held while garbage collection deletes segments and while a scrub batch
        reads and repairs stripes, so a scrub never meets a segment half gone."""
        self.events = Events(self.id)
        self.scrubber = Scrubber(
            array, self.store.sync, self.local, self.segments_lock, self.events
        )
        self.resilvered: tuple[int, int, int] | None = None
        """While a resilver runs: (stripes walked, their bytes on one device, the
        bytes of every segment on one device when it began)."""

    # -- what meta and snapshots use (dwfs.types.PoolServices) -----------------

    @property
    def journal(self) -> DeviceArray:
        return self.array

    @property
    def space(self) -> DeviceArray:
        return self.array

    @property
    def config(self) -> dict[str, Any]:
        return self.array.config

    @property
    def metadata_key(self) -> bytes:
        return self.keys.metadata

    @property
    def state_dir(self) -> Path:
        return self.local.dir

    def chain_head(self) -> ChainHead | None:
        return self.local.chain_head(self.keys.local_state)

    def record_chain_head(self, head: ChainHead) -> None:
        self.local.record_chain_head(self.keys.local_state, head)

    def chain_head_write(self, head: ChainHead) -> tuple[int, bytes, int]:
        return self.local.chain_head_write(self.keys.local_state, head)

    # -- the remote tier --------------------------------------------------------

    def connect(self, url: str, timeout: float | None = None) -> Tier:
        """Use the remote at url as this pool's tier: chunks with no local copy
        come from it. Nothing is contacted yet.

        Raises:
            UsageError: the URL is malformed. RemoteError: it cannot be set up.
        """
        self.disconnect()
        tier = Tier(open_backend(url), self.array, self.keys, timeout or TIMEOUT)
        self.tier = self.store.tier = tier
        return tier

    def disconnect(self) -> None:
        if self.tier is not None:
            self.tier.close()
        self.tier = self.store.tier = None

    def public_config(self) -> dict[str, Any]:
        """What of the config the remote copy carries (PUBLIC_CONFIG)."""
        return {k: self.array.config[k] for k in PUBLIC_CONFIG if k in self.array.config}

    def record_remote_generation(self, generation: int) -> None:
        self.local.record_remote_generation(generation)

    def last_remote_generation(self) -> int:
        return self.local.last_remote_generation()

    def remote_intent(self) -> tuple[int, str] | None:
        return self.local.remote_intent()

    def record_remote_intent(self, generation: int, manifest: str) -> None:
        self.local.record_remote_intent(generation, manifest)

    def capacity(self) -> dict[str, int]:
        """Usable bytes (after redundancy) and bytes used."""
        return self.array.capacity()

    def refuse_degraded(self) -> None:
        """Raise DeviceError naming the members missing or faulted, if any."""
        absent = [m for m in self.array.members if not m.online]
        if absent:
            which = "; ".join(f"{m.path} is {m.state} ({m.reason})" for m in absent)
            raise DeviceError(
                f"pool {self.id} is {self.array.state()}: {which}; bring the devices back, "
                "or mount with -o degraded to use the pool without them"
            )

    # -- keyslots -------------------------------------------------------------

    def keyslots(self) -> list[dict[str, Any]]:
        """The keyslots' public facts: id, kind, creation time."""
        return [
            {"id": s["id"], "kind": s["kind"], "created": s.get("created", "")}
            for s in self.array.config["keyslots"]
        ]

    def update_config(
        self, everywhere: bool = False, epoch_id: str | None = None, **changes: Any
    ) -> None:
        """Write a new superblock generation with these config entries changed
        (and epoch_id, a new journal epoch, added to the lineage)."""
        config = dict(self.array.config, **changes)
        self.array.write_superblocks(config, everywhere=everywhere, epoch_id=epoch_id)
        self.local.record_generation(self.array.generation)

    def _write_keyslots(self, slots: list[dict[str, Any]], everywhere: bool) -> None:
        self.update_config(everywhere=everywhere, keyslots=slots)

    def add_keyslot(self, kind: str, secret: bytes | bytearray) -> int:
        slots = list(self.array.config["keyslots"])
        if len(slots) >= keys.MAX_KEYSLOTS:
            raise UsageError(
                f"pool {self.id} has {len(slots)} keyslots, the most it can: remove one first"
            )
        slot_id = max((int(s["id"]) for s in slots), default=-1) + 1
        slots.append(
            keys.make_keyslot(
                self.id, slot_id, kind, secret, self._master, self.array.config["kdf"]
            )
        )
        self._write_keyslots(slots, everywhere=False)
        return slot_id

    def remove_keyslot(self, slot_id: int) -> None:
        """Remove a keyslot and overwrite every superblock slot that held it."""
        slots = list(self.array.config["keyslots"])
        remaining = [s for s in slots if int(s["id"]) != slot_id]
        if len(remaining) == len(slots):
            raise NotFound(f"pool {self.id} has no keyslot {slot_id}: see `dwfsctl key list`")
        if not remaining:
            raise UsageError(
                f"keyslot {slot_id} is the pool's last: add another key before removing it"
            )
        self._write_keyslots(remaining, everywhere=True)

    def change_keyslot(self, slot_id: int, kind: str, secret: bytes | bytearray) -> None:
        """Give keyslot slot_id a new secret, keeping its number; the old secret stops working."""
        slots = list(self.array.config["keyslots"])
        current = next((s for s in slots if int(s["id"]) == slot_id), None)
        if current is None:
            raise NotFound(f"pool {self.id} has no keyslot {slot_id}: see `dwfsctl key list`")
        if current["kind"] != kind:
            raise UsageError(
                f"keyslot {slot_id} holds a {current['kind']}, not a {kind}: "
                "add a new keyslot and remove this one instead"
            )
        new = keys.make_keyslot(
            self.id, slot_id, kind, secret, self._master, self.array.config["kdf"]
        )
        self._write_keyslots(
            [new if int(s["id"]) == slot_id else s for s in slots], everywhere=True
        )

    # -- maintenance ----------------------------------------------------------

    async def scrub(self, progress: ScrubProgress | None = None) -> ScrubJob:
        """Scrub the whole pool now (resuming one that was interrupted)."""
        return await self.scrubber.run(progress)

    async def replace(self, old: str, new: Path, progress: Progress | None = None) -> None:
        await self.store.sync()
        args: tuple[Any, ...] = (self.array, old, new) + (() if progress is None else (progress,))
        await trio.to_thread.run_sync(replace_device, *args)
        self.local.record_generation(self.array.generation)

    @property
    def needs_resilver(self) -> bool:
        return any(m.online and m.resilver for m in self.array.members)

    async def resilver(self) -> int:
        """Rebuild what returning members missed, a batch of stripes per worker call so
        that cancelling (unmount) stops it between batches; shards rewritten.

        The flag stays in the superblocks until a pass completes, so an interrupted
        resilver starts again at the next open.
        """
        array = self.array
        total = await trio.to_thread.run_sync(
            lambda: sum(array.segment_end(s) for s in array.segments())
        )
        self.resilvered = (0, 0, total)
        walk = array.stripes()  # read a batch at a time: flat memory however large the pool
        try:
            rewritten = stripes = walked = 0
            while batch := await trio.to_thread.run_sync(_next, walk, RESILVER_BATCH):
                rewritten += await trio.to_thread.run_sync(resilver_batch, array, batch)
                stripes += len(batch)
                walked += sum(SHARD_HEADER_SIZE + h.addr.shard_len for h in batch)
                self.resilvered = (stripes, walked, max(total, walked))
            await self.store.sync()
            await trio.to_thread.run_sync(finish_resilver, self.array)
        finally:
            self.resilvered = None
        self.local.record_generation(self.array.generation)
        self.events.emit("resilver_finished", shards_rebuilt=rewritten)
        return rewritten

    async def replace_live(self, old: str, new: Path) -> None:
        """Put the empty directory `new` in member old's place at once, on a pool in
        use (see devices.swap_in); the caller then runs resilver().

        Raises:
            Busy: a resilver is under way, or a scrub is running or paused (its
                walk would not cover what the new member lacks).
        """
        if self.array.resilvering():
            raise Busy("a resilver is under way: replace when it is done (see dwfsctl status)")
        job = self.scrubber.job
        if job is not None and job.state in (RUNNING, PAUSED):
            raise Busy(
                f"a scrub is {job.state}: stop it (dwfsctl scrub --stop) or let it finish, "
                "then replace"
            )
        gone = await trio.to_thread.run_sync(swap_in, self.array, old, new)
        self.local.record_generation(self.array.generation)
        await self.store.sync()  # puts that began before the swap wrote to the old member
        await self.store.wait_for_loads()
        if gone.device is not None:
            gone.device.close()

    def status(self) -> dict[str, Any]:
        layout = self.array.layout
        return {
            "pool": self.id,
            "state": self.array.state(),
            "layout": {"name": layout.name, "k": layout.k, "m": layout.m, "width": layout.width},
            **self.health(),
            "generation": self.array.generation,
            "chunks": len(self.store.index),
            "cipher": self.array.config["cipher"],
            "compression": self.array.config["compression"],
            "padding": self.array.config.get("padding", "none"),
            "scan": None if self.scrubber.job is None else self.scrubber.job.to_json(),
            "events": list(self.events.recent),
            "resilver": None
            if self.resilvered is None
            else dict(zip(("stripes_done", "bytes_done", "bytes"), self.resilvered, strict=True)),
        }

    def health(self) -> dict[str, Any]:
        """The devices' states and error counts and the capacity: what a watch
        of the pool compares (safe from a worker thread; it reads the devices)."""
        return {
            "devices": [
                {
                    "path": str(m.path),
                    "uuid": m.uuid,
                    "state": m.state,
                    "reason": m.reason,
                    "read_errors": m.errors["read"],
                    "checksum_errors": m.errors["checksum"],
                    "write_errors": m.errors["write"],
                    "resilvering": m.resilver,
                }
                for m in self.array.members
            ],
            "capacity": self.array.capacity(),
        }

    def close(self) -> None:
        self.disconnect()
        self.array.close()
        self.local.close()
        keys.wipe(self._master)


def _next(walk: Iterator[T], count: int) -> list[T]:
    return list(itertools.islice(walk, count))


def _unlock(path: Path, credential: keys.Credential, accept_rollback: bool = False) -> Pool:
    slots = read_slots(path)
    newest = slots[0].superblock
    master, slot_id = keys.unlock(newest.pool, newest.config.get("keyslots", []), credential)
    try:
        derived = keys.derive_keys(master)
        array = open_array(path, derived.superblock, derived.shard)
        try:
            array.take_locks()
        except Busy as exc:
            array.close()
            raise _held_by(array.pool, exc) from None
        except BaseException:
            array.close()
            raise
        local = LocalState(array.pool)
        last = local.last_generation()
        if accept_rollback:
            log.warning(
                "pool %s taken as its devices are (generation %d; this machine saw %d): "
                "freshness is not checked on this mount",
                array.pool,
                array.generation,
                last,
            )
            local.forget_freshness(array.generation)
        elif array.generation < last:
            array.close()
            raise IntegrityError(
                f"pool {array.pool} is at generation {array.generation} but this machine saw "
                f"generation {last}: its devices were rolled back; if you restored them on "
                "purpose, mount with -o accept_rollback"
            )
    except BaseException:
        keys.wipe(master)
        raise
    return Pool(array, master, slot_id)


def _held_by(pool: str, busy: Busy) -> Busy:
    """Name the mount that holds the pool, where the holder is one."""
    info = LocalState(pool).mount_info()
    if busy.pid is None or info is None or info.get("pid") != busy.pid:
        return busy
    return Busy(
        f"the pool is in use by the mount at {info.get('mountpoint')!s} (pid {busy.pid}): "
        "unmount it first",
        busy.pid,
    )


def _recover(pool: Pool) -> None:
    for addr, cid in pool.array.recover():
        pool.store.index.add(cid, addr)
    if pool.array.stale:
        pool.array.write_superblocks()
    pool.local.record_generation(pool.array.generation)


@contextlib.asynccontextmanager
async def open_pool(
    path: Path, credential: keys.Credential, accept_rollback: bool = False
) -> AsyncIterator[Pool]:
    """Unlock and open the pool that the device at path belongs to, for this process alone.
    accept_rollback takes its devices as they are, even older than this machine
    saw them (restored from a backup on purpose).

    Raises:
        DeviceError: path is not a device of a pool.
        BadKey: the credential opens no keyslot.
        Busy: another process has the pool open (a mount, say).
        IntegrityError: the superblock is tampered with, or the pool rolled back.
    """
    pool = await trio.to_thread.run_sync(_unlock, path, credential, accept_rollback)
    try:
        await trio.to_thread.run_sync(_recover, pool)
        yield pool
        await pool.store.sync()
    finally:
        pool.close()
