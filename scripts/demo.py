"""`make run`: the demo pool under ./.dwfs-demo/, created the first time.

Three device directories with raidz1 and a random passphrase kept in
.dwfs-demo/passphrase (mode 0600). Prints the pool's status; the filesystem
mount comes with the next milestone.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

from dwfs.cli.main import main


def demo(root: Path) -> int:
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
    print(f"demo pool in {root}/ (passphrase in {passphrase}):\n")
    return main(["status", "--passphrase-file", str(passphrase), str(devices[0])])


if __name__ == "__main__":
    sys.exit(demo(Path(sys.argv[1] if len(sys.argv) > 1 else ".dwfs-demo")))
