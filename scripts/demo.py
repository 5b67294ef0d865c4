"""`make run`: the demo pool under ./.dwfs-demo/, created the first time, mounted at ./mnt.

Three device directories with raidz1 and a random passphrase kept in
.dwfs-demo/passphrase (mode 0600). Mounts the pool at ./mnt (unless it already
is) and prints its status; `dwfsctl umount mnt` stops it.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from dwfs.cli.main import main


def demo(root: Path, mountpoint: Path) -> int:
    root.mkdir(exist_ok=True, mode=0o700)
    passphrase = root / "passphrase"
    devices = [root / f"dev{i}" for i in range(3)]
    if not passphrase.exists():
        passphrase.write_text(secrets.token_urlsafe(24) + "\n")
        passphrase.chmod(0o600)
    if not (devices[0] / "superblock").exists():
        code = main(["create", "--passphrase-file", str(passphrase), *map(str, devices)])
        if code:
            return code
    mountpoint.mkdir(exist_ok=True)
    if not os.path.ismount(mountpoint):
        code = main(
            ["mount", "--passphrase-file", str(passphrase), str(devices[0]), str(mountpoint)]
        )
        if code:
            return code
    print(f"\ndemo pool in {root}/ (passphrase in {passphrase}), mounted at {mountpoint}/:\n")
    code = main(["status", str(mountpoint)])
    print(
        f"\nUse {mountpoint}/ like any directory; `.venv/bin/dwfsctl umount {mountpoint}` stops it."
    )
    return code


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else ".dwfs-demo")
    sys.exit(demo(root, Path(sys.argv[2] if len(sys.argv) > 2 else "mnt")))
