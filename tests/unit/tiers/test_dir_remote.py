"""A dir:// remote is as hostile as a device directory: no link is followed below
it, only regular files are read, and a directory others can write is refused."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from dwfs.errors import RemoteError
from dwfs.tiers import get_bounded, open_backend
from dwfs.tiers._dir import STALE_TMP_SECONDS


def test_a_symlinked_object_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    backend = open_backend(f"dir://{tmp_path}/remote")
    secret = tmp_path / "secret"
    secret.write_bytes(b"not yours")
    (tmp_path / "remote" / "superblock").symlink_to(secret)
    with pytest.raises(RemoteError, match="symbolic link or a non-directory"):
        backend.get("superblock")
    with pytest.raises(RemoteError, match="symbolic link or a non-directory"):
        backend.size("superblock")
    backend.close()
    assert secret.read_bytes() == b"not yours"


def test_a_symlinked_folder_is_not_written_through(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    backend = open_backend(f"dir://{tmp_path}/remote")
    (tmp_path / "remote" / "packs").symlink_to(elsewhere)
    with pytest.raises(RemoteError):
        backend.put("packs/ab", b"data")
    with pytest.raises(RemoteError):
        backend.list("packs/")
    backend.close()
    assert list(elsewhere.iterdir()) == []


def test_a_fifo_is_not_read(tmp_path: Path) -> None:
    backend = open_backend(f"dir://{tmp_path}/remote")
    os.mkfifo(tmp_path / "remote" / "superblock")
    with pytest.raises(RemoteError, match="not a regular file"):
        backend.get("superblock")
    backend.close()


def test_a_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(RemoteError, match="writable by others"):
        open_backend(f"dir://{shared}")


def test_a_missing_parent_is_named(tmp_path: Path) -> None:
    with pytest.raises(RemoteError, match="does not exist: create it first"):
        open_backend(f"dir://{tmp_path}/no/such")


def test_puts_leave_no_temporary_files(tmp_path: Path) -> None:
    backend = open_backend(f"dir://{tmp_path}/remote")
    for i in range(5):
        backend.put("packs/aa", bytes([i]) * 1000)
    backend.close()
    assert sorted(p.name for p in (tmp_path / "remote" / "packs").iterdir()) == ["aa"]


def test_an_object_larger_than_asked_for_is_not_read(tmp_path: Path) -> None:
    backend = open_backend(f"dir://{tmp_path}/remote")
    with open(tmp_path / "remote" / "superblock", "wb") as f:
        f.truncate(64 << 20)  # sparse: a hostile remote's huge superblock
    with pytest.raises(RemoteError, match="larger than any object dwfs writes"):
        get_bounded(backend, "superblock", 1 << 20)
    assert get_bounded(backend, "manifest", 1 << 20) is None
    backend.put("small", b"x" * 10)
    assert get_bounded(backend, "small", 10) == b"x" * 10


def test_listing_removes_what_a_cut_off_put_left_once_it_is_stale(tmp_path: Path) -> None:
    backend = open_backend(f"dir://{tmp_path}/remote")
    backend.put("packs/ab/" + "ab" * 16, b"a whole pack")
    folder = tmp_path / "remote" / "packs" / "ab"
    stale, fresh = folder / ".tmp-stale.0011", folder / ".tmp-fresh.0022"
    stale.write_bytes(b"half a pack")
    fresh.write_bytes(b"a put under way")
    os.utime(stale, (0, time.time() - 2 * STALE_TMP_SECONDS))
    assert backend.list("packs/") == ["packs/ab/" + "ab" * 16]
    backend.close()
    assert not stale.exists()
    assert fresh.exists()
