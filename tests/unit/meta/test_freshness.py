"""Freshness: fsync'd metadata is never silently rolled back. Real pools on real
directories; each "session" commits and then stops without a checkpoint, as a
kill -9 would leave it, and someone holding the devices tampers with the journal
between sessions."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dwfs import PoolOptions, create_pool, open_pool
from dwfs.errors import DeviceError, IntegrityError
from dwfs.meta import Metadata
from dwfs.vfs import open_volume
from tests.conftest import FAST_KDF
from tests.unit.chunks.test_pool import SMALL, pw


def make(tmp_path: Path, layout: str = "raidz1", n: int = 3) -> list[Path]:
    paths = [tmp_path / f"d{i}" for i in range(n)]
    create_pool(paths, pw(), PoolOptions(layout=layout, kdf=FAST_KDF, chunker=SMALL))
    return paths


async def session(device: Path, *names: str, checkpoint: bool = False) -> list[str]:
    """Mount the metadata, commit one txg per name (a chunk row named so), and stop
    without a checkpoint unless asked; the mount's warnings."""
    async with open_pool(device, pw()) as pool:
        meta = await Metadata.open(pool)
        for name in names:
            meta.db.execute("chunk.upsert", (name.encode(), 0, 0, 0, 0, 0))
            await meta.commit()
        if checkpoint:
            await meta.checkpoint()
        return meta.warnings


async def names(device: Path) -> set[str]:
    async with open_pool(device, pw()) as pool:
        meta = await Metadata.open(pool)
        return {bytes(r[0]).decode() for r in meta.db.query("SELECT id FROM chunks")}


def epochs(device: Path) -> list[Path]:
    return sorted((device / "journal").glob("*.jnl"))


def on_every_device(paths: list[Path], index: int, change: str, data: bytes = b"") -> None:
    """Apply one change to the index-th journal epoch file of every device."""
    for path in paths:
        target = epochs(path)[index]
        if change == "delete":
            target.unlink()
        elif change == "write":
            target.write_bytes(data)


async def test_an_untouched_journal_replays_everything(tmp_path: Path) -> None:
    paths = make(tmp_path)
    assert await session(paths[0], "a", "b") == []
    assert await session(paths[1], "c") == []
    assert await names(paths[2]) == {"a", "b", "c"}


def cut(paths: list[Path], records: int) -> None:
    """Cut the last `records` records from the newest epoch on every device."""
    bounds = record_bounds(epochs(paths[0])[-1].read_bytes())
    for path in paths:
        blob = epochs(path)[-1].read_bytes()
        epochs(path)[-1].write_bytes(blob[: bounds[-records][0]])


async def test_a_cut_tail_is_refused(tmp_path: Path) -> None:
    paths = make(tmp_path)
    await session(paths[0], "a", "b", "c")
    cut(paths, 2)
    with pytest.raises(IntegrityError, match="ends at txg 1, but this machine committed txg 3"):
        await names(paths[0])


async def test_a_last_record_the_devices_lack_comes_back_from_the_heads_copy(
    tmp_path: Path, state_dir: Path
) -> None:
    """The chain head is flushed together with the devices' records, carrying a
    copy of its record: a crash between the flushes (or a cut of the last record)
    leaves the devices one record short, which the next mount restores and
    checkpoints, so a machine without the copy reads it too."""
    paths = make(tmp_path)
    await session(paths[0], "a", "b", "c")
    cut(paths, 1)
    (warning,) = await session(paths[0])
    assert "lacked the journal record of txg 3" in warning and "restored" in warning
    shutil.rmtree(state_dir)
    assert await names(paths[1]) == {"a", "b", "c"}


async def test_a_deleted_newest_epoch_is_refused(tmp_path: Path) -> None:
    paths = make(tmp_path)
    await session(paths[0], "a")
    await session(paths[0], "b", "c")
    on_every_device(paths, -1, "delete")
    with pytest.raises(IntegrityError, match="rolled back"):
        await names(paths[0])


async def test_a_deleted_older_epoch_is_refused_even_on_a_new_machine(
    tmp_path: Path, state_dir: Path
) -> None:
    paths = make(tmp_path)
    await session(paths[0], "a")
    await session(paths[0], "b")
    on_every_device(paths, 0, "delete")
    shutil.rmtree(state_dir)
    with pytest.raises(IntegrityError, match="broken before epoch"):
        await names(paths[0])


