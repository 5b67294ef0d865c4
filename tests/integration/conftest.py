"""Real mounts on /dev/fuse: pools in temporary directories, served by the real
dwfsctl daemon, driven with plain os calls and real programs.

Every mount made here is unmounted and its daemon ended by a finalizer, and the
session ends with a sweep of anything left under pytest's temporary root, so a
failing test leaves no mount and no process behind.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dwfs import Credential, PoolOptions, create_pool
from dwfs.chunks import PASSPHRASE
from tests.conftest import FAST_KDF

FUSE_USABLE = Path("/dev/fuse").exists() and shutil.which("fusermount3") is not None
pytestmark = pytest.mark.skipif(not FUSE_USABLE, reason="/dev/fuse or fusermount3 is missing")

PASSPHRASE_TEXT = b"integration passphrase"


def dwfsctl(
    *args: str | Path, check: bool = True, stdin: bytes = b""
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "dwfs.cli.main", *map(str, args)],
        input=stdin.decode(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check and result.returncode:
        raise AssertionError(f"dwfsctl {args[0]} failed ({result.returncode}): {result.stderr}")
    return result


def mounted_at(path: Path) -> bool:
    target = str(path)
    with open("/proc/self/mounts") as mounts:
        return any(line.split()[1] == target for line in mounts)


def force_unmount(path: Path) -> None:
    if mounted_at(path):
        subprocess.run(["fusermount3", "-uz", str(path)], capture_output=True)


@dataclasses.dataclass
class LivePool:
    root: Path
    devices: list[Path]
    passfile: Path
    mnt: Path
    pid: int | None = None

    def mount(self, device: Path | None = None, *options: str) -> None:
        args: list[str | Path] = ["mount", "--passphrase-file", self.passfile]
        if options:
            args += ["-o", ",".join(options)]
        dwfsctl(*args, device or self.devices[0], self.mnt)
        self.pid = self._registry_pid()

    def _registry_pid(self) -> int:
        state = Path(os.environ["DWFS_STATE_DIR"])
        for path in state.glob("*/mount.json"):
            info = json.loads(path.read_text())
            if info["mountpoint"] == str(self.mnt):
                return int(info["pid"])
        raise AssertionError("the mount did not register")

    def umount(self) -> None:
        dwfsctl("umount", self.mnt)
        self.pid = None

    def remount(self) -> None:
        self.umount()
        self.mount()

    def crash(self) -> None:
        """kill -9 the daemon and detach its dead mount, as after a power cut."""
        assert self.pid is not None
        os.kill(self.pid, signal.SIGKILL)
        _wait_gone(self.pid)
        force_unmount(self.mnt)
        self.pid = None

    def ctl(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        return dwfsctl(*args, check=check)

    def stored(self) -> dict[str, Any]:
        """Wait until the mount has stored every write as stripes on its devices
        (sync(2) only hands the kernel's dirty pages to the daemon, whose
        write-behind may still hold them); its stats then."""
        deadline = time.monotonic() + 60
        while True:
            stats: dict[str, Any] = json.loads(self.ctl("stats", "--json", self.mnt).stdout)
            if not stats["unstored"]["bytes"]:
                return stats
            assert time.monotonic() < deadline, "the write-behind did not store the writes"
            time.sleep(0.05)

    def cleanup(self) -> None:
        force_unmount(self.mnt)
        if self.pid is not None:
            _wait_gone(self.pid, kill_after=30)


def _wait_gone(pid: int, kill_after: float = 60, give_up_after: float = 30) -> None:
    """Wait for pid to end, SIGKILL it after kill_after seconds, and fail rather
    than hang if even that does not end it (a thread stuck in the kernel)."""
    deadline = time.monotonic() + kill_after
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline + give_up_after:
            raise AssertionError(f"process {pid} survives SIGKILL (stuck in the kernel?)")
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)


PoolFactory = Callable[..., LivePool]


@pytest.fixture
def make_pool(tmp_path: Path) -> Iterator[PoolFactory]:
    made: list[LivePool] = []

    def make(
        layout: str = "raidz1",
        n: int = 3,
        mount: bool = True,
        root: Path | None = None,
        **options: object,
    ) -> LivePool:
        root = (root or tmp_path) / f"pool{len(made)}"
        root.mkdir()
        passfile = root / "passphrase"
        passfile.write_bytes(PASSPHRASE_TEXT + b"\n")
        passfile.chmod(0o600)
        devices = [root / f"dev{i}" for i in range(n)]
        create_pool(
            devices,
            Credential(PASSPHRASE, bytearray(PASSPHRASE_TEXT)),
            PoolOptions(layout=layout, kdf=FAST_KDF, **options),  # type: ignore[arg-type]
        )
        mnt = root / "mnt"
        mnt.mkdir()
        pool = LivePool(root, devices, passfile, mnt)
        made.append(pool)
        if mount:
            pool.mount()
        return pool

    yield make
    broken = []
    for pool in made:
        if pool.pid is not None and mounted_at(pool.mnt):  # end every test with fsck
            result = dwfsctl("fsck", "--json", pool.mnt, check=False)
            if result.returncode:
                broken.append(f"{pool.mnt}: {result.stdout or result.stderr}")
        pool.cleanup()
    assert not broken, f"fsck found problems at the end of the test: {broken}"


@pytest.fixture
def mounted(make_pool: PoolFactory) -> LivePool:
    return make_pool()
