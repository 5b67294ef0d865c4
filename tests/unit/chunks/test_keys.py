from __future__ import annotations

import pytest

from dwfs.chunks import keys
from dwfs.errors import BadKey, UsageError
from tests.conftest import FAST_KDF

POOL = "pool-uuid"


def cred(secret: bytes, kind: str = keys.PASSPHRASE) -> keys.Credential:
    return keys.Credential(kind, bytearray(secret))


def test_passphrase_keyfile_and_recovery_slots_open_the_same_master() -> None:
    master = keys.new_master_key()
    recovery = keys.new_recovery_key()
    slots = [
        keys.make_keyslot(POOL, 0, keys.PASSPHRASE, b"hunter2", master, FAST_KDF),
        keys.make_keyslot(POOL, 1, keys.KEYFILE, b"\x00key file bytes", master, FAST_KDF),
        keys.make_keyslot(POOL, 2, keys.RECOVERY, recovery.encode(), master),
    ]
    assert keys.unlock(POOL, slots, cred(b"hunter2")) == (master, 0)
    assert keys.unlock(POOL, slots, cred(b"\x00key file bytes", keys.KEYFILE)) == (master, 1)
    assert keys.unlock(POOL, slots, cred(recovery.lower().encode())) == (master, 2)
    with pytest.raises(BadKey, match="wrong passphrase"):
        keys.unlock(POOL, slots, cred(b"hunter3"))
    with pytest.raises(BadKey, match="wrong key file"):
        keys.unlock(POOL, slots, cred(b"hunter2", keys.KEYFILE))


def test_a_slot_is_bound_to_its_pool_and_number() -> None:
    master = keys.new_master_key()
    slot = keys.make_keyslot(POOL, 0, keys.PASSPHRASE, b"pw", master, FAST_KDF)
    with pytest.raises(BadKey):
        keys.unlock("another-pool", [slot], cred(b"pw"))
    with pytest.raises(BadKey):
        keys.unlock(POOL, [dict(slot, id=5)], cred(b"pw"))


def test_sub_keys_are_distinct_and_deterministic() -> None:
    master = keys.new_master_key()
    derived = keys.derive_keys(master)
    values = [getattr(derived, f) for f in derived.__dataclass_fields__]
    assert len(set(values)) == len(values)
    assert keys.derive_keys(bytearray(master)) == derived
    assert master not in values


def test_recovery_key_format() -> None:
    key = keys.new_recovery_key()
    assert len(key.split("-")) == 13
    assert keys.parse_recovery_key(key.encode()) is not None
    assert keys.parse_recovery_key(b"not a recovery key") is None


def test_empty_passphrase_refused() -> None:
    with pytest.raises(UsageError, match="empty"):
        keys.make_keyslot(POOL, 0, keys.PASSPHRASE, b"", keys.new_master_key())


def test_wipe_zeroes() -> None:
    secret = bytearray(b"secret")
    keys.wipe(secret)
    assert secret == bytes(6)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("memory_kib", 1 << 40),
        ("memory_kib", 4),
        ("iterations", 10**9),
        ("iterations", 0),
        ("lanes", 1 << 20),
        ("lanes", 1.5),
        ("salt", "00"),
        ("name", "scrypt"),
    ],
)
def test_a_crafted_slot_cannot_hang_unlock_or_ask_for_terabytes(field: str, value: object) -> None:
    master = keys.new_master_key()
    good = keys.make_keyslot(POOL, 0, keys.PASSPHRASE, b"pw", master, FAST_KDF)
    crafted = {**good, "id": 1, "kdf": {**good["kdf"], field: value}}
    with pytest.raises(BadKey):
        keys.unlock(POOL, [crafted], cred(b"pw"))
    assert keys.unlock(POOL, [crafted, good], cred(b"pw")) == (master, 0)


def test_at_most_32_keyslots_are_tried() -> None:
    master = keys.new_master_key()
    slot = keys.make_keyslot(POOL, 40, keys.PASSPHRASE, b"pw", master, FAST_KDF)
    other = keys.make_keyslot(POOL, 0, keys.PASSPHRASE, b"other", master, FAST_KDF)
    with pytest.raises(BadKey):
        keys.unlock(POOL, [other] * keys.MAX_KEYSLOTS + [slot], cred(b"pw"))


def test_the_presets_are_within_the_bounds() -> None:
    for preset in keys.KDF_PRESETS.values():
        keys.check_kdf({**preset, "salt": "00" * 16})
    assert keys.KDF_PRESETS["strong"]["memory_kib"] == 1 << 20, "1 GiB, as LUKS2"
