"""mount_helpers/mount.dwfs, as mount(8) and /etc/fstab call it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import PoolFactory, dwfsctl, mounted_at

HELPER = Path(__file__).resolve().parents[2] / "mount_helpers" / "mount.dwfs"


def mount_options(path: Path) -> list[str]:
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            if fields[1] == str(path):
                return fields[3].split(",")
    return []


def test_fstab_style_mount(make_pool: PoolFactory) -> None:
    pool = make_pool(mount=False)
    env = {**os.environ, "DWFSCTL": f"{Path(sys.executable).parent / 'dwfsctl'}"}
    result = subprocess.run(
        [
            HELPER,
            str(pool.devices[1]),
            str(pool.mnt),
            "-o",
            f"rw,nofail,passfile={pool.passfile},allow_other,noexec,noatime,x-systemd.automount",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert mounted_at(pool.mnt)
    assert {"noexec", "noatime"} <= set(mount_options(pool.mnt)), "the flags reach the kernel"
    script = pool.mnt / "script"
    script.write_text("#!/bin/sh\necho ran\n")
    script.chmod(0o755)
    with pytest.raises(PermissionError):
        subprocess.run([str(script)], capture_output=True)
    dwfsctl("umount", pool.mnt)
    assert not mounted_at(pool.mnt)
    unknown = subprocess.run(
        [HELPER, str(pool.devices[1]), str(pool.mnt), "-o", f"passfile={pool.passfile},noatimex"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert unknown.returncode == 2 and "unknown mount option 'noatimex'" in unknown.stderr
    assert not mounted_at(pool.mnt)
    bad = subprocess.run([HELPER, str(pool.devices[1])], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "usage" in bad.stderr
