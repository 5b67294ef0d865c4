"""Bad input to mount and umount: one line naming the problem, a non-zero status,
nothing changed, and no daemon left behind."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from tests.integration.conftest import LivePool, PoolFactory, _wait_gone, dwfsctl, mounted_at


def fails(code: int, *args: str | Path, match: str) -> None:
    result = dwfsctl(*args, check=False)
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and match in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_mount_refuses_bad_input(make_pool: PoolFactory, tmp_path: Path) -> None:
    pool: LivePool = make_pool(mount=False)
    wrong = tmp_path / "wrong"
    wrong.write_text("wrong\n")
    wrong.chmod(0o600)
    empty = tmp_path / "empty"
    empty.mkdir()
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    pw = ["--passphrase-file", str(pool.passfile)]
    fails(5, "mount", *pw, tmp_path / "nodevice", empty, match="does not exist")
    fails(5, "mount", *pw, empty, pool.mnt, match="not a dwfs device")
    fails(
        3, "mount", "--passphrase-file", wrong, pool.devices[0], pool.mnt, match="wrong passphrase"
    )
    fails(2, "mount", *pw, pool.devices[0], tmp_path / "nowhere", match="does not exist")
    fails(2, "mount", *pw, pool.devices[0], full, match="is not empty")
    fails(2, "mount", *pw, "-o", "bogus", pool.devices[0], empty, match="unknown mount option")
    fails(2, "mount", *pw, "-o", "frontend=x", pool.devices[0], empty, match="frontend=x is not")
    assert not mounted_at(pool.mnt) and not mounted_at(empty)
    pool.mount()
    fails(7, "mount", *pw, pool.devices[1], empty, match="in use by the mount at")
    fails(7, "mount", *pw, pool.devices[1], pool.mnt, match="already a mountpoint")
    fails(7, "scrub", *pw, pool.devices[2], match="in use by the mount at")
    assert not mounted_at(empty)
    fails(2, "umount", empty, match="no dwfs filesystem is mounted")


def test_umount_of_a_busy_mount_says_so(mounted: LivePool) -> None:
    with open(mounted.mnt / "open-file", "w"):
        fails(7, "umount", mounted.mnt, match="cannot unmount")
    assert mounted_at(mounted.mnt)


def test_sigterm_and_sigint_unmount_and_keep_what_was_written(make_pool: PoolFactory) -> None:
    """The signal path takes the kernel's dirty pages, ends the request loop
    (pyfuse3.terminate and our wait), stores, commits and detaches the mount,
    even with a file still open (whose close then finds the mount gone)."""
    pool = make_pool()
    for number, signum in enumerate((signal.SIGTERM, signal.SIGINT)):
        path = pool.mnt / f"f{number}"
        data = os.urandom(300_000)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        assert os.write(fd, data) == len(data)  # in the page cache, not yet with dwfs
        assert pool.pid is not None
        os.kill(pool.pid, signum)
        _wait_gone(pool.pid)
        pool.pid = None
        with contextlib.suppress(OSError):
            os.close(fd)
        assert not mounted_at(pool.mnt), "the daemon detached its mount"
        pool.mount()
        assert path.read_bytes() == data
