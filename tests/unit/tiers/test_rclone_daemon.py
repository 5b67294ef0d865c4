"""The long-running rclone behind an rclone: remote: started on the first call,
started again when it dies, and gone with dwfs even after a kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dwfs.errors import RemoteError
from dwfs.tiers import open_backend
from dwfs.tiers._rclone import RcloneBackend


@pytest.fixture
def rclone_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("RCLONE_CONFIG", os.devnull)
    monkeypatch.setenv("RCLONE_CONFIG_DWFSTEST_TYPE", "local")
    (tmp_path / "remote").mkdir()
    return f"rclone:dwfstest:{tmp_path}/remote"


def _rclone_pids(directory: Path) -> list[int]:
    """Processes whose command line names this daemon directory."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if str(directory).encode() in cmdline:
            found.append(int(entry.name))
    return found


def _is_rclone(pid: int) -> bool:
    """Whether pid is a live (not yet dead) rclone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    name, state = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2]
    return name == "rclone" and state != "Z"


def _wait_gone(directory: Path) -> None:
    deadline = time.monotonic() + 10
    while _rclone_pids(directory) or directory.exists():
        assert time.monotonic() < deadline, f"rclone under {directory} is still there"
        time.sleep(0.05)


def test_rclone_started_again_after_it_dies(rclone_url: str) -> None:
    backend = open_backend(rclone_url)
    assert isinstance(backend, RcloneBackend)
    try:
        backend.put("packs/aa/one", b"first")
        directory = backend.daemon_directory
        assert directory is not None
        (rclone,) = (p for p in _rclone_pids(directory) if _is_rclone(p))
        os.kill(rclone, signal.SIGKILL)
        while _is_rclone(rclone):
            time.sleep(0.02)
        assert backend.get("packs/aa/one") == b"first"
        assert backend.daemon_directory not in (None, directory)
    finally:
        backend.close()
    assert backend.daemon_directory is None
    _wait_gone(directory)


def test_rclone_goes_away_with_a_killed_dwfs(rclone_url: str, tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from dwfs.tiers import open_backend\n"
            "b = open_backend(sys.argv[1])\n"
            "b.put('superblock', b'x')\n"
            "print(b.daemon_directory, flush=True)\n"
            "time.sleep(600)\n",
            rclone_url,
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        directory = Path(holder.stdout.readline().decode().strip())
        assert _rclone_pids(directory), "rclone is not running"
        holder.kill()
        holder.wait()
        _wait_gone(directory)
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()


def test_rclone_failing_to_start_is_one_clear_error(
    rclone_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "rclone-broken"
    fake.write_text("#!/bin/sh\necho 'Failed to start: config is broken' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr("dwfs.tiers._rclone.find_rclone", lambda: str(fake))
    backend = open_backend(rclone_url)
    with pytest.raises(RemoteError, match="did not start: Failed to start: config is broken"):
        backend.size("superblock")
    backend.close()
