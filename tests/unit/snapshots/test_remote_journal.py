"""The remote's journal: what a pool commits after a sync reaches the remote as
sealed segments chained from the manifest, once the chunks it needs are there,
and a machine that attaches replays them; a segment changed, swapped or moved
is refused, a hidden newest one only rolls the copy back to the one before."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio
import trio.testing

from dwfs import snapshots
from dwfs.errors import IntegrityError
from dwfs.meta import Tail
from dwfs.snapshots import RemoteJournal
from dwfs.vfs import Volume, _remote_ops, open_volume
from dwfs.vfs._attrs import ROOT_INO
from tests.unit.snapshots.test_repack import a_remote
from tests.unit.vfs.test_inline import credential, make, read_file, write_file

MiB = 1024 * 1024


@pytest.fixture(autouse=True)
def no_background_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests send segments themselves, so they know what each holds."""
    monkeypatch.setattr(_remote_ops, "UPLOAD_INTERVAL", 3600.0)


async def add_remote(volume: Volume, url: str) -> None:
    """Add the remote and sync, then let the uploader's first round (which add
    wakes) end, so that only the test sends segments."""
    await volume.remote.add(url)
    await volume.remote.sync()
    await trio.testing.wait_all_tasks_blocked(0.05)
    async with volume.remote.lock:
        pass


async def upload_round(volume: Volume) -> RemoteJournal:
    """What the background uploader does each round: chunks, then the journal."""
    tier, remote = volume.pool.tier, volume.remote
    assert tier is not None and remote.journal is not None
    async with remote.lock:
        await snapshots.upload_pending(volume.meta, volume.pool, tier)
        remote.journal = await snapshots.upload_journal(volume.meta, tier, remote.journal)
    return remote.journal


def segment(remote: Path, volume: Volume, journal: RemoteJournal, seq: int) -> Path:
    tier = volume.pool.tier
    assert tier is not None
    return remote / tier.segment_name(volume.pool.id, journal.manifest, seq)


async def attach_as(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, machine: str
) -> dict[bytes, bytes]:
    """Attach the remote on a machine that never saw the pool; its files' contents."""
    monkeypatch.setenv("DWFS_STATE_DIR", str(tmp_path / machine))
    devices = [tmp_path / f"{machine}-d{i}" for i in range(2)]
    await snapshots.attach(url, devices, credential())
    async with open_volume(devices[0], credential()) as other:
        names = [
            n for _, n, _ in other.entries(ROOT_INO, 0) if n not in (b".", b"..", b".snapshots")
        ]
        return {n: await read_file(other, other.lookup(ROOT_INO, n).ino) for n in names}


async def test_what_a_pool_commits_after_a_sync_reaches_a_new_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, url = a_remote(tmp_path)
    files = {b"synced": os.urandom(MiB)}
    async with open_volume(make(tmp_path), credential()) as volume:
        await write_file(volume, b"synced", files[b"synced"])
        await add_remote(volume, url)
        files[b"small"] = b"tiny\n"
        files[b"large"] = os.urandom(3 * MiB + 5)
        for name in (b"small", b"large"):
            await write_file(volume, name, files[name])
        fh, _ = volume.create(ROOT_INO, b"logged", 0o644, os.O_RDWR, 0, 0)
        files[b"logged"] = b"fsync'd, not stored yet\n"
        await volume.write(fh, 0, files[b"logged"])
        await volume.fsync(fh)  # its bytes are in the intent log, so in the journal
        volume.rename(ROOT_INO, b"synced", ROOT_INO, b"renamed", 0)
        files[b"renamed"] = files.pop(b"synced")
        await volume.meta.commit()
        journal = await upload_round(volume)
        assert journal.txg == volume.meta.durable_txg
        assert volume.remote.show()["journal_txg"] == journal.txg
        await volume.release(fh)
    # The pool stopped without a sync: only the journal carries what came after.
    assert await attach_as(tmp_path, monkeypatch, url, "elsewhere") == files


async def test_a_segment_waits_until_the_chunks_it_needs_are_on_the_remote(
    tmp_path: Path,
) -> None:
    _, url = a_remote(tmp_path)
    async with open_volume(make(tmp_path), credential()) as volume:
        await add_remote(volume, url)
        tier, remote = volume.pool.tier, volume.remote
        assert tier is not None and remote.journal is not None
        async with remote.lock:
            synced = remote.journal
            await write_file(volume, b"f", os.urandom(MiB))
            held = await snapshots.upload_journal(volume.meta, tier, synced)
            assert held == synced, "its chunk is not on the remote yet"
            await snapshots.upload_pending(volume.meta, volume.pool, tier)
            sent = await snapshots.upload_journal(volume.meta, tier, synced)
        assert (sent.seq, sent.txg) == (1, volume.meta.durable_txg)


