"""Hydration through a mount from moto's S3 server, with what it costs the
server: pack GETs (counted in moto's log), MB/s, and the CPU of moto and of the
mount's daemon over the read (from /proc).

A pool of one device on /var/tmp holds SIZE_MIB (256) of random bytes, syncs to
moto, and a new machine attaches it and reads the file through its mount.

    python scripts/bench_hydrate.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench_remote

from tests.servers import moto_s3

MiB = 1 << 20
SIZE = int(os.environ.get("SIZE_MIB", "256")) * MiB


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    root = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="dwfs-hydrate-"))
    try:
        with moto_s3(root) as server:
            env = {**os.environ, **server.env()}
            url = f"s3://{server.new_bucket()}"
            pw = root / "pass"
            pw.write_bytes(bench_remote.PASS)
            pw.chmod(0o600)
            env_a = {**env, "DWFS_STATE_DIR": str(root / "state-a")}
            env_b = {**env, "DWFS_STATE_DIR": str(root / "state-b")}
            bench_remote.ctl(env_a, "create", "--passphrase-file", pw, root / "a0")
            with bench_remote.mounted(env_a, root / "a0", root / "mnt-a", pw) as mnt:
                (mnt / "file").write_bytes(os.urandom(SIZE))
                bench_remote.ctl(env_a, "remote", "add", mnt, url)
                bench_remote.ctl(env_a, "sync", mnt)
            bench_remote.ctl(env_b, "attach", "--passphrase-file", pw, url, root / "b0")
            with bench_remote.mounted(env_b, root / "b0", root / "mnt-b", pw) as mnt:
                found = subprocess.run(
                    ["pgrep", "-f", f"mount.*{root}/b0"], capture_output=True, text=True
                )
                daemon = int(found.stdout.split()[0])
                moto0, daemon0 = cpu_seconds(server.process.pid), cpu_seconds(daemon)
                start = time.perf_counter()
                with open(mnt / "file", "rb") as f:
                    while f.read(MiB):
                        pass
                seconds = time.perf_counter() - start
                moto = (cpu_seconds(server.process.pid) - moto0) / seconds
                used = (cpu_seconds(daemon) - daemon0) / seconds
                time.sleep(1)  # moto's log catches up
            log = (root / "moto.log").read_text(errors="replace").splitlines()
            gets = sum(1 for line in log if "GET /" in line and "/packs/" in line)
            print(
                f"pack GETs {gets}; hydrate {SIZE / seconds / 1e6:.0f} MB/s; "
                f"moto {moto:.2f} cores, daemon {used:.2f} cores"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
