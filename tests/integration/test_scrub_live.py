"""Scrub of a mounted pool, through its mount: beside programs using the
filesystem, paused, resumed, stopped, refused twice at once, and picked up
where it was after a kill -9 of the daemon."""

from __future__ import annotations

import json
import os
import random
import threading
import time
from pathlib import Path
from typing import Any

from tests.integration.conftest import LivePool, PoolFactory

SLOW = "0.5"
"""Percent of the time a scrub takes when a test wants to catch it running."""


def fill(pool: LivePool, count: int, size: int, seed: int) -> dict[str, bytes]:
    rng = random.Random(seed)
    files = {f"f{i}": rng.randbytes(size) for i in range(count)}
    for name, data in files.items():
        (pool.mnt / name).write_bytes(data)
    os.sync()
    return files


def verify(pool: LivePool, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        assert (pool.mnt / name).read_bytes() == data, name


def scan(pool: LivePool) -> dict[str, Any]:
    status = json.loads(pool.ctl("status", "--json", pool.mnt).stdout)
    scan: dict[str, Any] = status["scan"]
    return scan


def wait_for(pool: LivePool, done: Any, seconds: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while not done(job := scan(pool)):
        assert time.monotonic() < deadline, f"the scrub never got there: {job}"
        time.sleep(0.1)
    return job


def rot(device: Path, seed: int) -> int:
    """Flip bits in place in every segment of one device (not rewriting the
    files, which the mount holds open); how many bytes."""
    rng = random.Random(seed)
    flipped = 0
    for segment in sorted((device / "segments").iterdir()):
        size = segment.stat().st_size
        with open(segment, "r+b") as f:
            for _ in range(size // 50_000):
                at = rng.randrange(size)
                f.seek(at)
                byte = f.read(1)
                f.seek(at)
                f.write(bytes([byte[0] ^ (1 << rng.randrange(8))]))
                flipped += 1
    return flipped


def test_a_mounted_pool_is_scrubbed_and_repaired_while_in_use(make_pool: PoolFactory) -> None:
    pool = make_pool()
    files = fill(pool, 24, 1_000_000, seed=1)
    assert rot(pool.devices[1], seed=2) > 100
    failures: list[str] = []
    stop = threading.Event()

    def busy() -> None:
        """A program writing and reading back its own files all through the scrub."""
        rng = random.Random(3)
        n = 0
        while not stop.is_set():
            data = rng.randbytes(rng.randrange(1, 300_000))
            path = pool.mnt / f"busy{n % 5}"
            path.write_bytes(data)
            if path.read_bytes() != data:
                failures.append(path.name)
            n += 1

    worker = threading.Thread(target=busy)
    worker.start()
    try:
        report = json.loads(pool.ctl("scrub", "--json", pool.mnt).stdout)
    finally:
        stop.set()
        worker.join()
    assert not failures
    assert report["state"] == "finished"
    assert report["errors_found"] > 0
    assert report["errors_repaired"] == report["errors_found"]
    assert report["unrepairable"] == 0
    verify(pool, files)
    again = json.loads(pool.ctl("scrub", "--json", "--share", "100", pool.mnt).stdout)
    assert (again["errors_found"], again["unrepairable"]) == (0, 0)
    assert again["stripes_checked"] >= report["stripes_checked"] - 10
    text = pool.ctl("status", pool.mnt).stdout
    assert "scan: scrub finished" in text and "0 bad shards found" in text


def test_pause_resume_stop_and_a_crash_mid_scrub(make_pool: PoolFactory) -> None:
    pool = make_pool()
    files = fill(pool, 40, 1_500_000, seed=4)
    whole = json.loads(pool.ctl("scrub", "--json", "--share", "100", pool.mnt).stdout)

    started = json.loads(pool.ctl("scrub", "--no-wait", "--json", "--share", SLOW, pool.mnt).stdout)
    assert started["state"] == "running"
    twice = pool.ctl("scrub", "--no-wait", pool.mnt, check=False)
    assert twice.returncode == 7 and "already running" in twice.stderr
    assert twice.stderr.count("\n") == 1, "one line"
    wait_for(pool, lambda job: job["stripes_checked"] > 0)

    paused = json.loads(pool.ctl("scrub", "--pause", "--json", pool.mnt).stdout)
    assert paused["state"] == "paused"
    time.sleep(1)
    assert scan(pool)["stripes_checked"] == paused["stripes_checked"], "a paused scrub rests"
    assert "scrub paused" in pool.ctl("status", pool.mnt).stdout

    resumed = json.loads(pool.ctl("scrub", "--no-wait", "--json", "--share", SLOW, pool.mnt).stdout)
    assert resumed["state"] == "running"
    before = wait_for(pool, lambda job: job["stripes_checked"] > paused["stripes_checked"] + 8)
    time.sleep(1.5)  # the cursor is saved every second
    pool.crash()
    pool.mount()
    after = scan(pool)
    assert after["state"] == "running", "it goes on after the crash by itself"
    assert after["stripes_checked"] >= before["stripes_checked"]
    stopped = json.loads(pool.ctl("scrub", "--stop", "--json", pool.mnt).stdout)
    assert stopped["state"] == "stopped"
    assert pool.ctl("scrub", "--stop", pool.mnt, check=False).returncode == 2
    pool.remount()
    assert scan(pool)["state"] == "stopped", "a stopped scrub stays stopped"

    fresh = json.loads(pool.ctl("scrub", "--json", "--share", "100", pool.mnt).stdout)
    assert fresh["stripes_checked"] >= whole["stripes_checked"], "mounts add checkpoints"
    assert (fresh["errors_found"], fresh["unrepairable"]) == (0, 0)
    verify(pool, files)
