"""The device array on real directories: degraded reads, healing, scrub, replace,
torn writes and superblock checks."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import pytest

from dwfs.devices import (
    DeviceArray,
    create_devices,
    open_array,
    parse_layout,
    replace,
    scrub,
)
from dwfs.devices._layout import shards_on
from dwfs.devices._shard import HEADER_SIZE
from dwfs.errors import DeviceError, IntegrityError, NotFound, Unrecoverable, UsageError
from dwfs.types import ChunkId

SB_KEY = bytes(range(32))
SHARD_KEY = bytes(range(1, 33))


def make(tmp_path: Path, spec: str, n: int, segment_size: int = 1 << 20) -> list[Path]:
    paths = [tmp_path / f"dev{i}" for i in range(n)]
    create_devices(paths, parse_layout(spec, n), {}, SB_KEY, "pool-1", segment_size)
    return paths


def put(array: DeviceArray, payload: bytes) -> tuple:  # type: ignore[type-arg]
    cid = ChunkId(os.urandom(32))
    addr = array.allocate(len(payload))
    array.write_sealed(addr, cid, payload)
    return addr, cid


def fill(array: DeviceArray, count: int, seed: int = 0) -> list[tuple]:  # type: ignore[type-arg]
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        payload = rng.randbytes(rng.randint(1, 50_000))
        addr, cid = put(array, payload)
        out.append((addr, cid, payload))
    array.sync()
    return out


def reopen(paths: list[Path], named: int = 0) -> DeviceArray:
    array = open_array(paths[named], SB_KEY, SHARD_KEY)
    array.recover()
    return array


def corrupt_file(path: Path, rng: random.Random, flips: int = 20) -> None:
    data = bytearray(path.read_bytes())
    for _ in range(flips):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("spec", "n"),
    [
        ("raid0", 2),
        ("raid1", 3),
        ("raid10", 4),
        ("raidz1", 3),
        ("raidz2", 6),
        ("raidz3", 6),
        ("2+1", 5),
    ],
)
def test_round_trip_and_losing_m_devices(tmp_path: Path, spec: str, n: int) -> None:
    paths = make(tmp_path, spec, n)
    array = reopen(paths)
    stored = fill(array, 30)
    array.close()
    layout = parse_layout(spec, n)
    for gone in range(layout.m + 1):
        survivors = paths[gone:]
        for p in paths[:gone]:
            if p.exists():
                shutil.move(p, tmp_path / f"away-{p.name}")
        array = reopen(paths, named=gone)
        assert array.state() == ("online" if gone == 0 else "degraded")
        for addr, cid, payload in stored:
            assert array.read_stripe(addr, cid) == payload
        array.close()
        assert survivors


def test_more_losses_than_parity_is_unrecoverable(tmp_path: Path) -> None:
    paths = make(tmp_path, "raidz1", 3)
    array = reopen(paths)
    stored = fill(array, 5)
    array.close()
    shutil.rmtree(paths[0])
    shutil.rmtree(paths[1])
    array = reopen(paths, named=2)
    assert array.state() == "faulted"
    with pytest.raises(Unrecoverable):
        for addr, cid, _ in stored:
            array.read_stripe(addr, cid)


def test_bitrot_on_m_devices_is_read_through_and_scrubbed(tmp_path: Path) -> None:
    paths = make(tmp_path, "raidz2", 6)
    array = reopen(paths)
    stored = fill(array, 40)
    array.close()
    rng = random.Random(7)
    for p in paths[1:3]:
        for seg in (p / "segments").iterdir():
            corrupt_file(seg, rng, flips=200)
    array = reopen(paths)
    for addr, cid, payload in stored[:10]:
        assert array.read_stripe(addr, cid) == payload
    report = scrub(array)
    assert report.stripes_checked == 40
    assert report.errors_found > 0
    assert report.errors_repaired == report.errors_found
    assert report.unrepairable == 0
    counted = sum(m.errors["checksum"] for m in array.members)
    assert counted >= report.errors_found
    array.close()
    array = reopen(paths)
    assert sum(m.errors["checksum"] for m in array.members) == counted, "counters persist"
    again = scrub(array)
    assert (again.errors_found, again.unrepairable) == (0, 0)
    for addr, cid, payload in stored:
        assert array.read_stripe(addr, cid) == payload


def test_scrub_reports_unrepairable_stripes(tmp_path: Path) -> None:
    paths = make(tmp_path, "raidz1", 3)
    array = reopen(paths)
    fill(array, 4)
    array.close()
    for p in paths[:2]:
        for seg in (p / "segments").iterdir():
            data = bytearray(seg.read_bytes())
            data[200:300] = bytes(100)
            seg.write_bytes(bytes(data))
    array = reopen(paths, named=2)
    report = scrub(array)
    assert report.unrepairable >= 1


def test_replace_a_lost_device(tmp_path: Path) -> None:
    paths = make(tmp_path, "raidz1", 4)
    array = reopen(paths)
    stored = fill(array, 25)
    array.close()
    shutil.rmtree(paths[2])
    array = reopen(paths)
    assert array.state() == "degraded"
    new = tmp_path / "new"
    replace(array, str(paths[2]), new)
    assert array.state() == "online"
    array.close()
    shutil.rmtree(paths[0])
    array = reopen(paths, named=1)
    assert array.state() == "degraded"
    assert [m.path for m in array.members][2] == new.resolve()
    for addr, cid, payload in stored:
        assert array.read_stripe(addr, cid) == payload


def test_replace_refuses_bad_targets(tmp_path: Path) -> None:
    paths = make(tmp_path, "raidz1", 3)
    array = reopen(paths)
    with pytest.raises(NotFound):
        replace(array, str(tmp_path / "nope"), tmp_path / "new")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(UsageError, match="not empty"):
        replace(array, str(paths[0]), tmp_path / "full")
    with pytest.raises(UsageError, match="already a device"):
        replace(array, str(paths[0]), paths[1])


def test_replace_that_cannot_finish_changes_nothing(tmp_path: Path) -> None:
    paths = make(tmp_path, "raidz1", 3)
    array = reopen(paths)
    fill(array, 3)
    array.close()
    shutil.rmtree(paths[0])
    shutil.rmtree(paths[1])
    array = reopen(paths, named=2)
    generation = array.generation
    with pytest.raises(Unrecoverable):
        replace(array, str(paths[0]), tmp_path / "new")
    assert not (tmp_path / "new").exists()
    assert array.generation == generation


def test_torn_stripe_after_the_sync_mark_is_dropped(tmp_path: Path) -> None:
    paths = make(tmp_path, "raidz1", 3)
    array = reopen(paths)
    stored = fill(array, 3)
    addr, _ = put(array, os.urandom(30_000))
    array.close()
    for p in paths[:2]:  # the crash tore the last stripe on two of three devices
        seg = p / "segments" / f"{addr.segment:08d}.seg"
        with seg.open("r+b") as f:
            f.truncate(addr.offset + 1000)
    array = open_array(paths[0], SB_KEY, SHARD_KEY)
    found = array.recover()
    assert [a for a, _ in found] == [a for a, _, _ in stored]
    fresh = array.allocate(10)
    assert fresh.offset >= addr.offset and fresh.seq > addr.seq


def test_segments_roll_over(tmp_path: Path) -> None:
    paths = make(tmp_path, "raid1", 2, segment_size=100_000)
    array = reopen(paths)
    stored = fill(array, 10)
    assert len({a.segment for a, _, _ in stored}) > 1
    array.close()
    array = reopen(paths)
    assert len(array.recover()) == 10


def test_tampered_superblock(tmp_path: Path) -> None:
    paths = make(tmp_path, "raidz1", 3)
    sb = paths[1] / "superblock"
    data = bytearray(sb.read_bytes())
    at = data.index(b'"segment_size":') + 16
    data[at] = ord("9") if data[at] != ord("9") else ord("8")
    sb.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="fails authentication"):
        open_array(paths[1], SB_KEY, SHARD_KEY)
    array = open_array(paths[0], SB_KEY, SHARD_KEY)
    assert [m.state for m in array.members] == ["online", "faulted", "online"]
    assert array.state() == "degraded"


def test_wrong_key_never_verifies(tmp_path: Path) -> None:
    paths = make(tmp_path, "raid1", 2)
    with pytest.raises(IntegrityError):
        open_array(paths[0], bytes(32), SHARD_KEY)


def test_rolled_back_device_superblock_is_noticed_and_healed(tmp_path: Path) -> None:
    paths = make(tmp_path, "raidz1", 3)
    old = (paths[2] / "superblock").read_bytes()
    array = reopen(paths)
    array.write_superblocks()
    array.write_superblocks()
    newest = array.generation
    array.close()
    (paths[2] / "superblock").write_bytes(old)
    array = open_array(paths[2], SB_KEY, SHARD_KEY)
    assert array.generation == newest, "the newest generation among members wins"
    assert array.stale
    array.write_superblocks()
    array.close()
    assert not open_array(paths[2], SB_KEY, SHARD_KEY).stale


def test_foreign_and_missing_devices(tmp_path: Path) -> None:
    paths = make(tmp_path, "raidz1", 3)
    other = [tmp_path / "o0", tmp_path / "o1"]
    create_devices(other, parse_layout("raid1", 2), {}, SB_KEY, "pool-2", 1 << 20)
    shutil.rmtree(paths[1])
    shutil.copytree(other[0], paths[1])
    array = open_array(paths[0], SB_KEY, SHARD_KEY)
    assert array.members[1].state == "faulted"
    with pytest.raises(DeviceError, match="not a dwfs device"):
        open_array(tmp_path, SB_KEY, SHARD_KEY)
    with pytest.raises(DeviceError, match="does not exist"):
        open_array(tmp_path / "missing", SB_KEY, SHARD_KEY)


def test_create_refuses_bad_devices_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    layout = parse_layout("raid1", 2)
    with pytest.raises(UsageError, match="not empty"):
        create_devices([tmp_path / "a", tmp_path / "busy"], layout, {}, SB_KEY, "p", 1 << 20)
    assert not (tmp_path / "a").exists()
    with pytest.raises(UsageError, match="named twice"):
        create_devices([tmp_path / "a", tmp_path / "a"], layout, {}, SB_KEY, "p", 1 << 20)
    with pytest.raises(UsageError, match="does not exist"):
        create_devices([tmp_path / "x" / "y", tmp_path / "b"], layout, {}, SB_KEY, "p", 1 << 20)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy"]


def test_fsynced_data_after_a_torn_hole_survives(tmp_path: Path) -> None:
    """A crash can leave stripe A missing while a later stripe B landed; data
    written after reopening must not be hidden behind that hole."""
    paths = make(tmp_path, "raidz1", 3)
    array = reopen(paths)
    stored = fill(array, 2)
    hole, _ = put(array, os.urandom(20_000))
    put(array, os.urandom(20_000))
    array.close()
    for p in paths:
        with (p / "segments" / f"{hole.segment:08d}.seg").open("r+b") as f:
            f.seek(hole.offset)
            f.write(bytes(200))
    array = reopen(paths)
    later = fill(array, 3, seed=9)
    array.close()
    array = reopen(paths)
    found = {a for a, _ in array.recover()}
    assert {a for a, _, _ in stored + later} <= found
    for addr, cid, payload in stored + later:
        assert array.read_stripe(addr, cid) == payload


def test_a_stale_named_device_keeps_every_member_at_its_own_path(tmp_path: Path) -> None:
    paths = make(tmp_path, "raidz1", 3)
    shutil.move(paths[0], tmp_path / "away")
    array = reopen(paths, named=1)
    array.write_superblocks()
    array.close()
    shutil.move(tmp_path / "away", paths[0])
    array = open_array(paths[0], SB_KEY, SHARD_KEY)  # the stale one names the pool
    assert [m.path for m in array.members] == [p.resolve() for p in paths]
    assert [m.resilver for m in array.members] == [True, False, False]


def test_stripes_after_a_failed_write_in_mid_segment_are_still_found(tmp_path: Path) -> None:
    paths = make(tmp_path, "raidz1", 3)
    array = reopen(paths)
    before = fill(array, 2)
    hole = array.allocate(30_000)  # allocated, never written: a write that failed
    after = fill(array, 3, seed=4)
    array.close()
    array = reopen(paths)
    found = {a for a, _ in array.recover()}
    assert {a for a, _, _ in before + after} <= found
    assert hole not in found
    assert sum(1 for _ in array.stripes()) == 5


@pytest.mark.parametrize(
    "spec,n", [("raid1", 2), ("raid5", 3), ("raidz2", 6), ("raid10", 4), ("4+2", 6)]
)
def test_the_data_shards_give_the_sealed_chunk_or_none(tmp_path: Path, spec: str, n: int) -> None:
    """One at a time and in a batch (read-ahead's, with direct reads on the disk)."""
    paths = make(tmp_path, spec, n)
    array = reopen(paths)
    stored = fill(array, 12, seed=n)
    for addr, cid, payload in stored:
        assert bytes(array.read_data_shards(addr, cid) or b"") == payload
        assert array.read_data_shards(addr, ChunkId(os.urandom(32))) is None, "wrong header"
    batch = [(addr, cid) for addr, cid, _ in stored] + [(stored[0][0], ChunkId(os.urandom(32)))]
    together = array.read_data_shards_many(batch)
    assert [bytes(one) if one is not None else None for one in together] == [
        *(payload for _, _, payload in stored),
        None,
    ]
    layout = array.layout
    array.close()
    addr, cid, payload = next(s for s in stored if shards_on(layout, s[0].seq)[0] < layout.k)
    with open(paths[0] / "segments" / f"{addr.segment:08d}.seg", "r+b") as f:
        f.truncate(addr.offset + HEADER_SIZE + 100)  # its header whole, its payload short
    array = reopen(paths)
    assert array.read_data_shards(addr, cid) is None
    together = array.read_data_shards_many([(a, c) for a, c, _ in stored])
    alone = [array.read_data_shards(a, c) for a, c, _ in stored]
    assert [one is None for one in together] == [one is None for one in alone]
    assert together[stored.index((addr, cid, payload))] is None
    assert array.read_stripe(addr, cid) == payload, "the full read rebuilds the short shard"
    array.close()
