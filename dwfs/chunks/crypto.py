"""Sealing chunks: AEAD with a per-chunk key and a random nonce.

seal(), open_() and sealed_length() are the whole interface; this module never
sees a path, an inode or a device. The sealed format is

    version (1) | cipher (1) | compression (1) | flags (1) | nonce (12) | ciphertext+tag

and the associated data binds it to the format version, the cipher, the
compression, the flags and the chunk id, so a sealed chunk cannot be replayed
under another id or re-labelled. Flag PADDED (a pool option) says the plaintext
is `u32 payload length | payload | zeros` padded to a Padmé length (Nikitin et
al., PETS 2019), so the sealed length reveals only about log log of the size,
at a cost of at most 12% (docs/crypto.md). The per-chunk key is keyed BLAKE3 of the chunk id
under the chunk-data key; with a fresh 96-bit random nonce per seal, no
(key, nonce) pair repeats in practice (docs/crypto.md has the bound).
"""

from __future__ import annotations

import os
import struct

import blake3
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from dwfs._accel import uninitialized
from dwfs.errors import IntegrityError, UsageError
from dwfs.types import Buffer, ChunkId

VERSION = 1
CIPHERS = {"aes-256-gcm": 1, "chacha20-poly1305": 2}
_AEADS: dict[int, type[AESGCM] | type[ChaCha20Poly1305]] = {1: AESGCM, 2: ChaCha20Poly1305}
_HEADER = struct.Struct("<BBBB12s")
OVERHEAD = _HEADER.size + 16
PADDED = 1
"""Flag: the plaintext is length-prefixed and padded to a Padmé length."""
_LENGTH = struct.Struct("<I")
PADDINGS = {"none": 0, "padme": PADDED}


def padding_flags(name: str) -> int:
    try:
        return PADDINGS[name]
    except KeyError:
        raise UsageError(f"unknown padding {name!r}: use one of {', '.join(PADDINGS)}") from None


def padme(length: int) -> int:
    """The Padmé length for `length` bytes: at most 12% more, and only
    O(log log length) bits of the length survive."""
    if length < 2:
        return length
    exponent = length.bit_length() - 1
    mantissa_bits = exponent.bit_length()
    mask = (1 << (exponent - mantissa_bits)) - 1
    return (length + mask) & ~mask


def cipher_id(name: str) -> int:
    try:
        return CIPHERS[name]
    except KeyError:
        raise UsageError(f"unknown cipher {name!r}: use one of {', '.join(CIPHERS)}") from None


def _chunk_key(data_key: bytes, chunk_id: ChunkId) -> bytes:
    return blake3.blake3(chunk_id, key=data_key).digest()


def _ad(header: bytes, chunk_id: ChunkId) -> bytes:
    return b"dwfs chunk|" + header[:4] + chunk_id


def sealed_length(payload_len: int, flags: int = 0) -> int:
    """How long seal() makes a payload of payload_len bytes."""
    if flags & PADDED:
        return OVERHEAD + padme(_LENGTH.size + payload_len)
    return OVERHEAD + payload_len


def seal(
    cipher: int,
    data_key: bytes,
    chunk_id: ChunkId,
    payload: Buffer,
    compression: int,
    room: int = 0,
    flags: int = 0,
) -> bytearray:
    """Encrypt and authenticate one chunk's (possibly compressed) payload,
    padded to a Padmé length when flags has PADDED.

    The sealed bytes come first in a buffer of at least `room` bytes, zeros
    after them, encrypted in place: a caller that pads (the stripe coder) needs
    no further copy.
    """
    size = memoryview(payload).nbytes
    length = sealed_length(size, flags)
    if flags & PADDED:
        plain = bytearray(length - OVERHEAD)
        _LENGTH.pack_into(plain, 0, size)
        memoryview(plain)[_LENGTH.size : _LENGTH.size + size] = memoryview(payload).cast("B")
        payload = plain
    nonce = os.urandom(12)
    header = _HEADER.pack(VERSION, cipher, compression, flags, nonce)
    out = uninitialized(max(room, length))
    out[: _HEADER.size] = header
    aead = _AEADS[cipher](_chunk_key(data_key, chunk_id))
    target = memoryview(out)[_HEADER.size : length]
    aead.encrypt_into(nonce, payload, _ad(header, chunk_id), target)
    memoryview(out)[length:] = bytes(len(out) - length)
    return out


def open_(data_key: bytes, chunk_id: ChunkId, sealed: Buffer) -> tuple[int, bytearray]:
    """(compression, payload) of a sealed chunk. The payload is decrypted
    straight into an unzeroed buffer: zeroing a chunk-sized one first would
    cost as much as the decryption.

    Raises:
        IntegrityError: the chunk fails authentication or is malformed.
    """
    view = memoryview(sealed)
    if len(view) < OVERHEAD:
        raise IntegrityError(f"chunk {chunk_id.hex()[:16]} is truncated")
    version, cipher, compression, flags, nonce = _HEADER.unpack_from(view)
    if version != VERSION or cipher not in _AEADS or flags & ~PADDED:
        raise IntegrityError(f"chunk {chunk_id.hex()[:16]} has an unknown format")
    header = bytes(view[: _HEADER.size])
    aead = _AEADS[cipher](_chunk_key(data_key, chunk_id))
    payload = uninitialized(len(view) - OVERHEAD)
    try:
        aead.decrypt_into(nonce, view[_HEADER.size :], _ad(header, chunk_id), payload)
    except InvalidTag:
        raise IntegrityError(f"chunk {chunk_id.hex()[:16]} fails authentication") from None
    if flags & PADDED:
        if len(payload) < _LENGTH.size:
            raise IntegrityError(f"chunk {chunk_id.hex()[:16]} has a malformed padding")
        (size,) = _LENGTH.unpack_from(payload)
        if size > len(payload) - _LENGTH.size:
            raise IntegrityError(f"chunk {chunk_id.hex()[:16]} has a malformed padding")
        payload = payload[_LENGTH.size : _LENGTH.size + size]
    return compression, payload


def _record_key(key: bytes, context: bytes) -> bytes:
    return blake3.blake3(b"dwfs record|" + context, key=key).digest()


def seal_record(key: bytes, context: bytes, plaintext: bytes) -> bytes:
    """AES-256-GCM of a metadata record under a key derived from key and context.

    context names the record uniquely (say, journal epoch and txg), so each record
    has its own key and a nonce can never repeat under one key.
    """
    nonce = os.urandom(12)
    return nonce + AESGCM(_record_key(key, context)).encrypt(nonce, plaintext, context)


def open_record(key: bytes, context: bytes, sealed: bytes) -> bytes:
    """The plaintext of seal_record's output.

    Raises:
        IntegrityError: the record fails authentication.
    """
    try:
        return AESGCM(_record_key(key, context)).decrypt(sealed[:12], sealed[12:], context)
    except (InvalidTag, ValueError):
        raise IntegrityError("a metadata record fails authentication") from None
