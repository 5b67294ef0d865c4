"""Every parser of bytes that come from a device or a remote, as a fuzz target.

A target takes arbitrary bytes and feeds them to one parser. Parsers may refuse
input only with our integrity or format errors (or by returning nothing); any
other exception is a bug. The hypothesis tests (tests/unit/test_fuzz_parsers.py)
run the targets on structured mutations of valid encodings in `make test`; the
coverage-guided fuzzer (`make fuzz`, scripts/fuzz.py with atheris) runs them on
inputs of its own for a bounded time. SEEDS holds one valid encoding per target.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable

import lz4.frame
import msgpack
import zstandard

from dwfs.chunks import _compress, crypto, keys
from dwfs.chunks.keys import PASSPHRASE, Credential
from dwfs.devices import _shard, _superblock
from dwfs.errors import BadKey, FormatError, IntegrityError, RemoteError
from dwfs.meta import MetaDB, _journal
from dwfs.meta._metadata import parse_manifest
from dwfs.snapshots._replica import parse_manifest as parse_remote_manifest
from dwfs.tiers import RemoteSuperblock, decode_superblock, encode_superblock
from dwfs.types import ChunkId, StripeAddr

KEY = bytes(range(32))
EPOCH = bytes(16)
CHUNK_ID = ChunkId(bytes(range(32, 64)))
POOL = "fuzz-pool"
CHEAP_KDF = {"name": "argon2id", "memory_kib": 64, "iterations": 1, "lanes": 1}
EXPECTED = (IntegrityError, FormatError)


def superblock_ring(data: bytes) -> None:
    with contextlib.suppress(*EXPECTED):
        for slot in _superblock.decode_ring(data):
            slot.verify(KEY)


def shard_header(data: bytes) -> None:
    _shard.parse_header(KEY, data)


def sync_mark(data: bytes) -> None:
    _shard.parse_sync_mark(KEY, data)


def journal_epoch(data: bytes) -> None:
    _journal.decode_chain(KEY, POOL, EPOCH, b"", data)


def journal_body(data: bytes) -> None:
    """An authentic record's decompressed body: what a former key holder could
    make replay parse (the journal_epoch target mostly meets the AEAD)."""
    with contextlib.suppress(*EXPECTED):
        _journal.statements_of(_journal.parse_body(data))


def journal_segment(data: bytes) -> None:
    """An authentic segment of the remote's journal, opened: what a former key
    holder could make attach replay."""
    with contextlib.suppress(*EXPECTED):
        _journal.unpack_txgs(data)


def keyslots(data: bytes) -> None:
    """A superblock's keyslot list, tried with a passphrase. The harness keeps each
    slot's Argon2id cheap (the bounds on it are tested on their own): a fuzzer
    would otherwise spend its time deriving keys."""
    try:
        slots = json.loads(data)
    except (ValueError, RecursionError):
        return
    if not isinstance(slots, list):
        return
    for slot in slots:
        kdf = slot.get("kdf") if isinstance(slot, dict) else None
        if isinstance(kdf, dict) and kdf.get("name") == "argon2id":
            kdf["memory_kib"] = min(_int(kdf.get("memory_kib")), 64)
            kdf["iterations"] = min(_int(kdf.get("iterations")), 1)
    with contextlib.suppress(BadKey):
        keys.unlock(POOL, slots, Credential(PASSPHRASE, bytearray(b"fuzz")))


def _int(value: object) -> int:
    return value if type(value) is int else 0


def manifest(data: bytes) -> None:
    with contextlib.suppress(*EXPECTED):
        parse_manifest(data)


def remote_superblock(data: bytes) -> None:
    with contextlib.suppress(*EXPECTED, RemoteError):
        decode_superblock(data, "dir:///fuzz").verify(KEY)


def remote_manifest(data: bytes) -> None:
    with contextlib.suppress(*EXPECTED):
        parse_remote_manifest(POOL, data)


def checkpoint_image(data: bytes) -> None:
    with contextlib.suppress(*EXPECTED):
        MetaDB(data).close()


def sealed_chunk(data: bytes) -> None:
    with contextlib.suppress(*EXPECTED):
        compression, payload = crypto.open_(KEY, CHUNK_ID, data)
        _compress.decompress(compression, payload)


def compressed_chunk(data: bytes) -> None:
    for algorithm in (_compress.ZSTD, _compress.LZ4):
        with contextlib.suppress(*EXPECTED):
            _compress.decompress(algorithm, data, limit=1 << 20)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "superblock_ring": superblock_ring,
    "shard_header": shard_header,
    "sync_mark": sync_mark,
    "journal_epoch": journal_epoch,
    "journal_body": journal_body,
    "journal_segment": journal_segment,
    "keyslots": keyslots,
    "manifest": manifest,
    "checkpoint_image": checkpoint_image,
    "remote_superblock": remote_superblock,
    "remote_manifest": remote_manifest,
    "sealed_chunk": sealed_chunk,
    "compressed_chunk": compressed_chunk,
}


def _seeds() -> dict[str, bytes]:
    sb = _superblock.Superblock(
        pool=POOL,
        device="dev",
        generation=7,
        layout={"name": "raidz1", "k": 2, "m": 1, "width": 3},
        members=(_superblock.Member("dev", "/d0"),),
        segment_size=1 << 20,
        errors={"read": 0, "checksum": 0, "write": 0},
        config={"cipher": "aes-256-gcm"},
        lineage=("ab" * 16,),
    )
    slot = _superblock.encode(sb, KEY)
    header = _shard.pack_header(
        KEY, 3, 2, 1, StripeAddr(5, 0, 4096, 1000, 1990), CHUNK_ID, b"payload"
    )
    record = _journal.encode(KEY, POOL, EPOCH, 1, b"", [("chunk.ref", (b"id",))])
    image = MetaDB().image()
    master = bytearray(32)
    ring = json.dumps([keys.make_keyslot(POOL, 0, PASSPHRASE, b"fuzz", master, CHEAP_KDF)]).encode()
    manifest_body = json.dumps({"txg": 1, "chunks": [["00" * 32, 10, [1, 0, 0, 64, 80]]]})
    cipher = crypto.cipher_id("aes-256-gcm")
    sealed = crypto.seal(cipher, KEY, CHUNK_ID, zstandard.compress(b"x" * 100), _compress.ZSTD)
    return {
        "superblock_ring": slot + bytes(_superblock.SLOT_SIZE) * 3,
        "shard_header": header,
        "sync_mark": _shard.pack_sync_mark(KEY, 1, 2, 3),
        "journal_epoch": record + record,
        "journal_body": msgpack.packb(
            [["chunk.ref", [b"id"]], ["inode.set", [1, "x", 2.5, None]]], use_bin_type=True
        ),
        "journal_segment": _journal.pack_txgs([(5, [("chunk.ref", (b"id",))]), (6, [])]),
        "keyslots": ring,
        "manifest": manifest_body.encode(),
        "checkpoint_image": image,
        "remote_superblock": encode_superblock(
            RemoteSuperblock(POOL, 3, {"cipher": "aes-256-gcm", "manifest": "manifests/ab"}), KEY
        ),
        "remote_manifest": json.dumps(
            {"pool": POOL, "txg": 4, "chunks": [["00" * 32, 10, "11" * 16, 0, 42]]}
        ).encode(),
        "sealed_chunk": bytes(sealed),
        "compressed_chunk": zstandard.compress(b"abc" * 1000) + lz4.frame.compress(b"abc"),
    }


SEEDS = _seeds()
