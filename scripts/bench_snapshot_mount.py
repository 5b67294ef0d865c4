"""The mount with 100 snapshots beside the same mount with none: two pools on
one disk, each holding the same 10,000 files, one of them snapshotted 100 times
with 1% of its files rewritten between snapshots; then small-file loops run
on both, alternating in rounds, medians compared.

    python scripts/bench_snapshot_mount.py      (ROUNDS, DWFS_BENCH_DISK tune it)

Run by `make bench`; figures go in docs/performance.md.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

FILES = 10_000
SNAPSHOTS = 100
BLOCK = os.urandom(4096)


def ctl(state: Path, *args: object) -> str:
    env = {**os.environ, "DWFS_STATE_DIR": str(state)}
    command = [sys.executable, "-m", "dwfs.cli.main", *map(str, args)]
    return subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout


def create_loop(mnt: Path, n: int = 1000) -> float:
    """Microseconds per create + 4 KiB write + close."""
    sub = mnt / f"c{time.time_ns()}"
    sub.mkdir()
    start = time.perf_counter()
    for i in range(n):
        (sub / f"f{i}").write_bytes(BLOCK)
    return (time.perf_counter() - start) / n * 1e6


def stat_loop(mnt: Path) -> float:
    """Microseconds per stat of a file of the populated tree (the kernel's cache dropped)."""
    subprocess.run(["sh", "-c", "echo 2 > /proc/sys/vm/drop_caches"], check=False)
    names = [mnt / "tree" / f"f{i}" for i in range(0, FILES, 5)]
    start = time.perf_counter()
    for path in names:
        path.stat()
    return (time.perf_counter() - start) / len(names) * 1e6


def rewrite_loop(mnt: Path, n: int = 500) -> float:
    """Microseconds per rewrite of an existing file (its old rows a snapshot keeps)."""
    start = time.perf_counter()
    for i in range(n):
        (mnt / "tree" / f"f{i * 7 % FILES}").write_bytes(BLOCK)
    return (time.perf_counter() - start) / n * 1e6


LOOPS: dict[str, Callable[[Path], float]] = {
    "create+write 4 KiB, us": create_loop,
    "stat, us": stat_loop,
    "rewrite 4 KiB, us": rewrite_loop,
}


def populate(mnt: Path) -> None:
    (mnt / "tree").mkdir()
    for i in range(FILES):
        (mnt / "tree" / f"f{i}").write_bytes(BLOCK)


def main() -> None:
    root = Path(os.environ.get("DWFS_BENCH_DISK", "/var/tmp")) / f"dwfs-snapmount-{os.getpid()}"
    root.mkdir()
    pw = root / "pass"
    pw.write_text("bench passphrase\n")
    pw.chmod(0o600)
    mounts: dict[str, tuple[Path, Path]] = {}
    try:
        for side in ("none", f"{SNAPSHOTS} snapshots"):
            base = root / side.split()[0]
            devices = [base / f"dev{i}" for i in range(3)]
            state, mnt = base / "state", base / "mnt"
            base.mkdir()
            mnt.mkdir()
            ctl(state, "create", "--raid", "raidz1", "--passphrase-file", pw, *devices)
            ctl(state, "mount", "--passphrase-file", pw, devices[0], mnt)
            mounts[side] = (mnt, state)
            populate(mnt)
            if side != "none":
                for n in range(SNAPSHOTS):
                    for i in range(n, FILES, 100):
                        (mnt / "tree" / f"f{i}").write_bytes(BLOCK)
                    ctl(state, "snapshot", "create", mnt, f"s{n}")
        runs = {side: {loop: list[float]() for loop in LOOPS} for side in mounts}
        for _ in range(int(os.environ.get("ROUNDS", "5"))):
            for side, (mnt, _) in mounts.items():
                for loop, measure in LOOPS.items():
                    runs[side][loop].append(measure(mnt))
        base_side = next(iter(mounts))
        for side in mounts:
            cells = []
            for loop in LOOPS:
                median = statistics.median(runs[side][loop])
                ratio = median / statistics.median(runs[base_side][loop])
                cells.append(f"{loop} {median:.0f} ({ratio:.2f}x)")
            print(f"{side}: {', '.join(cells)}")
    finally:
        for mnt, state in mounts.values():
            with contextlib.suppress(subprocess.CalledProcessError):
                ctl(state, "umount", mnt)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
