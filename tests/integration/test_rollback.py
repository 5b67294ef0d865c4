"""Freshness and degraded mounts as a user meets them: the real daemon, kill -9,
and someone with the devices deleting what was fsync'd."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.integration.conftest import LivePool, PoolFactory, dwfsctl, mounted_at


def mount_fails(pool: LivePool, code: int, match: str, *options: str) -> None:
    args: list[str | Path] = ["mount", "--passphrase-file", pool.passfile]
    if options:
        args += ["-o", ",".join(options)]
    result = dwfsctl(*args, pool.devices[0], pool.mnt, check=False)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result.stderr
    assert len(lines) == 1 and match in lines[0], result.stderr
    assert not mounted_at(pool.mnt)


def write_and_fsync(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    dirfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)


def test_deleting_the_newest_journal_after_kill_9_is_refused(make_pool: PoolFactory) -> None:
    """The review's reproduction: fsync'd files must not vanish without a word."""
    pool = make_pool()
    write_and_fsync(pool.mnt / "one", b"first fsync'd file\n")
    write_and_fsync(pool.mnt / "two", b"second fsync'd file\n" * 1000)
    pool.crash()
    saved = {}
    for device in pool.devices:
        newest = max((device / "journal").glob("*.jnl"))
        saved[newest] = newest.read_bytes()
        newest.unlink()
    mount_fails(pool, 4, "rolled back")
    for path, data in saved.items():
        path.write_bytes(data)
    pool.mount()
    assert (pool.mnt / "one").read_bytes() == b"first fsync'd file\n"
    assert (pool.mnt / "two").read_bytes() == b"second fsync'd file\n" * 1000
    pool.umount()


def test_a_pool_missing_a_device_mounts_only_when_asked(make_pool: PoolFactory) -> None:
    pool = make_pool()
    write_and_fsync(pool.mnt / "kept", b"data\n")
    pool.umount()
    away = pool.root / "away"
    pool.devices[2].rename(away)
    mount_fails(pool, 5, "-o degraded")
    pool.mount(None, "degraded")
    assert (pool.mnt / "kept").read_bytes() == b"data\n"
    pool.umount()
    away.rename(pool.devices[2])
    pool.mount()
    assert (pool.mnt / "kept").read_bytes() == b"data\n"
    pool.umount()


def test_devices_restored_on_purpose_mount_when_asked(make_pool: PoolFactory) -> None:
    """Devices put back from a backup are older than this machine saw: refused
    with a line that names the way out, then taken as they are when asked,
    and from then on the pool mounts as usual."""
    pool = make_pool()
    write_and_fsync(pool.mnt / "before", b"in the backup\n")
    pool.umount()
    backup = pool.root / "backup"
    backup.mkdir()
    for device in pool.devices:
        shutil.copytree(device, backup / device.name, symlinks=True)
    pool.mount()
    write_and_fsync(pool.mnt / "after", b"written after the backup\n")
    pool.ctl("snapshot", "create", pool.mnt, "moves-the-generation")
    pool.umount()
    for device in pool.devices:
        shutil.rmtree(device)
        shutil.copytree(backup / device.name, device, symlinks=True)
    mount_fails(pool, 4, "-o accept_rollback")
    pool.mount(None, "accept_rollback")
    assert (pool.mnt / "before").read_bytes() == b"in the backup\n"
    assert not (pool.mnt / "after").exists()
    write_and_fsync(pool.mnt / "new", b"written after the restore\n")
    pool.umount()
    pool.mount()
    assert (pool.mnt / "new").read_bytes() == b"written after the restore\n"
    pool.umount()
