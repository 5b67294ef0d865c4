"""`make bench`: erasure coding and the block store's put pipeline, with peers.

Prints a markdown report (docs/performance.md holds a copy). Everything runs in
one process on this machine in one go, so ratios between rows are meaningful
even when absolute numbers move with the machine's load.

    python scripts/bench_blockstore.py [--quick]
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import trio

from dwfs import Credential, PoolOptions, _accel, create_pool, open_pool
from dwfs._accel import _pure, gf
from dwfs.chunks import PASSPHRASE
from dwfs.devices import parse_layout
from dwfs.devices._parity import encode, reconstruct

MB = 1e6


def best_rate(nbytes: int, fn: Callable[[], object], seconds: float = 1.0) -> float:
    """Bytes per second of the fastest of repeated runs within `seconds`."""
    best = float("inf")
    deadline = time.perf_counter() + seconds
    while True:
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
        if time.perf_counter() > deadline:
            return nbytes / best


def coding_rows() -> list[str]:
    rows = ["| code | kernel | encode MB/s/core | decode, m lost, MB/s/core |", "|---|---|---|---|"]
    for k, m in ((4, 2), (8, 3)):
        rows += code_rows(k, m, 1 << 20)
    return rows


def code_rows(k: int, m: int, size: int) -> list[str]:
    layout = parse_layout(f"{k}+{m}", k + m)
    data = os.urandom(size)
    shards = encode(layout, data)
    survivors = {i: s for i, s in enumerate(shards) if i >= m}  # m data shards lost
    rows = []
    for level, name in ((2, "dwfs AVX2"), (1, "dwfs SSSE3"), (0, "dwfs portable C")):
        _accel.force_simd_level(level)
        enc = best_rate(size, functools.partial(encode, layout, data))
        dec = best_rate(size, functools.partial(reconstruct, layout, survivors, list(range(m))))
        rows.append(f"| {k}+{m} | {name} | {enc / MB:,.0f} | {dec / MB:,.0f} |")
    _accel.force_simd_level(2)
    part = [data[i * size // k : (i + 1) * size // k] for i in range(k)]
    small = [p[: 1 << 16] for p in part]
    extra = gf.flatten(gf.cauchy(m, k))
    pure = best_rate(k << 16, functools.partial(_pure.gf_matmul, extra, m, k, small))
    rows.append(f"| {k}+{m} | dwfs pure Python | {pure / MB:,.0f} | - |")
    return rows + peer_rows(k, m, part, size)


def peer_rows(k: int, m: int, part: list[bytes], size: int) -> list[str]:
    rows = []
    try:
        import zfec

        encoder = zfec.Encoder(k, k + m)
        decoder = zfec.Decoder(k, k + m)
        blocks = encoder.encode(part)
        nums = list(range(m, k + m))
        rate = best_rate(size, lambda: encoder.encode(part))
        dec = best_rate(size, lambda: decoder.decode([blocks[i] for i in nums], nums))
        rows.append(
            f"| {k}+{m} | zfec {zfec.__version__} (peer) | {rate / MB:,.0f} | {dec / MB:,.0f} |"
        )
    except ImportError:
        rows.append(f"| {k}+{m} | zfec (not installed) | - | - |")
    try:
        from pyeclib.ec_iface import ECDriver

        driver = ECDriver(k=k, m=m, ec_type="isa_l_rs_vand")
        data = b"".join(part)
        frags = driver.encode(data)
        rate = best_rate(size, lambda: driver.encode(data))
        dec = best_rate(size, lambda: driver.decode(frags[m:]))
        rows.append(f"| {k}+{m} | ISA-L via pyeclib (peer) | {rate / MB:,.0f} | {dec / MB:,.0f} |")
    except (ImportError, Exception) as exc:  # pyeclib raises its own errors when ISA-L is absent
        rows.append(f"| {k}+{m} | ISA-L via pyeclib (unavailable: {type(exc).__name__}) | - | - |")
    return rows


def text_data(size: int) -> bytes:
    rng = random.Random(1)
    words = [
        bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 10))) for _ in range(5000)
    ]
    out = bytearray()
    while len(out) < size:
        out += b" ".join(rng.choices(words, k=12)) + b".\n"
    return bytes(out[:size])


def put_rate(root: Path, layout: str, n: int, data: bytes, cores: int) -> float:
    """Bytes per second of one put() and sync() into a new pool at root."""
    return sealed_put(root, layout, n, data, cores)[0]


def sealed_put(
    root: Path, layout: str, n: int, data: bytes, cores: int, padding: str = "none"
) -> tuple[float, int]:
    """(bytes per second, sealed bytes stored) of one put() and sync() into a new
    pool at root."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    paths = [root / f"d{i}" for i in range(n)]
    kdf = {"name": "argon2id", "memory_kib": 1024, "iterations": 1, "lanes": 1}
    options = PoolOptions(layout, kdf=kdf, padding=padding)
    create_pool(paths, Credential(PASSPHRASE, bytearray(b"bench")), options)

    async def run() -> tuple[float, int]:
        async with open_pool(paths[0], Credential(PASSPHRASE, bytearray(b"bench"))) as pool:
            pool.store._limiter.total_tokens = cores
            start = time.perf_counter()
            await pool.store.put(data)
            await pool.store.sync()
            return time.perf_counter() - start, pool.store.stats.bytes_sealed

    elapsed, sealed = trio.run(run)
    shutil.rmtree(root)
    return len(data) / elapsed, sealed