async def test_a_changed_swapped_or_hidden_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote, url = a_remote(tmp_path)
    first, second = os.urandom(MiB), os.urandom(MiB)
    async with open_volume(make(tmp_path), credential()) as volume:
        await add_remote(volume, url)
        await write_file(volume, b"first", first)
        await upload_round(volume)
        await write_file(volume, b"second", second)
        journal = await upload_round(volume)
        assert journal.seq == 2
        seg0, seg1 = (segment(remote, volume, journal, i) for i in range(2))
    bodies = seg0.read_bytes(), seg1.read_bytes()

    seg0.write_bytes(bodies[1])
    seg1.write_bytes(bodies[0])
    with pytest.raises(IntegrityError, match=r"segment 0 of the metadata journal .* changed"):
        await attach_as(tmp_path, monkeypatch, url, "swapped")

    seg0.write_bytes(bodies[0])
    seg1.write_bytes(bodies[1][:-1] + bytes([bodies[1][-1] ^ 1]))
    with pytest.raises(IntegrityError, match="segment 1 of the metadata journal"):
        await attach_as(tmp_path, monkeypatch, url, "changed")

    seg1.unlink()  # the remote hides the newest: the copy as of the one before
    assert await attach_as(tmp_path, monkeypatch, url, "hidden") == {b"first": first}


async def test_a_sync_starts_the_journal_anew_and_deletes_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote, url = a_remote(tmp_path)
    files = {b"a": os.urandom(MiB), b"b": b"bee\n"}
    async with open_volume(make(tmp_path), credential()) as volume:
        await add_remote(volume, url)
        await write_file(volume, b"a", files[b"a"])
        old = await upload_round(volume)
        assert segment(remote, volume, old, 0).exists()
        await volume.remote.sync()
        assert not list((remote / "journal").iterdir())
        await write_file(volume, b"b", files[b"b"])
        new = await upload_round(volume)
        assert (new.generation, new.seq) == (old.generation + 1, 1)
    assert await attach_as(tmp_path, monkeypatch, url, "elsewhere") == files


async def test_a_tail_that_lost_txgs_sends_nothing_and_asks_for_a_sync(tmp_path: Path) -> None:
    _, url = a_remote(tmp_path)
    async with open_volume(make(tmp_path), credential()) as volume:
        await add_remote(volume, url)
        remote, tier, tail = volume.remote, volume.pool.tier, volume.meta.tail
        assert tier is not None and tail is not None and remote.journal is not None
        async with remote.lock:  # the uploader, which would sync at once, waits
            assert not remote._sync_due()
            tail.limit = 1
            await write_file(volume, b"f", b"x")
            before = remote.journal
            assert await snapshots.upload_journal(volume.meta, tier, before) == before
            assert remote._sync_due()


def test_the_tail_keeps_consecutive_txgs_within_its_bound() -> None:
    tail = Tail(since=10, limit=100)
    assert not tail.follows(9) and tail.follows(10)
    for txg in range(11, 14):
        tail.add(txg, [("chunk.ref", (b"x",))], size=30)
    assert [t for t, _ in tail.after(10, 13)] == [11, 12, 13]
    assert [t for t, _ in tail.after(11, 12)] == [12]
    assert tail.after(13, 13) == []
    tail.add(14, [], size=30)  # 120 bytes: 11 is dropped
    assert tail.bytes == 90 and not tail.follows(10) and tail.follows(11)
    assert tail.after(10, 14) == [], "a gap where 11 was"
    tail.drop_through(13)
    assert tail.bytes == 30 and [t for t, _ in tail.after(13, 14)] == [14]


async def test_the_settled_txg_is_none_while_the_open_txg_may_drop_a_chunk(
    tmp_path: Path,
) -> None:
    async with open_volume(make(tmp_path), credential()) as volume:
        meta = volume.meta
        ino = await write_file(volume, b"f", os.urandom(MiB))
        await meta.commit()
        assert meta.settled_txg() == meta.durable_txg
        volume.create(ROOT_INO, b"g", 0o644, os.O_RDWR, 0, 0)
        volume.rename(ROOT_INO, b"g", ROOT_INO, b"h", 0)
        assert meta.db.has_pending() and meta.settled_txg() == meta.durable_txg
        volume.unlink(ROOT_INO, b"f")
        volume.forget(ino, 1)
        volume.purge_forgotten()  # as before a commit: its chunk's last reference goes
        assert meta.settled_txg() is None
        await meta.commit()
        assert meta.settled_txg() == meta.durable_txg