async def test_an_epoch_number_is_never_reused_nor_its_records_taken_elsewhere(
    tmp_path: Path,
) -> None:
    paths = make(tmp_path)
    await session(paths[0], "a", "a2")  # two records: the head's copy restores only the last
    (first,) = epochs(paths[0])
    saved = first.read_bytes()
    on_every_device(paths, 0, "delete")
    with pytest.raises(IntegrityError):
        await names(paths[0])
    for path in paths:
        (path / "journal" / first.name).write_bytes(saved)
    await session(paths[0], "b", "b2")
    numbers = [p.name for p in epochs(paths[0])]
    assert len(numbers) == 2 and numbers[0] == first.name, "the next mount took a new number"
    on_every_device(paths, 1, "write", saved)
    with pytest.raises(IntegrityError):
        await names(paths[0])


async def test_reordered_records_are_refused(tmp_path: Path) -> None:
    paths = make(tmp_path)
    await session(paths[0], "a", "b", "c")
    blob = epochs(paths[0])[-1].read_bytes()
    (s1, e1), (s2, e2), (s3, e3) = record_bounds(blob)
    on_every_device(paths, -1, "write", blob[s1:e1] + blob[s3:e3] + blob[s2:e2])
    with pytest.raises(IntegrityError, match="committed txg 3"):
        await names(paths[0])


async def test_a_record_spliced_in_from_another_epoch_is_refused(tmp_path: Path) -> None:
    paths = make(tmp_path)
    await session(paths[0], "a", "b")
    older = epochs(paths[0])[-1].read_bytes()
    await session(paths[0], "c", "d", "e")
    newer = epochs(paths[0])[-1].read_bytes()
    (n1s, n1e), _, _ = record_bounds(newer)
    _, (o2s, o2e) = record_bounds(older)
    on_every_device(paths, -1, "write", newer[n1s:n1e] + older[o2s:o2e])
    with pytest.raises(IntegrityError, match="committed txg 5"):
        await names(paths[0])


async def test_a_lost_local_state_is_said_and_nothing_is_lost(
    tmp_path: Path, state_dir: Path
) -> None:
    paths = make(tmp_path)
    await session(paths[0], "a", "b")
    shutil.rmtree(state_dir)
    (warning,) = await session(paths[0])
    assert "no record of pool" in warning and "freshness cannot be checked" in warning
    assert await names(paths[0]) == {"a", "b"}
    assert await session(paths[0]) == [], "recorded again from then on"


async def test_two_degraded_halves_mounted_apart_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """raid1 over two devices: each half alone can be mounted. Mounted apart (as on
    two machines), they grow two histories; together they are refused, naming both."""
    paths = make(tmp_path, layout="raid1", n=2)
    await session(paths[0], "both", checkpoint=True)
    away = tmp_path / "away"
    paths[1].rename(away)
    with pytest.raises(DeviceError, match="-o degraded"):
        async with open_volume(paths[0], pw()):
            pass
    await session(paths[0], "left")
    paths[0].rename(tmp_path / "left")
    away.rename(paths[1])
    monkeypatch.setenv("DWFS_STATE_DIR", str(tmp_path / "other-machine"))
    await session(paths[1], "right")
    (tmp_path / "left").rename(paths[0])
    for device in paths:
        with pytest.raises(IntegrityError, match="two different histories") as caught:
            await names(device)
        assert str(paths[0]) in str(caught.value) and str(paths[1]) in str(caught.value)


async def test_a_member_that_was_only_away_catches_up(tmp_path: Path) -> None:
    paths = make(tmp_path)
    await session(paths[0], "a", checkpoint=True)
    paths[2].rename(tmp_path / "away")
    async with open_volume(paths[0], pw(), degraded=True) as volume:
        assert volume.pool.array.state() == "degraded"
    (tmp_path / "away").rename(paths[2])
    async with open_volume(paths[0], pw()) as volume:
        assert volume.pool.array.state() == "online"


def record_bounds(blob: bytes) -> list[tuple[int, int]]:
    """(start, end) of each record in an epoch file (its zero tail is not one)."""
    bounds, pos = [], 0
    while pos + 16 <= len(blob) and blob[pos : pos + 4] == b"DWJ2":
        length = int.from_bytes(blob[pos + 4 : pos + 8], "little")
        bounds.append((pos, pos + 16 + length))
        pos += 16 + length
    return bounds
