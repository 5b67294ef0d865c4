"""Shared fixtures: every test gets its own state directory and real temp dirs."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import hypothesis
import pytest

from tests.servers import S3Server, moto_s3

hypothesis.settings.register_profile(
    "dwfs",
    deadline=None,
    max_examples=int(os.environ.get("DWFS_HYPOTHESIS_EXAMPLES", "60")),
    suppress_health_check=[
        hypothesis.HealthCheck.too_slow,
        hypothesis.HealthCheck.function_scoped_fixture,
    ],
)
hypothesis.settings.load_profile("dwfs")

# Argon2id parameters cheap enough for tests that open many pools; the CLI tests
# use the real defaults.
FAST_KDF = {"name": "argon2id", "memory_kib": 256, "iterations": 1, "lanes": 1}


@pytest.fixture(autouse=True)
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("state")
    old = os.environ.get("DWFS_STATE_DIR")
    os.environ["DWFS_STATE_DIR"] = str(path)
    yield path
    if old is None:
        del os.environ["DWFS_STATE_DIR"]
    else:
        os.environ["DWFS_STATE_DIR"] = old


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Detach any dwfs mount a test left under pytest's temporary root."""
    base = str(session.config._tmp_path_factory.getbasetemp())  # type: ignore[attr-defined]
    with open("/proc/self/mounts") as mounts:
        leftovers = [line.split()[1] for line in mounts if line.split()[2] == "fuse.dwfs"]
    for mountpoint in leftovers:
        if mountpoint.startswith(base):
            subprocess.run(["fusermount3", "-uz", mountpoint], capture_output=True)


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's S3 server on loopback, for the whole run."""
    with moto_s3(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture
def s3_env(moto: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The AWS environment pointed at moto, for this test and what it runs."""
    for name, value in moto.env().items():
        monkeypatch.setenv(name, value)
    return moto


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """Mounts a tmpfs of the given MiB under tmp_path (a disk that fills up
    fast, for full-pool tests); every one is unmounted after the test."""
    mounted: list[Path] = []

    def mount(size_mib: int) -> Path:
        disk = tmp_path / f"disk{len(mounted)}"
        disk.mkdir()
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(disk)],
            capture_output=True,
            text=True,
        )
        if result.returncode:
            pytest.skip(f"cannot mount a small tmpfs: {result.stderr.strip()}")
        mounted.append(disk)
        return disk

    try:
        yield mount
    finally:
        for disk in mounted:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def fill_disk(disk: Path) -> Path:
    """Do what another program can do to a pool's disk: take every byte left.
    The file that took them."""
    hog = disk / "hog"
    with open(hog, "wb") as f:
        try:
            while True:
                f.write(bytes(1024 * 1024))
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return hog
