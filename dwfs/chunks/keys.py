"""The key hierarchy: keyslots wrap one random master key; sub-keys derive from it.

A passphrase or key file goes through Argon2id to a key-encryption key (KEK);
a printable recovery key, 256 random bits, goes through BLAKE3 derive_key. The
KEK unwraps the master key with AES-256-GCM, the associated data binding the
slot to its pool, number and kind. Sub-keys come from the master key by BLAKE3
derive_key with one context string each, so no key is ever used for two jobs.
Changing a passphrase rewrites one keyslot and never touches data.

Secrets are held in bytearrays and zeroed when done, where Python allows: the
cryptography library and bytes objects made from them keep copies we cannot
reach, which docs/crypto.md states.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import os
import secrets
from typing import Any

import blake3
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from dwfs.errors import BadKey, UsageError

MASTER_KEY_SIZE = 32
PASSPHRASE, KEYFILE, RECOVERY = "passphrase", "keyfile", "recovery"
KINDS = (PASSPHRASE, KEYFILE, RECOVERY)
DEFAULT_KDF = {"name": "argon2id", "memory_kib": 65536, "iterations": 3, "lanes": 4}
"""About 0.2 s to unlock on two 2026 cores (docs/crypto.md)."""
STRONG_KDF = {"name": "argon2id", "memory_kib": 1048576, "iterations": 2, "lanes": 4}
"""1 GiB, as LUKS2 uses: about 2.7 s to unlock on two 2026 cores."""
KDF_PRESETS = {"standard": DEFAULT_KDF, "strong": STRONG_KDF}
KDF_BOUNDS = {"memory_kib": (8, 2 * 1024 * 1024), "iterations": (1, 16), "lanes": (1, 16)}
"""What a keyslot may ask of Argon2id: it is read before the pool is known to be
ours, so a crafted slot must not hang an unlock or ask for terabytes."""
MAX_KEYSLOTS = 32
_CONTEXT = "dwfs 2026-11-23 {}"
_RECOVERY_GROUPS = 13


@dataclasses.dataclass(frozen=True, slots=True)
class Credential:
    """What the user presented to unlock a pool: a passphrase or a key file's bytes."""

    kind: str
    secret: bytearray

    def wipe(self) -> None:
        self.secret[:] = bytes(len(self.secret))


@dataclasses.dataclass(frozen=True, slots=True)
class Keys:
    """Sub-keys of one pool, each for one purpose only."""

    chunk_id: bytes
    chunk_data: bytes
    metadata: bytes
    names: bytes
    superblock: bytes
    shard: bytes
    chunker: bytes
    local_state: bytes
    """MAC of what this machine records about the pool (the journal's chain head)."""
    remote: bytes
    """MAC of the remote tier's superblock, and key of the manifests kept there."""


def derive(master: bytearray | bytes, purpose: str) -> bytes:
    return blake3.blake3(bytes(master), derive_key_context=_CONTEXT.format(purpose)).digest()


def derive_keys(master: bytearray) -> Keys:
    return Keys(*(derive(master, f.name) for f in dataclasses.fields(Keys)))


def new_master_key() -> bytearray:
    return bytearray(secrets.token_bytes(MASTER_KEY_SIZE))


def new_recovery_key() -> str:
    """256 random bits as 13 groups of 4 base32 characters."""
    text = base64.b32encode(secrets.token_bytes(32)).decode().rstrip("=")
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def parse_recovery_key(secret: bytes | bytearray) -> bytes | None:
    """The 32 bytes a recovery key spells, or None if secret is not one."""
    text = bytes(secret).decode("ascii", "replace").strip().upper().replace("-", "")
    if len(text) != 52:
        return None
    try:
        raw = base64.b32decode(text + "====")
    except ValueError:
        return None
    return raw if len(raw) == 32 else None


def check_kdf(kdf: Any) -> None:
    """Refuse KDF parameters beyond KDF_BOUNDS (or malformed).

    Raises:
        ValueError: saying which parameter.
    """
    if not isinstance(kdf, dict) or kdf.get("name") not in ("argon2id", "blake3"):
        raise ValueError("an unknown KDF")
    salt = kdf.get("salt", "")
    if not isinstance(salt, str) or not 16 <= len(salt) <= 128:
        raise ValueError("a salt of the wrong size")
    if kdf["name"] != "argon2id":
        return
    for name, (low, high) in KDF_BOUNDS.items():
        value = kdf.get(name)
        if type(value) is not int or not low <= value <= high:
            raise ValueError(f"{name} outside {low}..{high}")
    if kdf["memory_kib"] < 8 * kdf["lanes"]:
        raise ValueError("memory_kib below 8 per lane")


