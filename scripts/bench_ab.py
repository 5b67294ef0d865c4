"""A/B the fsync loops and a SQLite workload of two or more source trees against
gocryptfs, all mounted at once on one disk and alternated in short rounds, so
the machine's drift hits every side alike (each round in an order rotated by
one); prints medians and ratios to gocryptfs.

    python scripts/bench_ab.py TREE [TREE...]     (e.g. a `git worktree` of main)

Each TREE needs its native extension built in place (`make native` there, or a
copy of dwfs/_native*.so). ROUNDS (default 8) and DWFS_BENCH_DISK (default
/var/tmp) tune it; LOOPS picks the measures (default append,create,sqlite; also
cold_read, a sequential read of READ_MIB, default 512, after dropping caches,
seq_write, fio's sequential write of WRITE_MIB, default 1024, in 1 MiB blocks until
it is stored, untar_stdlib, bench_mount's untar of Python's standard library, small_files,
creates of 10 KB files, stat_loop, stats of 10,000 files after dropping caches,
xattr_loop, getxattrs of a name those files lack, rand_read, bench_mount's
random 4 KiB reads, and rand_write, its random 4 KiB writes).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench_mount import drop_caches, fio, missing_xattr, stdlib_tarball, stored, untar

BLOCK = os.urandom(4096)


def ctl(tree: str, state: Path, *args: object) -> None:
    env = {**os.environ, "PYTHONPATH": tree, "DWFS_STATE_DIR": str(state)}
    command = [sys.executable, "-m", "dwfs.cli.main", *map(str, args)]
    subprocess.run(command, cwd=tree, env=env, check=True, capture_output=True)


def append(directory: Path, n: int = 150) -> float:
    """Milliseconds per 4 KiB append + fsync."""
    fd = os.open(directory / "append", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    start = time.perf_counter()
    for _ in range(n):
        os.write(fd, BLOCK)
        os.fsync(fd)
    took = time.perf_counter() - start
    os.close(fd)
    return took / n * 1000


def create(directory: Path, n: int = 100) -> float:
    """Milliseconds per create + 4 KiB write + fsync + directory fsync."""
    sub = directory / f"c{time.time_ns()}"
    sub.mkdir()
    dfd = os.open(sub, os.O_RDONLY)
    start = time.perf_counter()
    for i in range(n):
        fd = os.open(sub / f"f{i}", os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, BLOCK)
        os.fsync(fd)
        os.close(fd)
        os.fsync(dfd)
    took = time.perf_counter() - start
    os.close(dfd)
    return took / n * 1000


def sqlite(directory: Path, transactions: int = 10) -> float:
    """Milliseconds per SQLite transaction of 1,000 inserts (default settings:
    a rollback journal, four fsyncs a transaction)."""
    import sqlite3

    path = directory / "bench.db"
    for leftover in (path, directory / "bench.db-journal"):
        leftover.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
    start = time.perf_counter()
    for t in range(transactions):
        with db:
            db.executemany(
                "INSERT INTO t VALUES (?, ?)", [(t * 1000 + i, "v" * 40) for i in range(1000)]
            )
    took = time.perf_counter() - start
    db.close()
    return took / transactions * 1000


def cold_read(directory: Path) -> float:
    """MB/s of a sequential read in 1 MiB blocks of a file twice the size of
    dwfs's chunk cache (written on first use), after dropping the page cache
    (needs root), so every chunk is loaded from the devices."""
    path, size = directory / "cold", int(os.environ.get("READ_MIB", "512")) << 20
    if not path.exists():
        with path.open("wb") as f:
            for _ in range(size >> 20):
                f.write(os.urandom(1 << 20))
    Path("/proc/sys/vm/drop_caches").write_text("3\n")
    fd = os.open(path, os.O_RDONLY)
    start = time.perf_counter()
    while os.read(fd, 1 << 20):
        pass
    took = time.perf_counter() - start
    os.close(fd)
    return size / took / 1e6


def seq_write(directory: Path) -> float:
    """MB/s of fio writing a new file sequentially in 1 MiB blocks and fsyncing
    it (fio's own figure, as bench_mount's: the fsync waits until dwfs has stored
    it all, and fio's start, up to 2 s on these machines, is left out)."""
    size = int(os.environ.get("WRITE_MIB", "1024"))
    rate: float = fio(directory, "seqw", "write", "1M", f"{size}M")["MB/s"]
    stored(directory)
    for path in directory.glob("seqw.*"):
        path.unlink()
    return rate


def small_files(directory: Path, n: int = 1000) -> float:
    """Microseconds per create + write of 10 KB + close of a new file (what an
    untar or a build does most), no fsync, until all of them are stored."""
    target = directory / f"small{time.monotonic_ns()}"
    target.mkdir()
    data = os.urandom(10_000)
    start = time.perf_counter()
    for i in range(n):
        fd = os.open(target / f"f{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, data)
        os.close(fd)
    stored(target)
    return (time.perf_counter() - start) / n * 1e6


def small_tree(directory: Path, n: int) -> list[Path]:
    """n files of 100 bytes, made the first time."""
    target = directory / "small-tree"
    files = [target / f"f{i}" for i in range(n)]
    if not target.exists():
        target.mkdir()
        for path in files:
            path.write_bytes(b"x" * 100)
        stored(target)
    return files


def stat_loop(directory: Path, n: int = 10_000) -> float:
    """Stats per second of n small files after dropping the kernel's caches
    (each stat a lookup), as bench_mount's small-file stats."""
    files = small_tree(directory, n)
    drop_caches()
    start = time.perf_counter()
    for path in files:
        os.stat(path)
    return n / (time.perf_counter() - start)


def xattr_loop(directory: Path, n: int = 10_000) -> float:
    """getxattrs per second of a name n small files lack, as bench_mount's."""
    files = small_tree(directory, n)
    start = time.perf_counter()
    for path in files:
        missing_xattr(path)
    return n / (time.perf_counter() - start)


def rand_read(directory: Path) -> float:
    """IOPS of bench_mount's random 4 KiB reads (fio, psync, 10 s) of a 128 MiB
    file that random 4 KiB writes changed first, read after dropping the page
    cache."""
    fio(directory, "rnd", "randwrite", "4k", "128M", 10)
    drop_caches()
    return float(fio(directory, "rnd", "randread", "4k", "128M", 10)["IOPS"])


def rand_write(directory: Path) -> float:
    """IOPS of bench_mount's random 4 KiB writes (fio, psync, 10 s) into a 128
    MiB file."""
    return float(fio(directory, "rnd", "randwrite", "4k", "128M", 10)["IOPS"])


TARBALL = Path(tempfile.gettempdir()) / f"dwfs-ab-{os.getpid()}-stdlib.tar"


def untar_stdlib(directory: Path) -> float:
    """Seconds to unpack Python's standard library (bench_mount's tarball) into
    a new directory and sync."""
    tarball = TARBALL
    if not tarball.exists():
        stdlib_tarball(tarball.parent).rename(tarball)
    target = directory / f"untar{time.monotonic_ns()}"
    target.mkdir()
    return untar(target, tarball)[0]


ALL_LOOPS: dict[str, Callable[[Path], float]] = {
    "append+fsync ms": append,
    "create loop ms": create,
    "sqlite transaction ms": sqlite,
    "cold read MB/s": cold_read,
    "seq write MB/s": seq_write,
    "untar s": untar_stdlib,
    "small file us": small_files,
    "stats/s": stat_loop,
    "getxattrs/s": xattr_loop,
    "rand read IOPS": rand_read,
    "rand write IOPS": rand_write,
}
LOOPS = {
    name: loop
    for name, loop in ALL_LOOPS.items()
    if loop.__name__ in os.environ.get("LOOPS", "append,create,sqlite").split(",")
}


def main(trees: list[str]) -> None:
    root = Path(os.environ.get("DWFS_BENCH_DISK", "/var/tmp")) / f"dwfs-ab-{os.getpid()}"
    root.mkdir()
    pw = root / "pass"
    pw.write_text("bench passphrase\n")
    pw.chmod(0o600)
    mounted: list[tuple[str, Path, Path]] = []
    cipher, plain = root / "gc-cipher", root / "gc-plain"
    try:
        for i, tree in enumerate(trees):
            side = root / f"tree{i}"
            side.mkdir()
            devices = [side / f"dev{j}" for j in range(3)]
            state, mnt = side / "state", side / "mnt"
            ctl(tree, state, "create", "--raid", "raidz1", "--passphrase-file", pw, *devices)
            mnt.mkdir()
            ctl(tree, state, "mount", "--passphrase-file", pw, devices[0], mnt)
            mounted.append((tree, mnt, state))
        cipher.mkdir()
        plain.mkdir()
        subprocess.run(["gocryptfs", "-init", "-q", "-passfile", pw, cipher], check=True)
        subprocess.run(["gocryptfs", "-q", "-nosyslog", "-passfile", pw, cipher, plain], check=True)
        sides = [("gocryptfs", plain, root), *mounted]
        runs = {name: {loop: list[float]() for loop in LOOPS} for name, _, _ in sides}
        for turn in range(int(os.environ.get("ROUNDS", "8"))):
            # each round starts one side later, so no side always follows the same
            # one (a dwfs mount reclaims what a loop deleted for seconds after it)
            for name, directory, state in sides[turn % len(sides) :] + sides[: turn % len(sides)]:
                os.environ["DWFS_STATE_DIR"] = str(state)  # where stored() finds the mount
                for loop, measure in LOOPS.items():
                    runs[name][loop].append(measure(directory))
        base = {k: statistics.median(v) for k, v in runs["gocryptfs"].items()}
        for name, _, _ in sides:
            medians = {k: statistics.median(v) for k, v in runs[name].items()}
            cells = ", ".join(f"{k} {medians[k]:.2f} ({medians[k] / base[k]:.2f}x)" for k in LOOPS)
            print(f"{name}: {cells}")
    finally:
        for tree, mnt, state in mounted:
            with contextlib.suppress(subprocess.CalledProcessError):
                ctl(tree, state, "umount", mnt)
        subprocess.run(["fusermount", "-u", "-q", plain], check=False)
        shutil.rmtree(root, ignore_errors=True)
        TARBALL.unlink(missing_ok=True)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: bench_ab.py TREE [TREE...]")
    main(sys.argv[1:])
