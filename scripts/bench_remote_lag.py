"""How far the remote's copy trails a pool that keeps changing: a Volume with a
`dir://` remote on /var/tmp, its background uploader running as in a mount,
and a writer appending WRITE_KIB with an fsync every 50 ms (plus a 2 MiB file
every 3 s) for SECONDS. For each txg, the time from when it was durable to when
the remote's journal held it.

    python scripts/bench_remote_lag.py [SECONDS] [WRITE_KIB]
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio

from dwfs import Credential, PoolOptions, create_pool
from dwfs.chunks import PASSPHRASE
from dwfs.vfs import Volume, open_volume
from dwfs.vfs._attrs import ROOT_INO

KDF = {"name": "argon2id", "memory_kib": 256, "iterations": 1, "lanes": 1}


async def writer(volume: Volume, seconds: float, size: int, seen: dict[int, float]) -> None:
    fh, _ = volume.create(ROOT_INO, b"log", 0o644, os.O_RDWR, 0, 0)
    start = next_file = time.monotonic()
    offset = 0
    while time.monotonic() - start < seconds:
        await volume.write(fh, offset, os.urandom(size))
        offset += size
        await volume.fsync(fh)
        seen.setdefault(volume.meta.durable_txg, time.monotonic())
        if time.monotonic() >= next_file:
            next_file += 3.0
            other, _ = volume.create(ROOT_INO, b"f%d" % offset, 0o644, os.O_RDWR, 0, 0)
            await volume.write(other, 0, os.urandom(2 << 20))
            await volume.release(other)
        await trio.sleep(0.05)
    await volume.release(fh)


async def main(seconds: float, size: int) -> None:
    root = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="dwfs-lag-"))
    try:
        os.environ["DWFS_STATE_DIR"] = str(root / "state")
        devices = [root / f"d{i}" for i in range(3)]
        credential = Credential(PASSPHRASE, bytearray(b"bench"))
        create_pool(devices, credential, PoolOptions(layout="raidz1", kdf=KDF))
        remote = root / "remote"
        remote.mkdir(mode=0o700)
        seen: dict[int, float] = {}
        lags: list[float] = []
        async with open_volume(devices[0], credential) as volume:
            await volume.remote.add(f"dir://{remote}")
            await volume.remote.sync()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(writer, volume, seconds, size, seen)
                while True:
                    await trio.sleep(0.05)
                    journal = volume.remote.journal
                    held = journal.txg if journal else 0
                    for txg in [t for t in seen if t <= held]:
                        lags.append(time.monotonic() - seen.pop(txg))
                    if not nursery.child_tasks:
                        break
        lags.sort()
        print(
            f"{len(lags)} txgs reached the remote's journal ({len(seen)} not yet at the end): "
            f"median {statistics.median(lags):.1f} s, 90th {lags[int(len(lags) * 0.9)]:.1f} s, "
            f"max {lags[-1]:.1f} s after they were durable"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    trio.run(
        main,
        float(sys.argv[1]) if len(sys.argv) > 1 else 60.0,
        int(sys.argv[2]) * 1024 if len(sys.argv) > 2 else 4096,
    )