def _kek(slot: dict[str, Any], secret: bytes | bytearray) -> bytes:
    kdf = slot["kdf"]
    check_kdf(kdf)
    salt = bytes.fromhex(kdf["salt"])
    if kdf["name"] == "argon2id":
        return Argon2id(
            salt=salt,
            length=32,
            iterations=int(kdf["iterations"]),
            lanes=int(kdf["lanes"]),
            memory_cost=int(kdf["memory_kib"]),
        ).derive(bytes(secret))
    if kdf["name"] == "blake3":
        hasher = blake3.blake3(derive_key_context=_CONTEXT.format("recovery keyslot"))
        hasher.update(salt)
        hasher.update(secret)
        return hasher.digest()
    raise UsageError(f"keyslot {slot['id']} uses an unknown KDF {kdf['name']!r}")


def _ad(pool: str, slot_id: int, kind: str) -> bytes:
    return f"dwfs keyslot v1|{pool}|{slot_id}|{kind}".encode()


def make_keyslot(
    pool: str,
    slot_id: int,
    kind: str,
    secret: bytes | bytearray,
    master: bytearray,
    kdf: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A keyslot (JSON-ready) that opens with `secret` and yields `master`."""
    if kind not in KINDS:
        raise UsageError(f"unknown keyslot kind {kind!r}")
    if kind == RECOVERY:
        params: dict[str, Any] = {"name": "blake3"}
        material = parse_recovery_key(secret)
        if material is None:
            raise UsageError("not a recovery key")
        secret = material
    else:
        params = dict(kdf or DEFAULT_KDF)
        if not secret:
            raise UsageError(f"an empty {kind} cannot protect a pool: give a non-empty one")
    params["salt"] = secrets.token_bytes(16).hex()
    slot: dict[str, Any] = {"id": slot_id, "kind": kind, "kdf": params}
    nonce = os.urandom(12)
    wrapped = AESGCM(_kek(slot, secret)).encrypt(nonce, bytes(master), _ad(pool, slot_id, kind))
    slot["nonce"] = nonce.hex()
    slot["wrapped"] = wrapped.hex()
    slot["created"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return slot


def _try_slot(pool: str, slot: dict[str, Any], secret: bytes | bytearray) -> bytearray | None:
    try:
        kek = _kek(slot, secret)
        master = AESGCM(kek).decrypt(
            bytes.fromhex(slot["nonce"]),
            bytes.fromhex(slot["wrapped"]),
            _ad(pool, int(slot["id"]), slot["kind"]),
        )
    except (InvalidTag, ValueError, KeyError, TypeError, AttributeError):
        return None
    return bytearray(master)


def _well_formed(slot: Any) -> bool:
    """A slot worth trying: the fields unlock reads, a KDF within bounds."""
    if not isinstance(slot, dict) or slot.get("kind") not in KINDS:
        return False
    try:
        check_kdf(slot.get("kdf"))
        int(slot["id"])
    except (ValueError, KeyError, TypeError):
        return False
    return True


def unlock(pool: str, slots: list[dict[str, Any]], credential: Credential) -> tuple[bytearray, int]:
    """The master key and the id of the keyslot that opened it.

    A passphrase that spells a recovery key is tried on recovery slots first.

    Raises:
        BadKey: no keyslot opens with this credential.
    """
    slots = [s for s in slots[:MAX_KEYSLOTS] if _well_formed(s)]
    order: list[tuple[dict[str, Any], bytes | bytearray]] = []
    if credential.kind == KEYFILE:
        order = [(s, credential.secret) for s in slots if s["kind"] == KEYFILE]
    else:
        recovery = parse_recovery_key(credential.secret)
        if recovery is not None:
            order = [(s, recovery) for s in slots if s["kind"] == RECOVERY]
        order += [(s, credential.secret) for s in slots if s["kind"] == PASSPHRASE]
    for slot, secret in order:
        master = _try_slot(pool, slot, secret)
        if master is not None:
            return master, int(slot["id"])
    what = "key file" if credential.kind == KEYFILE else "passphrase"
    raise BadKey(f"wrong {what}: no keyslot of pool {pool} opens with it")


def wipe(buffer: bytearray) -> None:
    buffer[:] = bytes(len(buffer))
