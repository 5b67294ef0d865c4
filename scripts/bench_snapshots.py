"""Snapshots, measured in-process on a real pool (no FUSE): create on an empty
tree and on a big one, list many, delete after churn, restore a big file, the
metadata's memory per live file and per kept row, and mount time with and
without snapshots.

    python scripts/bench_snapshots.py [FILES] [SNAPSHOTS]   (default 100000 100)

Run by `make bench`; figures go in docs/performance.md.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from dwfs import Credential, PoolOptions, create_pool
from dwfs.chunks import PASSPHRASE
from dwfs.vfs import Volume, open_volume
from dwfs.vfs._attrs import ROOT_INO

KDF = {"name": "argon2id", "memory_kib": 1024, "iterations": 1, "lanes": 1}
SECRET = b"bench passphrase"


def credential() -> Credential:
    return Credential(PASSPHRASE, bytearray(SECRET))


def db_bytes(volume: Volume) -> int:
    """The metadata database's size in memory (its pages, as an image holds them)."""
    return len(volume.db.image())


async def timed(what: str, fn: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await fn()
    took = time.perf_counter() - start
    print(f"{what}: {took * 1000:.1f} ms", flush=True)
    return took


async def make_files(volume: Volume, directory: int, count: int) -> list[int]:
    inos = []
    for i in range(count):
        fh, attr = volume.create(directory, b"f%d" % i, 0o644, os.O_RDWR, 0, 0)
        await volume.write(fh, 0, b"x" * 100)
        await volume.release(fh)
        volume.forget(attr.ino, 1)
        inos.append(attr.ino)
    await volume.sync_all()
    return inos


async def churn(volume: Volume, inos: list[int], share: float, round_: int) -> None:
    for ino in inos[: int(len(inos) * share)]:
        fh = await volume.open(ino, os.O_RDWR)
        await volume.write(fh, 0, b"%d" % round_)
        await volume.release(fh)
    await volume.sync_all()


async def bench(root: Path, files: int, snapshots: int) -> None:
    devices = [root / f"dev{i}" for i in range(3)]
    create_pool(devices, credential(), PoolOptions("raidz1", kdf=KDF))
    async with open_volume(devices[0], credential()) as volume:
        await timed("snapshot create, empty tree", lambda: volume.snapshots.create("empty"))
        await volume.snapshots.delete(["empty"])
        base = db_bytes(volume)
        d = volume.create_node(ROOT_INO, b"d", 0o40755, 0, 0).ino
        start = time.perf_counter()
        inos = await make_files(volume, d, files)
        print(f"{files} files made in {time.perf_counter() - start:.1f} s", flush=True)
        print(f"metadata per live file: {(db_bytes(volume) - base) / files:.0f} bytes")
    await timed(f"mount, {files} files, no snapshot", lambda: _mount(devices[0]))
    async with open_volume(devices[0], credential()) as volume:
        live = db_bytes(volume)
        for i in range(5):
            await timed(
                f"snapshot create, {files} files", lambda i=i: volume.snapshots.create(f"t{i}")
            )
        await volume.snapshots.delete([f"t{i}" for i in range(5)])
        for n in range(snapshots):
            await churn(volume, inos, 0.01, n)
            await volume.snapshots.create(f"s{n}")
        kept = db_bytes(volume)
        (rows,) = volume.db.one(
            "SELECT (SELECT count(*) FROM inodes WHERE death IS NOT NULL) + "
            "(SELECT count(*) FROM inline_data WHERE death IS NOT NULL)"
        ) or (0,)
        print(
            f"{snapshots} snapshots at 1% churn: {rows} kept rows, "
            f"{(kept - live) / max(rows, 1):.0f} bytes each",
            flush=True,
        )
        await timed(f"list {snapshots} snapshots (rows)", lambda: _rows(volume))
        await timed(f"list {snapshots} snapshots with space, first", lambda: _listing(volume))
        await timed(f"list {snapshots} snapshots with space, again", lambda: _listing(volume))
        await timed("delete a middle snapshot after 1% churn", lambda: _delete(volume, "s40"))
        big = os.urandom(1 << 20) * 1024
        fh, _ = volume.create(ROOT_INO, b"big", 0o644, os.O_RDWR, 0, 0)
        await volume.write(fh, 0, big)
        await volume.release(fh)
        del big
        await volume.snapshots.create("with-big")
        volume.unlink(ROOT_INO, b"big")
        await timed(
            "restore a 1 GiB file",
            lambda: volume.snapshots.restore("with-big", b"big", b"big-again"),
        )
    await timed(f"mount, {files} files, {snapshots} snapshots", lambda: _mount(devices[0]))


async def _rows(volume: Volume) -> None:
    volume.meta.snapshot_rows.all()


async def _listing(volume: Volume) -> None:
    volume.snapshots.listing()


async def _delete(volume: Volume, name: str) -> None:
    await volume.snapshots.delete([name])


async def _mount(device: Path) -> None:
    async with open_volume(device, credential()):
        pass


def main() -> None:
    files = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    snapshots = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    root = Path(tempfile.mkdtemp(prefix="dwfs-bench-snap-", dir=os.environ.get("DWFS_BENCH_DISK")))
    os.environ["DWFS_STATE_DIR"] = str(root / "state")
    try:
        trio.run(bench, root, files, snapshots)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
