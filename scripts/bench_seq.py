"""Where sequential I/O's time goes: 1 GiB written and read back cold with fio
through gocryptfs and dwfs's native front end (bench_mount's targets, on
tmpfs), with the serving process's CPU time and minor page faults per MB
(and, for dwfs, the part of that CPU its main thread spent: the trio thread
that takes every request and sends every reply; the rest is the store's
worker threads), reading twice (the first read after a mount fills the chunk
cache with memory the process never touched before); then
the block store alone, in this process: putting 1 GiB in one call and syncing
it, and loading every chunk of it the way the mount's read-ahead does
(batches of READ_AHEAD_BATCH chunks, one or two batches at once), cold. The
store's rates are what the mount could reach if its request path cost
nothing.

    python scripts/bench_seq.py [--warm GIB] [--rounds N] [--disk]

--disk puts the devices and gocryptfs's directory on the disk-backed
filesystem (DWFS_BENCH_DISK, /var/tmp by default) instead of tmpfs; every
read, the store's too, starts with the page cache dropped.

--warm touches and frees GIB of memory before each measure. This project's
machines report free pages to their host (virtio-balloon free page reporting),
and the first touch of a page the host took back costs 3-6 us instead of 1 us,
a cost that lands on whichever process allocates first; warming makes the
runs comparable (docs/performance.md). Needs root, fio and gocryptfs.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import time
from pathlib import Path

import trio
from bench_mount import (
    BASE,
    DISK_BASE,
    cpu_seconds,
    drop_caches,
    fio,
    proc_stat,
    server_of,
    targets,
    warm,
)

from dwfs import Credential, PoolOptions, create_pool, open_pool
from dwfs.chunks import PASSPHRASE
from dwfs.vfs._files import READ_AHEAD_BATCH

SIZE = 1 << 30


def faults(pid: int | None) -> int:
    """Minor page faults of a process and all its threads so far."""
    return 0 if pid is None else int(proc_stat(pid)[7])


def through_mounts(root: Path, gib: int, raw_name: str) -> None:
    megabytes = SIZE / 1e6
    for name, target in targets(raw_name):
        if name not in ("gocryptfs", "dwfs native"):
            continue
        with target(root) as directory:
            server = server_of(directory)
            assert server is not None
            for io in ("write", "read", "read again"):
                drop_caches()
                warm(gib)
                before = cpu_seconds(server), cpu_seconds(server, server), faults(server)
                rate = fio(directory, "seq", io.split()[0], "1M", "1G")["MB/s"]
                cpu = (cpu_seconds(server) - before[0]) * 1000 / megabytes
                main = (cpu_seconds(server, server) - before[1]) * 1000 / megabytes
                minflt = (faults(server) - before[2]) / megabytes
                split = f"{main:.2f}" if name.startswith("dwfs") else "-"
                print(
                    f"| {name} | {io} | {rate:,.0f} | {cpu:.2f} | {split} | {minflt:.0f} |",
                    flush=True,
                )


def report(what: str, io: str, start: float, cpu: float, minflt: int) -> None:
    """One table row for work this process did since start (wall and CPU clocks)
    and minflt (its minor faults then)."""
    megabytes = SIZE / 1e6
    rate = megabytes / (time.perf_counter() - start)
    cpu_ms = (time.process_time() - cpu) * 1000 / megabytes
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - minflt) / megabytes
    print(f"| {what} | {io} | {rate:,.0f} | {cpu_ms:.2f} | - | {faults:.0f} |", flush=True)


def store_alone(root: Path, gib: int) -> None:
    root.mkdir()
    paths = [root / f"d{i}" for i in range(3)]
    kdf = {"name": "argon2id", "memory_kib": 1024, "iterations": 1, "lanes": 1}
    create_pool(paths, Credential(PASSPHRASE, bytearray(b"bench")), PoolOptions("raidz1", kdf=kdf))

    async def run() -> None:
        async with open_pool(paths[0], Credential(PASSPHRASE, bytearray(b"bench"))) as pool:
            store = pool.store
            data = os.urandom(SIZE)
            drop_caches()
            warm(gib)
            start, cpu = time.perf_counter(), time.process_time()
            minflt = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            ids = [ref.chunk_id for ref in await store.put(data)]
            await store.sync()
            report("store alone, one put of 1 GiB and a sync", "store", start, cpu, minflt)
            del data
            step = READ_AHEAD_BATCH
            batches = [ids[i : i + step] for i in range(0, len(ids), step)]
            for at_once in (1, 2):  # cold both times: loading the first 3/4 evicts the rest
                drop_caches()
                warm(gib)
                start, cpu = time.perf_counter(), time.process_time()
                minflt = resource.getrusage(resource.RUSAGE_SELF).ru_minflt

                async def loader(first: int, step: int) -> None:
                    for batch in batches[first::step]:
                        await store.prefetch(batch)

                async with trio.open_nursery() as nursery:
                    for first in range(at_once):
                        nursery.start_soon(loader, first, at_once)
                report(f"store alone, {at_once} batch(es) at once", "load", start, cpu, minflt)

    trio.run(run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--warm", type=int, default=0, metavar="GIB")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--disk", action="store_true")
    args = parser.parse_args()
    print("| what | I/O | MB/s | CPU ms per MB | of it, main thread | minor faults per MB |")
    print("|---|---|---|---|---|---|")
    for _ in range(args.rounds):
        root = (DISK_BASE if args.disk else BASE) / f"dwfs-bench-seq-{os.getpid()}"
        root.mkdir()
        try:
            through_mounts(root, args.warm, "raw disk" if args.disk else "raw tmpfs")
            store_alone(root / "store", args.warm)
        finally:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
