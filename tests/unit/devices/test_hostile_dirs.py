"""Device directories are untrusted input: links, FIFOs, directories and other
users' files in place of a device's files are refused with one line, and
nothing is written through them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from dwfs import PoolOptions, create_pool, open_pool
from dwfs.devices._device import DirDevice
from dwfs.errors import DeviceError
from tests.conftest import FAST_KDF
from tests.unit.chunks.test_pool import SMALL, pw

ENTRIES = ["superblock", "synced", "lock", "segments/00000000.seg", "journal/00000000.jnl"]
OTHER_UID = 54321


def dwfsctl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dwfs.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def make_pool(tmp_path: Path) -> tuple[Path, list[Path]]:
    """A raidz1 pool over three devices, each with a segment, a sync mark, a lock
    and a journal epoch."""
    secret = tmp_path / "pass"
    secret.write_text("pass")
    secret.chmod(0o600)
    paths = [tmp_path / f"d{i}" for i in range(3)]
    create_pool(paths, pw(), PoolOptions(layout="raidz1", kdf=FAST_KDF, chunker=SMALL))

    async def fill() -> None:
        async with open_pool(paths[0], pw()) as pool:
            await pool.store.put(os.urandom(50_000))
            await pool.store.sync()
            for group in pool.array.journal_groups():
                for member, _ in group:
                    assert member.device is not None
                    member.device.append_journal(0, b"record")

    trio.run(fill)
    for path in paths:
        for entry in ENTRIES:
            assert (path / entry).is_file(), entry
    return secret, paths


def refused(secret: Path, device: Path, match: str) -> None:
    result = dwfsctl("status", "--passphrase-file", secret, device)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 5, result.stderr
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert match in lines[0], lines[0]


def _symlink(path: Path, target: Path) -> None:
    path.unlink()
    path.symlink_to(target)


def _dangling(path: Path, target: Path) -> None:
    path.unlink()
    path.symlink_to(target.with_name("nowhere"))


def _fifo(path: Path, target: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _directory(path: Path, target: Path) -> None:
    path.unlink()
    path.mkdir()


def _other_owner(path: Path, target: Path) -> None:
    os.chown(path, OTHER_UID, OTHER_UID)


PLANTS: dict[str, tuple[Callable[[Path, Path], None], str]] = {
    "symlink": (_symlink, "is a symbolic link"),
    "dangling symlink": (_dangling, "is a symbolic link"),
    "fifo": (_fifo, "is a FIFO"),
    "directory": (_directory, "is a directory"),
    "other owner": (_other_owner, f"owned by uid {OTHER_UID}"),
}


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("plant", list(PLANTS))
def test_a_planted_entry_is_refused_and_nothing_is_written_through_it(
    tmp_path: Path, entry: str, plant: str
) -> None:
    secret, paths = make_pool(tmp_path)
    target = tmp_path / "victim"
    target.write_bytes(b"precious\n")
    before = target.stat()
    how, match = PLANTS[plant]
    how(paths[0] / entry, target)
    refused(secret, paths[0], f"{entry} {match}" if plant != "other owner" else match)
    assert target.read_bytes() == b"precious\n"
    assert target.stat().st_mtime_ns == before.st_mtime_ns
    assert not target.with_name("nowhere").exists(), "nothing is created where a link points"


def test_a_device_that_is_a_link_or_writable_by_others_is_refused(tmp_path: Path) -> None:
    secret, paths = make_pool(tmp_path)
    link = tmp_path / "link"
    link.symlink_to(paths[0])
    refused(secret, link, "is a symbolic link")
    paths[0].chmod(0o777)
    refused(secret, paths[0], "writable by other users")
    paths[0].chmod(0o700)
    (paths[0] / "segments").chmod(0o757)
    refused(secret, paths[0], "segments is writable by other users")
    (paths[0] / "segments").chmod(0o700)
    os.rename(paths[0] / "segments", tmp_path / "elsewhere")
    (paths[0] / "segments").symlink_to(tmp_path / "elsewhere")
    refused(secret, paths[0], "segments is a symbolic link")


def test_a_hostile_member_is_faulted_and_the_pool_reads_from_the_others(tmp_path: Path) -> None:
    secret, paths = make_pool(tmp_path)
    target = tmp_path / "victim"
    target.write_bytes(b"precious\n")
    _symlink(paths[1] / "lock", target)
    result = dwfsctl("status", "--json", "--passphrase-file", secret, paths[0])
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    member = status["devices"][1]
    assert member["state"] == "faulted"
    assert "lock is a symbolic link" in member["reason"]
    assert status["state"] == "degraded"
    assert target.read_bytes() == b"precious\n"


def test_new_devices_are_private_and_the_lock_file_says_nothing(tmp_path: Path) -> None:
    secret, paths = make_pool(tmp_path)
    for path in paths:
        assert path.stat().st_mode & 0o777 == 0o700
        assert (path / "segments").stat().st_mode & 0o777 == 0o700
        assert (path / "journal").stat().st_mode & 0o777 == 0o700
        assert (path / "lock").read_bytes() == b"", "no plaintext about the holder"
    (paths[0] / "lock").write_bytes(b"dwfsctl (pid 1) at /secret/place")
    result = dwfsctl("status", "--passphrase-file", secret, paths[0])
    assert result.returncode == 0, result.stderr
    assert (paths[0] / "lock").read_bytes() == b"", "an older dwfs's holder text is cleared"


def test_direct_opens_refuse_what_the_audit_did_not_see(tmp_path: Path) -> None:
    """A link planted after the device was opened is refused at the open itself."""
    _, paths = make_pool(tmp_path)
    device = DirDevice(paths[0])
    try:
        target = tmp_path / "victim"
        target.write_bytes(b"precious\n")
        (paths[0] / "synced").unlink()
        (paths[0] / "synced").symlink_to(target)
        with pytest.raises(DeviceError, match="synced is a symbolic link"):
            device.write_sync_mark(b"x" * 40)
        (paths[0] / "segments" / "00000009.seg").symlink_to(target)
        with pytest.raises(DeviceError, match=r"00000009\.seg is a symbolic link"):
            device.write(9, 0, [b"shard"])
        assert target.read_bytes() == b"precious\n"
    finally:
        device.close()


def test_a_sparse_multi_terabyte_segment_is_not_walked_for_days(tmp_path: Path) -> None:
    _, paths = make_pool(tmp_path)
    for path in paths:
        os.truncate(path / "segments" / "00000000.seg", 4 << 40)

    async def reopen() -> int:
        with trio.fail_after(60):
            async with open_pool(paths[0], pw()) as pool:
                return len(pool.store.index)

    assert trio.run(reopen) > 0
