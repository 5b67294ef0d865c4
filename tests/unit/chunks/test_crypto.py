from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dwfs.chunks import crypto
from dwfs.errors import IntegrityError, UsageError
from dwfs.types import ChunkId

KEY = bytes(range(32))
CID = ChunkId(bytes(32))


@pytest.mark.parametrize("cipher", sorted(crypto.CIPHERS.values()))
@given(payload=st.binary(max_size=5000), compression=st.integers(0, 2))
def test_round_trip(cipher: int, payload: bytes, compression: int) -> None:
    sealed = crypto.seal(cipher, KEY, CID, payload, compression)
    assert len(sealed) == len(payload) + crypto.OVERHEAD
    assert crypto.open_(KEY, CID, sealed) == (compression, bytearray(payload))


@pytest.mark.parametrize("cipher", sorted(crypto.CIPHERS.values()))
@given(payload=st.binary(max_size=5000), room=st.integers(0, 6000))
def test_room_pads_with_zeros_after_the_sealed_bytes(
    cipher: int, payload: bytes, room: int
) -> None:
    length = crypto.sealed_length(len(payload))
    out = crypto.seal(cipher, KEY, CID, payload, 0, room=room)
    assert len(out) == max(room, length)
    assert not any(out[length:])
    assert crypto.open_(KEY, CID, memoryview(out)[:length]) == (0, bytearray(payload))


@pytest.mark.parametrize("cipher", sorted(crypto.CIPHERS.values()))
def test_any_flipped_bit_is_detected(cipher: int) -> None:
    sealed = crypto.seal(cipher, KEY, CID, b"attack at dawn" * 10, 0)
    for i in range(len(sealed)):
        tampered = bytearray(sealed)
        tampered[i] ^= 0x04
        with pytest.raises(IntegrityError):
            crypto.open_(KEY, CID, bytes(tampered))


def test_bound_to_chunk_id_and_key() -> None:
    sealed = crypto.seal(1, KEY, CID, b"payload", 0)
    with pytest.raises(IntegrityError, match="fails authentication"):
        crypto.open_(KEY, ChunkId(b"\x01" * 32), sealed)
    with pytest.raises(IntegrityError):
        crypto.open_(bytes(32), CID, sealed)
    with pytest.raises(IntegrityError, match="truncated"):
        crypto.open_(KEY, CID, sealed[:10])


def test_no_nonce_repeats_for_one_chunk_key() -> None:
    """The same chunk sealed many times never reuses a (key, nonce) pair."""
    nonces = {bytes(crypto.seal(1, KEY, CID, b"same", 0)[4:16]) for _ in range(20_000)}
    assert len(nonces) == 20_000


def test_same_plaintext_different_ciphertext() -> None:
    payload = os.urandom(100)
    assert crypto.seal(2, KEY, CID, payload, 0) != crypto.seal(2, KEY, CID, payload, 0)


def test_unknown_cipher_name() -> None:
    with pytest.raises(UsageError, match="unknown cipher"):
        crypto.cipher_id("rot13")


@given(length=st.integers(0, 1 << 26))
def test_padme_costs_at_most_12_percent_and_keeps_few_lengths(length: int) -> None:
    padded = crypto.padme(length)
    assert length <= padded <= max(length * 1.12, length + 1)
    assert crypto.padme(padded) == padded, "a padded length pads to itself"


def test_padme_leaves_few_distinct_lengths() -> None:
    lengths = {crypto.padme(n) for n in range(200_000, 1_100_000)}
    assert len(lengths) < 100, "about 2^(log log n) lengths per octave, not 900,000"


@given(payload=st.binary(max_size=5000), compression=st.integers(0, 2))
def test_padded_round_trip(payload: bytes, compression: int) -> None:
    sealed = crypto.seal(1, KEY, CID, payload, compression, flags=crypto.PADDED)
    assert len(sealed) == crypto.sealed_length(len(payload), crypto.PADDED)
    assert len(sealed) == crypto.OVERHEAD + crypto.padme(len(payload) + 4)
    assert crypto.open_(KEY, CID, sealed) == (compression, bytearray(payload))
    relabelled = bytearray(sealed)
    relabelled[3] = 0
    with pytest.raises(IntegrityError):
        crypto.open_(KEY, CID, relabelled)
