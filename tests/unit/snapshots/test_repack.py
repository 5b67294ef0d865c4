"""Repacking moves live chunks out of mostly dead packs, and the old packs stay
on the remote until a superblock names a copy that does not need them: a sync
cut off right after its repack leaves the remote's copy whole."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dwfs import snapshots
from dwfs.snapshots._repack import SMALL_PACK, repack
from dwfs.vfs import open_volume
from dwfs.vfs._attrs import ROOT_INO
from tests.unit.vfs.test_inline import credential, make, read_file, write_file

MiB = 1024 * 1024


def packs(remote: Path) -> set[str]:
    return {p.name for p in (remote / "packs").rglob("*") if p.is_file()}


def a_remote(tmp_path: Path) -> tuple[Path, str]:
    remote = tmp_path / "remote"
    remote.mkdir(mode=0o700)
    return remote, f"dir://{remote}"


async def attached_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, files: dict[bytes, bytes]
) -> None:
    """Attach the remote on another machine and read every file back from it."""
    monkeypatch.setenv("DWFS_STATE_DIR", str(tmp_path / "elsewhere"))
    elsewhere = [tmp_path / f"new{i}" for i in range(2)]
    await snapshots.attach(url, elsewhere, credential())
    async with open_volume(elsewhere[0], credential()) as other:
        for name, data in files.items():
            assert await read_file(other, other.lookup(ROOT_INO, name).ino) == data


async def test_a_sync_cut_off_after_its_repack_leaves_the_remote_copy_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    device = make(tmp_path)
    remote, url = a_remote(tmp_path)
    kept = os.urandom(MiB)
    async with open_volume(device, credential()) as volume:
        gone = await write_file(volume, b"gone", os.urandom(4 * MiB))
        await write_file(volume, b"kept", kept)
        await volume.remote.add(url)
        await volume.remote.sync()
        first = packs(remote)
        volume.unlink(ROOT_INO, b"gone")
        volume.forget(gone, 1)  # as the kernel does: then its chunks die
        await volume.sync_all()
        tier = volume.pool.tier
        assert tier is not None
        moved = await repack(volume.meta, volume.pool, tier)
        assert moved.packs == 1
        assert MiB <= moved.bytes < 1.05 * MiB
        assert first < packs(remote)  # the new pack beside the old ones
        await volume.meta.commit()
        records = volume.meta.records
        again = await repack(volume.meta, volume.pool, tier)
        assert again.packs == 0
        await volume.meta.commit()
        assert volume.meta.records == records, "a repack with nothing to do journals nothing"
    await attached_elsewhere(tmp_path, monkeypatch, url, {b"kept": kept})


async def test_small_packs_are_merged_into_one_at_a_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    device = make(tmp_path)
    _, url = a_remote(tmp_path)
    files = {b"f%d" % i: os.urandom(300 * 1024) for i in range(4)}
    async with open_volume(device, credential()) as volume:
        await volume.remote.add(url)
        tier = volume.pool.tier
        assert tier is not None
        async with volume.remote.lock:  # the mount's own uploads and syncs wait
            for name, data in files.items():  # a pack each, as a trickle of writes makes them
                await write_file(volume, name, data)
                await snapshots.upload_pending(volume.meta, volume.pool, tier)
            assert len(volume.meta.remote_rows.small_packs(SMALL_PACK)) == len(files)
        await volume.remote.sync()
        assert len(volume.meta.remote_rows.small_packs(SMALL_PACK)) == 1
        again = await volume.remote.sync()
        assert again["packs_repacked"] == 0  # one small pack stays as it is
    await attached_elsewhere(tmp_path, monkeypatch, url, files)
