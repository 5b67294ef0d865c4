"""mount_helpers/mount.dwfs, as mount(8) and /etc/fstab call it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.integration.conftest import PoolFactory, dwfsctl, mounted_at

HELPER = Path(__file__).resolve().parents[2] / "mount_helpers" / "mount.dwfs"


def test_fstab_style_mount(make_pool: PoolFactory) -> None:
    pool = make_pool(mount=False)
    env = {**os.environ, "DWFSCTL": f"{Path(sys.executable).parent / 'dwfsctl'}"}
    result = subprocess.run(
        [
            HELPER,
            str(pool.devices[1]),
            str(pool.mnt),
            "-o",
            f"rw,nofail,passfile={pool.passfile},allow_other",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert mounted_at(pool.mnt)
    (pool.mnt / "hello").write_text("from fstab")
    dwfsctl("umount", pool.mnt)
    assert not mounted_at(pool.mnt)
    bad = subprocess.run([HELPER, str(pool.devices[1])], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "usage" in bad.stderr
