"""A/B of the write path of two or more source trees: fio's 1 GiB sequential
write through each tree's native mount on the disk, in interleaved rounds,
timed until dwfs has stored it, with the daemon's CPU per MB and the part of
it its main thread (the trio thread, which takes every request) spent.

    python scripts/bench_write_ab.py TREE [TREE...]     (each with its native extension built)

ROUNDS (default 3) and DWFS_BENCH_DISK (default /var/tmp) tune it. Needs root
and fio.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import time
from pathlib import Path

from bench_mount import DISK_BASE, cpu_seconds, dwfs, fio, server_of, stored, warm

MEGABYTES = (1 << 30) / 1e6


def one_write(root: Path) -> tuple[float, float, float]:
    """(MB/s until stored, daemon CPU ms per MB, its main thread's ms per MB)."""
    with dwfs(root, "native") as mnt:
        warm(2)
        server = server_of(mnt)
        assert server is not None
        cpu, main, start = cpu_seconds(server), cpu_seconds(server, server), time.perf_counter()
        fio(mnt, "seq", "write", "1M", "1G")
        stored(mnt)
        took = time.perf_counter() - start
        return (
            MEGABYTES / took,
            (cpu_seconds(server) - cpu) * 1000 / MEGABYTES,
            (cpu_seconds(server, server) - main) * 1000 / MEGABYTES,
        )


def main(trees: list[str]) -> None:
    runs: dict[str, list[tuple[float, float, float]]] = {tree: [] for tree in trees}
    base = DISK_BASE / f"dwfs-write-ab-{os.getpid()}"
    base.mkdir()
    try:
        for round_ in range(int(os.environ.get("ROUNDS", "3"))):
            for i, tree in enumerate(trees):
                os.environ["PYTHONPATH"] = tree  # the mount's dwfsctl runs this tree
                os.chdir(tree)  # and `python -m` looks in the working directory first
                root = base / f"round{round_}-tree{i}"
                root.mkdir()
                runs[tree].append(one_write(root))
                shutil.rmtree(root, ignore_errors=True)
                print(tree, " ".join(f"{x:.2f}" for x in runs[tree][-1]), flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    for tree, rows in runs.items():
        rate, cpu, thread = (statistics.median(row[k] for row in rows) for k in range(3))
        print(f"{tree}: {rate:.0f} MB/s, CPU {cpu:.2f} ms/MB, main thread {thread:.2f} ms/MB")


if __name__ == "__main__":
    main(sys.argv[1:])