def padding_rows(quick: bool) -> list[str]:
    size = (64 if quick else 256) << 20
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    root = base / f"dwfs-bench-{os.getpid()}"
    rows = [
        "| data | padding | put MB/s (raidz1, 2 threads) | sealed bytes / data bytes |",
        "|---|---|---|---|",
    ]
    for name, data in (("incompressible", os.urandom(size)), ("text", text_data(size))):
        for padding in ("none", "padme"):
            rate, sealed = sealed_put(root, "raidz1", 3, data, 2, padding)
            rows.append(f"| {name} | {padding} | {rate / MB:,.0f} | {sealed / len(data):.4f} |")
    return rows


def relocate_rate(root: Path, layout: str, n: int, data: bytes) -> tuple[float, float]:
    """(put, relocate) bytes per second: one put() and sync() into a new pool at
    root, then compaction's copy of every chunk it stored, and sync()."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    paths = [root / f"d{i}" for i in range(n)]
    kdf = {"name": "argon2id", "memory_kib": 1024, "iterations": 1, "lanes": 1}
    create_pool(paths, Credential(PASSPHRASE, bytearray(b"bench")), PoolOptions(layout, kdf=kdf))

    async def run() -> tuple[float, float]:
        async with open_pool(paths[0], Credential(PASSPHRASE, bytearray(b"bench"))) as pool:
            start = time.perf_counter()
            refs = await pool.store.put(data)
            await pool.store.sync()
            put = time.perf_counter() - start
            start = time.perf_counter()
            moved = await pool.store.relocate([(r.chunk_id, r.addr) for r in refs])
            await pool.store.sync()
            assert len(moved) == len(refs)
            return put, time.perf_counter() - start

    put, relocate = trio.run(run)
    shutil.rmtree(root)
    return len(data) / put, len(data) / relocate


def compaction_rows(quick: bool) -> list[str]:
    size = (64 if quick else 512) << 20
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    root = base / f"dwfs-bench-{os.getpid()}"
    data = os.urandom(size)
    rows = [
        "| layout | (peer) put MB/s, same data and run | relocate MB/s (read, MACs, code, write) |",
        "|---|---|---|",
    ]
    for layout, n in (("raidz1", 3), ("4+2", 6)):
        put, relocate = relocate_rate(root, layout, n, data)
        rows.append(f"| {layout} over {n} tmpfs dirs | {put / MB:,.0f} | {relocate / MB:,.0f} |")
    return rows


def tmpfs_write_rate(base: Path, size: int) -> float:
    """Plain 1 MiB writes to a new file: the ceiling the devices' filesystem sets."""
    path = base / f"dwfs-bench-raw-{os.getpid()}"
    block = os.urandom(1 << 20)
    start = time.perf_counter()
    with path.open("wb") as f:
        for _ in range(size >> 20):
            f.write(block)
        f.flush()
        os.fsync(f.fileno())
    elapsed = time.perf_counter() - start
    path.unlink()
    return size / elapsed


def pipeline_rows(quick: bool) -> list[str]:
    size = (64 if quick else 512) << 20
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    root = base / f"dwfs-bench-{os.getpid()}"
    datasets = {"incompressible": os.urandom(size), "text": text_data(size)}
    raw = tmpfs_write_rate(base, size)
    rows = [
        "| data | layout | worker threads | put MB/s (chunk, id, compress, seal, code, write) |",
        "|---|---|---|---|",
        f"| (peer) plain 1 MiB writes to a new file on {base} | - | 1 | {raw / MB:,.0f} |",
    ]
    for name, data in datasets.items():
        for layout, n in (("raidz1", 3), ("4+2", 6)):
            for cores in (1, 2):
                rate = put_rate(root, layout, n, data, cores)
                rows.append(
                    f"| {name} | {layout} over {n} tmpfs dirs | {cores} | {rate / MB:,.0f} |"
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller data, for a smoke run")
    args = parser.parse_args()
    _accel.tune_allocator()
    print(
        f"# dwfs block store benchmark\n\nkernels: {_accel.implementation()}, "
        f"{os.cpu_count()} cores\n"
    )
    print("## Erasure coding (1 MiB stripes, one thread)\n")
    print("\n".join(coding_rows()))
    print("\n## Put pipeline through the Python API\n")
    print("\n".join(pipeline_rows(args.quick)))
    print("\n## Compaction's copies, incompressible data, two worker threads\n")
    print("\n".join(compaction_rows(args.quick)))
    print("\n## Padding sealed chunks to Padmé lengths (--padding padme)\n")
    print("\n".join(padding_rows(args.quick)))


if __name__ == "__main__":
    main()
