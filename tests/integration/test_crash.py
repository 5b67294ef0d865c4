"""kill -9 of the mount daemon in the middle of a write workload, many times.

After each crash the pool must mount with no repair step, every file that was
fsync'd before the kill must be intact, and no file may hold bytes that were
never written to it.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.conftest import LivePool, PoolFactory

WORKLOAD = r"""
import hashlib, os, sys
mnt, log_path, start = sys.argv[1], sys.argv[2], int(sys.argv[3])

def content(i, gen=0):
    seed = hashlib.sha256(f"{i}/{gen}".encode()).digest()
    size = 1 + (i * 37) % 3000 if i % 4 == 0 else 1000 + (i * 104729) % 900000
    return (seed * (1 + size // 32))[:size]

log = open(log_path, "a", buffering=1)
counter = os.open(os.path.join(mnt, "counter"), os.O_RDWR | os.O_CREAT, 0o644)
i = start
while True:
    with open(os.path.join(mnt, f"f{i}"), "wb") as f:
        f.write(content(i))
        if i % 3:
            f.flush()
            os.fsync(f.fileno())
            synced = True
        else:
            synced = False
    os.pwrite(counter, content(1, i)[:4096].ljust(4096, b"."), 0)
    if i % 2:
        os.fsync(counter)
        log.write(f"counter {i}\n")
    if synced:
        log.write(f"synced {i}\n")
    i += 1
"""


def content(i: int, gen: int = 0) -> bytes:
    """Every fourth file is small (kept inline, or just past the inline limit)."""
    seed = hashlib.sha256(f"{i}/{gen}".encode()).digest()
    size = 1 + (i * 37) % 3000 if i % 4 == 0 else 1000 + (i * 104729) % 900000
    return (seed * (1 + size // 32))[:size]


def check(pool: LivePool, log: Path) -> int:
    """Every fsync'd file intact, every other file either absent, empty or whole."""
    synced = {
        int(line.split()[1]) for line in log.read_text().splitlines() if line.startswith("synced")
    }
    counters = [
        int(line.split()[1]) for line in log.read_text().splitlines() if line.startswith("counter")
    ]
    for i in synced:
        assert (pool.mnt / f"f{i}").read_bytes() == content(i), f"fsync'd file f{i} damaged"
    for path in pool.mnt.glob("f*"):
        data = path.read_bytes()
        assert data in (b"", content(int(path.name[1:]))), f"{path.name} holds bytes never written"
    if counters:
        head = (pool.mnt / "counter").read_bytes()
        generations = [
            g
            for g in range(counters[-1], counters[-1] + 3)
            if head == content(1, g)[:4096].ljust(4096, b".")
        ]
        assert generations, "counter lost its last fsync'd generation or holds garbage"
    return max(synced, default=0)


def test_kill_9_during_writes_many_times(make_pool: PoolFactory, tmp_path: Path) -> None:
    pool = make_pool()
    script = tmp_path / "workload.py"
    script.write_text(WORKLOAD)
    log = tmp_path / "workload.log"
    rng = random.Random(42)
    start = 0
    rounds = int(os.environ.get("DWFS_CRASH_ROUNDS", "8"))
    for _ in range(rounds):
        worker = subprocess.Popen(
            [sys.executable, str(script), str(pool.mnt), str(log), str(start)],
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.3, 2.5))
        pool.crash()
        worker.wait(timeout=60)
        pool.mount()
        start = check(pool, log) + 100
    assert start > 100, "the workload made progress"


CHURN = r"""
import hashlib, os, sys
mnt, log_path, start = sys.argv[1], sys.argv[2], int(sys.argv[3])

def content(i):
    seed = hashlib.sha256(f"churn {i}".encode()).digest()
    return (seed * 9000)[: 100_000 + (i * 7919) % 200_000]

log = open(log_path, "a", buffering=1)
i = start
while True:
    with open(os.path.join(mnt, f"c{i}"), "wb") as f:
        f.write(content(i))
        f.flush()
        os.fsync(f.fileno())
    log.write(f"synced {i}\n")
    if i % 3 and i >= start + 12:
        os.unlink(os.path.join(mnt, f"c{i - 12}"))
        log.write(f"deleted {i - 12}\n")
    i += 1
"""


def churn_content(i: int) -> bytes:
    seed = hashlib.sha256(f"churn {i}".encode()).digest()
    return (seed * 9000)[: 100_000 + (i * 7919) % 200_000]


def test_kill_9_while_compaction_moves_chunks(
    make_pool: PoolFactory, tmp_path: Path, state_dir: Path
) -> None:
    """Files written, fsync'd and two of every three deleted again, in small
    segments, so every commit interval compacts; kill -9 at random moments.
    Every fsync'd file that was not deleted must read back whole, and a file
    whose deletion the crash undid must be whole too."""
    pool = make_pool(compression="none", segment_size=1 << 20)
    script = tmp_path / "churn.py"
    script.write_text(CHURN)
    log = tmp_path / "churn.log"
    rng = random.Random(9)
    start = 0
    for _ in range(int(os.environ.get("DWFS_CRASH_ROUNDS", "6"))):
        worker = subprocess.Popen(
            [sys.executable, str(script), str(pool.mnt), str(log), str(start)],
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(4.6, 6.2))  # around the first pass, 5 s after the mount
        pool.crash()
        worker.wait(timeout=60)
        pool.mount()
        lines = [line.split() for line in log.read_text().splitlines()]
        deleted = {int(n) for kind, n in lines if kind == "deleted"}
        synced = {int(n) for kind, n in lines if kind == "synced"}
        for i in synced - deleted:
            assert (pool.mnt / f"c{i}").read_bytes() == churn_content(i), f"c{i} damaged"
        for path in pool.mnt.glob("c*"):
            data = path.read_bytes()
            assert data in (b"", churn_content(int(path.name[1:]))), f"{path.name} is wrong"
        start = max(synced, default=0) + 100
    moved = [
        int(line.split("moved ")[1].split()[0])
        for mount_log in state_dir.glob("*/mount.log")
        for line in mount_log.read_text().splitlines()
        if "compaction moved" in line
    ]
    assert sum(moved) > 0, "the workload gave compaction work"
