"""Maintenance of a mounted pool, through its mount, beside programs using the
filesystem: scrub (paused, resumed, stopped, refused twice at once, picked up
where it was after a kill -9 of the daemon) and replace."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dwfs.chunks._scrub import BATCH
from tests.integration.conftest import LivePool, PoolFactory, dwfsctl, mounted_at

SLOW = "0.5"
"""Percent of the time a scrub takes while a program uses the mount, when a test
wants to catch it running (nobody using the mount, it runs at full speed)."""


def fill(pool: LivePool, count: int, size: int, seed: int) -> dict[str, bytes]:
    rng = random.Random(seed)
    files = {f"f{i}": rng.randbytes(size) for i in range(count)}
    for name, data in files.items():
        (pool.mnt / name).write_bytes(data)
    os.sync()
    pool.stored()  # on the devices, for rot() to find
    return files


def verify(pool: LivePool, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        assert (pool.mnt / name).read_bytes() == data, name


@contextlib.contextmanager
def program_running(pool: LivePool) -> Iterator[list[str]]:
    """A program writing new files and reading them back while the body runs
    (none overwritten, so the pool holds no dead stripes for a scrub to count);
    the names of those it read back wrong."""
    failures: list[str] = []
    stop = threading.Event()

    def work() -> None:
        rng = random.Random(3)
        n = 0
        while not stop.is_set():
            data = rng.randbytes(rng.randrange(1, 64_000))
            path = pool.mnt / f"busy{n}"
            try:
                path.write_bytes(data)
                if path.read_bytes() != data:
                    failures.append(path.name)
            except OSError as exc:
                if exc.errno in (errno.ENOTCONN, errno.ECONNABORTED):
                    return  # the test killed the daemon: the program stops here
                raise
            n += 1
            time.sleep(0.02)  # in use all along, without filling the disk

    worker = threading.Thread(target=work)
    worker.start()
    try:
        yield failures
    finally:
        stop.set()
        worker.join()


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
    with program_running(pool) as failures:
        report = json.loads(pool.ctl("scrub", "--json", pool.mnt).stdout)
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
    """A scrub keeps to its share of the time while a program uses the mount
    (so a test can catch it running), and runs at full speed once nobody does."""
    pool = make_pool()
    files = fill(pool, 40, 1_500_000, seed=4)
    with program_running(pool) as failures:
        started = json.loads(
            pool.ctl("scrub", "--no-wait", "--json", "--share", SLOW, pool.mnt).stdout
        )
        assert started["state"] == "running"
        neither = pool.ctl("scrub", "--passphrase-file", pool.passfile, pool.root, check=False)
        assert neither.returncode == 5 and neither.stderr.count("\n") == 1, neither.stderr
        twice = pool.ctl("scrub", "--no-wait", pool.mnt, check=False)
        assert twice.returncode == 7 and "already running" in twice.stderr
        assert twice.stderr.count("\n") == 1, "one line"
        wait_for(pool, lambda job: job["stripes_checked"] > 0)

        paused = json.loads(pool.ctl("scrub", "--pause", "--json", pool.mnt).stdout)
        assert paused["state"] == "paused"
        time.sleep(1)
        assert scan(pool)["stripes_checked"] == paused["stripes_checked"], "a paused scrub rests"
        assert "scrub paused" in pool.ctl("status", pool.mnt).stdout

        resumed = json.loads(
            pool.ctl("scrub", "--no-wait", "--json", "--share", SLOW, pool.mnt).stdout
        )
        assert resumed["state"] == "running"
        before = wait_for(pool, lambda job: job["stripes_checked"] > 2 * BATCH + 20)
        assert before["state"] == "running", "in use, it keeps to its share"
        time.sleep(1.5)  # the cursor is saved every second
        pool.crash()
    assert not failures
    pool.mount()
    done = wait_for(pool, lambda job: job["state"] == "finished", seconds=10)
    fresh = json.loads(pool.ctl("scrub", "--json", "--share", "100", pool.mnt).stdout)
    assert (fresh["errors_found"], fresh["unrepairable"]) == (0, 0)
    assert done["started"] == started["started"], "the same scrub went on"
    assert before["stripes_checked"] <= done["stripes_checked"]
    assert done["stripes_checked"] <= fresh["stripes_checked"] + 2 * BATCH, (
        "after the crash it went on from its cursor, not from the start"
    )

    with program_running(pool) as failures:
        pool.ctl("scrub", "--no-wait", "--share", SLOW, pool.mnt)
        stopped = json.loads(pool.ctl("scrub", "--stop", "--json", pool.mnt).stdout)
        assert stopped["state"] == "stopped"
        assert pool.ctl("scrub", "--stop", pool.mnt, check=False).returncode == 2
    assert not failures
    pool.remount()
    assert scan(pool)["state"] == "stopped", "a stopped scrub stays stopped"
    verify(pool, files)


def test_a_device_is_replaced_while_the_pool_is_in_use(make_pool: PoolFactory) -> None:
    pool = make_pool()
    files = fill(pool, 20, 1_000_000, seed=6)
    other = make_pool()
    taken = pool.ctl("replace", pool.mnt, pool.devices[1], other.devices[0], check=False)
    assert taken.returncode == 2 and "already belongs to dwfs pool" in taken.stderr
    unknown = pool.ctl("replace", pool.mnt, pool.root / "nope", pool.root / "new", check=False)
    assert unknown.returncode != 0 and "not a device of pool" in unknown.stderr
    with program_running(pool) as failures:  # in use, the scrub keeps to its share
        pool.ctl("scrub", "--no-wait", "--share", SLOW, pool.mnt)
        during = pool.ctl("replace", pool.mnt, pool.devices[1], pool.root / "new", check=False)
        assert during.returncode == 7 and "scrub" in during.stderr
        pool.ctl("scrub", "--stop", pool.mnt)
    assert not failures
    assert not (pool.root / "new").exists(), "a refused replace changes nothing"

    with program_running(pool) as failures:
        done = pool.ctl("replace", pool.mnt, pool.devices[1], pool.root / "new")
    assert not failures
    assert "pool is online" in done.stdout
    status = json.loads(pool.ctl("status", "--json", pool.mnt).stdout)
    paths = [d["path"] for d in status["devices"]]
    assert str((pool.root / "new").resolve()) in paths and str(pool.devices[1]) not in paths
    assert not any(d["resilvering"] for d in status["devices"])
    new = next(d for d in status["devices"] if d["path"].endswith("/new"))
    assert new["read_errors"] == new["checksum_errors"] == 0, "missing shards are not errors"
    verify(pool, files)

    pool.umount()
    (pool.devices[2]).rename(pool.root / "away")  # the new device must hold its part
    pool.mount(None, "degraded")
    verify(pool, files)


def test_events_reach_the_hook_of_a_mount(make_pool: PoolFactory) -> None:
    pool = make_pool(mount=False)
    heard = pool.root / "heard.jsonl"
    hook = pool.root / "hook"
    hook.write_text(f"#!/bin/sh\ncat >> {heard}\n")
    hook.chmod(0o755)
    mount: list[str | Path] = [
        "mount",
        "--passphrase-file",
        pool.passfile,
        pool.devices[0],
        pool.mnt,
    ]
    refused = dwfsctl(
        *mount[:1], "--event-hook", pool.root / "no-such-hook", *mount[1:], check=False
    )
    assert refused.returncode == 2 and "names no program" in refused.stderr
    assert not mounted_at(pool.mnt)
    dwfsctl(*mount[:1], "--event-hook", f"{hook} --from-dwfs", *mount[1:])
    pool.pid = pool._registry_pid()
    files = fill(pool, 10, 1_000_000, seed=7)
    rot(pool.devices[2], seed=8)
    report = json.loads(pool.ctl("scrub", "--json", "--share", "100", pool.mnt).stdout)
    assert report["errors_found"] > 0

    def kinds() -> list[str]:
        text = heard.read_text() if heard.exists() else ""
        return [json.loads(line)["event"] for line in text.splitlines()]

    deadline = time.monotonic() + 30
    while not {"scrub_finished", "checksum_errors"} <= set(kinds()):
        assert time.monotonic() < deadline, kinds()
        time.sleep(0.2)
    finished = [json.loads(x) for x in heard.read_text().splitlines() if "scrub_finished" in x]
    assert finished[0]["errors_repaired"] == report["errors_repaired"]
    status = json.loads(pool.ctl("status", "--json", pool.mnt).stdout)
    assert "scrub_finished" in [e["event"] for e in status["events"]]
    verify(pool, files)
