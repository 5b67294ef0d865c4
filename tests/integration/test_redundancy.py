"""Redundancy through the mount: lost devices, bitrot, replace, and a lost local state."""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

from tests.integration.conftest import LivePool, PoolFactory, dwfsctl


def fill(pool: LivePool, seed: int = 1) -> dict[str, bytes]:
    rng = random.Random(seed)
    files = {}
    for i in range(12):
        name = f"d{i % 3}/file{i}"
        (pool.mnt / name).parent.mkdir(exist_ok=True)
        data = rng.randbytes(rng.randint(1, 1_500_000))
        (pool.mnt / name).write_bytes(data)
        files[name] = data
    return files


def verify(pool: LivePool, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        assert (pool.mnt / name).read_bytes() == data, name


def status(pool: LivePool, where: Path) -> dict[str, Any]:
    if where == pool.mnt:
        out = dwfsctl("status", "--json", where).stdout
    else:
        out = dwfsctl("status", "--json", "--passphrase-file", pool.passfile, where).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def wait_resilvered(pool: LivePool) -> None:
    deadline = time.monotonic() + 120
    while any(d["resilvering"] for d in status(pool, pool.mnt)["devices"]):
        assert time.monotonic() < deadline, "resilver did not finish"
        time.sleep(0.2)


def test_raidz2_survives_any_two_lost_devices(make_pool: PoolFactory, tmp_path: Path) -> None:
    pool = make_pool(layout="raidz2", n=6)
    files = fill(pool)
    pool.umount()
    rng = random.Random(3)
    for gone in ([0, 1], [2, 5], sorted(rng.sample(range(6), 2))):
        for i in gone:
            shutil.move(pool.devices[i], tmp_path / f"away{i}")
        survivor = next(d for i, d in enumerate(pool.devices) if i not in gone)
        pool.mount(survivor, "degraded")
        verify(pool, files)
        assert status(pool, pool.mnt)["state"] == "degraded"
        pool.umount()
        for i in gone:
            shutil.move(tmp_path / f"away{i}", pool.devices[i])
        pool.mount()  # the returning devices missed the writes above: resilver
        wait_resilvered(pool)
        pool.umount()
    shutil.rmtree(pool.devices[4])
    dwfsctl(
        "replace",
        "--passphrase-file",
        pool.passfile,
        pool.devices[0],
        pool.devices[4],
        tmp_path / "new4",
    )
    assert status(pool, pool.devices[0])["state"] == "online"
    pool.mount()
    verify(pool, files)


def test_bitrot_on_two_devices_is_read_through_and_scrubbed(make_pool: PoolFactory) -> None:
    pool = make_pool(layout="raidz2", n=6)
    files = fill(pool, seed=2)
    pool.umount()
    rng = random.Random(5)
    for device in pool.devices[1:3]:
        for segment in (device / "segments").iterdir():
            data = bytearray(segment.read_bytes())
            for _ in range(len(data) // 2000):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            segment.write_bytes(bytes(data))
    pool.mount()
    verify(pool, files)
    pool.umount()
    report = json.loads(
        dwfsctl("scrub", "--json", "--passphrase-file", pool.passfile, pool.devices[0]).stdout
    )
    assert report["unrepairable"] == 0
    again = json.loads(
        dwfsctl("scrub", "--json", "--passphrase-file", pool.passfile, pool.devices[0]).stdout
    )
    assert again["errors_found"] == 0
    pool.mount()
    verify(pool, files)


def test_lost_local_state_is_rebuilt_from_the_pool(make_pool: PoolFactory) -> None:
    pool = make_pool()
    files = fill(pool, seed=3)
    with open(pool.mnt / "synced-only", "wb") as f:
        f.write(b"durable")
        f.flush()
        os.fsync(f.fileno())
    pool.crash()
    shutil.rmtree(os.environ["DWFS_STATE_DIR"])
    pool.mount()
    assert (pool.mnt / "synced-only").read_bytes() == b"durable"
    pool.umount()
    shutil.rmtree(os.environ["DWFS_STATE_DIR"])
    pool.mount()
    verify(pool, files)
