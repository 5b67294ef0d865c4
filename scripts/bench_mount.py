"""`make bench` (second part): the filesystem through its mount, beside the raw
directory, the FUSE floor (native/bench/floorfs.c: an in-memory tree whose
files hold no bytes, the least a FUSE filesystem can do per request here) and
gocryptfs, all on tmpfs, in one run; then the fsync-heavy loops (append+fsync,
create+write+fsync+directory fsync, SQLite transactions) on a disk-backed
directory (DISK_BASE), where an fsync costs what it costs users. dwfs is
measured through both front ends (-o frontend=pyfuse3 and native). Beside the
rates: the serving process's CPU time (user + system) per MB moved, and an
untar of this Python's standard library.

    python scripts/bench_mount.py [--quick] [--disk] [--warm GIB]

--disk runs the first table on DISK_BASE too, instead of tmpfs. --warm
touches and frees GIB of memory before each measure of the first table: this
project's machines report free pages to their host, and the first touch of a
page the host took back costs 3-6 us instead of 1 us, landing on whichever
process allocates first (docs/performance.md). Prints
markdown tables. Needs fio, gocryptfs and libfuse3's headers (make bench
installs them) and root for dropping the page cache between writing and
reading.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import mmap
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

DWFSCTL = [sys.executable, "-m", "dwfs.cli.main"]
BASE = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
DISK_BASE = Path(os.environ.get("DWFS_BENCH_DISK", "/var/tmp"))
MAP_POPULATE = 0x8000


def sh(*args: str | Path, stdin: str | None = None) -> str:
    result = subprocess.run(list(map(str, args)), capture_output=True, text=True, input=stdin)
    if result.returncode:
        raise RuntimeError(f"{args[0]} failed: {result.stderr.strip()}")
    return result.stdout


def drop_caches() -> None:
    os.sync()
    with contextlib.suppress(OSError), open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


@contextlib.contextmanager
def raw(root: Path) -> Iterator[Path]:
    target = root / "raw"
    target.mkdir()
    yield target


@contextlib.contextmanager
def floor(root: Path) -> Iterator[Path]:
    program, mnt = root / "floorfs", root / "floor"
    source = Path(__file__).resolve().parent.parent / "native" / "bench" / "floorfs.c"
    flags = sh("pkg-config", "--cflags", "--libs", "fuse3").split()
    sh("gcc", "-O2", source, "-o", program, *flags, "-lpthread")
    mnt.mkdir()
    server = subprocess.Popen([str(program), str(mnt)])
    try:
        deadline = time.monotonic() + 10
        while not os.path.ismount(mnt):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("floorfs did not mount")
            time.sleep(0.02)
        yield mnt
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True)
        server.wait(timeout=10)


@contextlib.contextmanager
def gocryptfs(root: Path) -> Iterator[Path]:
    cipher, plain, pw = root / "gc-cipher", root / "gc-plain", root / "gc.pass"
    cipher.mkdir()
    plain.mkdir()
    pw.write_text("bench passphrase\n")
    sh("gocryptfs", "-init", "-q", "-passfile", pw, cipher)
    sh("gocryptfs", "-q", "-passfile", pw, cipher, plain)
    try:
        yield plain
    finally:
        subprocess.run(["fusermount3", "-u", str(plain)], capture_output=True)


@contextlib.contextmanager
def dwfs(root: Path, frontend: str) -> Iterator[Path]:
    root = root / f"dwfs-{frontend}"
    root.mkdir()
    devices = [root / f"dwfs-dev{i}" for i in range(3)]
    mnt, pw = root / "dwfs-mnt", root / "dwfs.pass"
    mnt.mkdir()
    pw.write_text("bench passphrase\n")
    pw.chmod(0o600)
    env_state = root / "dwfs-state"
    os.environ["DWFS_STATE_DIR"] = str(env_state)
    sh(*DWFSCTL, "create", "--raid", "raidz1", "--passphrase-file", pw, *devices)
    sh(*DWFSCTL, "mount", "-o", f"frontend={frontend}", "--passphrase-file", pw, devices[0], mnt)
    try:
        yield mnt
    finally:
        subprocess.run([*DWFSCTL, "umount", str(mnt)], capture_output=True)


def fio(directory: Path, name: str, rw: str, bs: str, size: str, runtime: int = 0) -> dict:  # type: ignore[type-arg]
    args = [
        "fio",
        f"--name={name}",
        f"--directory={directory}",
        f"--rw={rw}",
        f"--bs={bs}",
        f"--size={size}",
        "--ioengine=psync",
        "--output-format=json",
        "--end_fsync=1",
    ]
    if runtime:
        args += [f"--runtime={runtime}", "--time_based"]
    job = json.loads(sh(*args))["jobs"][0]
    side = job["read"] if "read" in rw else job["write"]
    return {"MB/s": side["bw_bytes"] / 1e6, "IOPS": side["iops"]}


def missing_xattr(path: Path) -> None:
    """getxattr of a name the file lacks, as ls, cp -a and rsync -X ask."""
    try:
        os.getxattr(path, "user.bench")
    except OSError as exc:
        if exc.errno != errno.ENODATA:
            raise


def small_files(directory: Path, count: int) -> dict[str, float]:
    target = directory / "small"
    target.mkdir()
    rates = {}
    steps: list[tuple[str, Callable[[Path], object]]] = [
        ("create", lambda p: p.write_bytes(b"x" * 100)),
        ("stat", lambda p: p.stat()),
        ("getxattr", missing_xattr),
        ("delete", lambda p: p.unlink()),
    ]
    for label, step in steps:
        start = time.perf_counter()
        for i in range(count):
            step(target / f"f{i}")
        if label == "create":
            os.sync()
            stored(directory)
            drop_caches()
        rates[label] = count / (time.perf_counter() - start)
    return rates


def server_of(mountpoint: Path) -> int | None:
    """The pid of the process serving a FUSE mount (its argv names the
    mountpoint), or None for a plain directory."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if os.fsencode(mountpoint) in argv:
                return int(entry.name)
    return None


def proc_stat(pid: int, thread: int | None = None) -> list[str]:
    """The fields of /proc/PID/stat (or of one thread's stat) after the command
    name (state is [0])."""
    path = Path(f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat")
    return path.read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int | None, thread: int | None = None) -> float:
    """User + system time of a process and all its threads so far (or of one
    of its threads)."""
    if pid is None:
        return 0.0
    fields = proc_stat(pid, thread)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stored(directory: Path) -> None:
    """Return once a dwfs mount that holds directory has stored every write as
    chunks (its write-behind is done), as os.sync() waits for other
    filesystems to write theirs: timings of writes end here, not at close()."""
    from dwfs.cli import _mounts
    from dwfs.errors import NotFound

    try:
        info, _ = _mounts.containing(directory)
    except NotFound:
        return
    while _mounts.request(info, {"cmd": "stats"}).get("unstored", {}).get("bytes"):
        time.sleep(0.002)


def untar(directory: Path, tarball: Path) -> tuple[float, float]:
    """Seconds to unpack the tarball into the directory, sync and have it
    stored; and of them, those after tar exited (the sync and the store)."""
    start = time.perf_counter()
    sh("tar", "-xf", tarball, "-C", directory)
    exited = time.perf_counter()
    os.sync()
    stored(directory)
    end = time.perf_counter()
    return end - start, end - exited


def stdlib_tarball(root: Path) -> Path:
    """This Python's standard library (no caches, no site-packages), as a tar."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    tarball = root / "stdlib.tar"
    skip = {"__pycache__", "site-packages", "dist-packages"}
    with tarfile.open(tarball, "w") as tar:
        tar.add(stdlib, arcname="stdlib", filter=lambda t: None if Path(t.name).name in skip else t)
    return tarball


def warm(gib: int) -> None:
    """Touch and free gib GiB, so the pages the next measure takes are backed."""
    if gib:
        mmap.mmap(-1, gib << 30, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | MAP_POPULATE).close()


def measure(directory: Path, quick: bool, tarball: Path, gib: int) -> dict[str, float]:
    size = "256M" if quick else "1G"
    megabytes = (256 if quick else 1024) * 1.048576
    server = server_of(directory)
    out: dict[str, float] = {}
    warm(gib)
    before = cpu_seconds(server)
    out["seq write MB/s"] = fio(directory, "seq", "write", "1M", size)["MB/s"]
    out["seq write, server CPU ms per MB"] = (cpu_seconds(server) - before) * 1000 / megabytes
    drop_caches()
    warm(gib)
    before = cpu_seconds(server)
    out["seq read MB/s"] = fio(directory, "seq", "read", "1M", size)["MB/s"]
    out["seq read, server CPU ms per MB"] = (cpu_seconds(server) - before) * 1000 / megabytes
    warm(gib)
    out["rand 4k write IOPS"] = fio(directory, "rnd", "randwrite", "4k", "128M", 10)["IOPS"]
    drop_caches()
    warm(gib)
    out["rand 4k read IOPS"] = fio(directory, "rnd", "randread", "4k", "128M", 10)["IOPS"]
    warm(gib)
    for label, rate in small_files(directory, 2000 if quick else 10_000).items():
        out[f"small files {label}/s"] = rate
    warm(gib)
    total, after_tar = untar(directory, tarball)
    out["untar of the Python stdlib, s"] = total
    out["untar: of it, sync and store after tar exits, s"] = after_tar
    return out


def fsync_loops(directory: Path, quick: bool) -> dict[str, float]:
    """Milliseconds per operation of three fsync-heavy loops, and seconds of a
    SQLite workload (transactions of 1,000 inserts each, default settings)."""
    out: dict[str, float] = {}
    count = 100 if quick else 500
    block = os.urandom(4096)
    fd = os.open(directory / "append", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    start = time.perf_counter()
    for _ in range(count):
        os.write(fd, block)
        os.fsync(fd)
    out["append 4 KiB + fsync, ms"] = (time.perf_counter() - start) / count * 1000
    os.close(fd)
    files = directory / "files"
    files.mkdir()
    dirfd = os.open(files, os.O_RDONLY | os.O_DIRECTORY)
    start = time.perf_counter()
    for i in range(count):
        fd = os.open(files / f"f{i}", os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, block)
        os.fsync(fd)
        os.close(fd)
        os.fsync(dirfd)
    out["create+write+fsync+dir fsync, ms"] = (time.perf_counter() - start) / count * 1000
    os.close(dirfd)
    import sqlite3

    db = sqlite3.connect(directory / "bench.db")
    db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
    transactions = 40 if quick else 200
    start = time.perf_counter()
    for t in range(transactions):
        with db:
            db.executemany(
                "INSERT INTO t VALUES (?, ?)", [(t * 1000 + i, "v" * 40) for i in range(1000)]
            )
    out[f"SQLite {transactions} x 1,000 inserts, s"] = time.perf_counter() - start
    db.close()
    return out


Target = Callable[[Path], contextlib.AbstractContextManager[Path]]


def targets(raw_name: str) -> list[tuple[str, Target]]:
    """What is measured, in order: the raw directory, the FUSE floor,
    gocryptfs, and dwfs (raidz1 over three devices) through each front end."""
    return [
        (raw_name, raw),
        ("FUSE floor", floor),
        ("gocryptfs", gocryptfs),
        ("dwfs pyfuse3", lambda r: dwfs(r, "pyfuse3")),
        ("dwfs native", lambda r: dwfs(r, "native")),
    ]


NO_RATIO = {"untar: of it, sync and store after tar exits, s"}
"""Rows that have no ratio: gocryptfs has stored everything when tar exits."""


def table(title: str, results: dict[str, dict[str, float]], fmt: str) -> None:
    """A markdown table of every figure, then each dwfs column over gocryptfs's."""
    names = list(results)
    dwfs_rows = [n for n in names if n.startswith("dwfs")]
    ratios = [f"{n} / gocryptfs" for n in dwfs_rows]
    print(f"\n| {title} | " + " | ".join(names + ratios) + " |")
    print("|---|" + "---|" * (len(names) + len(ratios)))
    for metric in results[names[0]]:
        row = [_figure(results[n][metric], fmt) for n in names]
        row += [
            "-" if metric in NO_RATIO else _ratio(results[n][metric], results["gocryptfs"][metric])
            for n in dwfs_rows
        ]
        print(f"| {metric} | " + " | ".join(row) + " |")


def _figure(value: float, fmt: str) -> str:
    return fmt.format(value) if value >= 100 or fmt.endswith(".2f}") else f"{value:.2f}"


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}" if base else "-"


def fsync_table(quick: bool) -> None:
    root = DISK_BASE / f"dwfs-bench-fsync-{os.getpid()}"
    root.mkdir()
    results: dict[str, dict[str, float]] = {}
    try:
        for name, target in targets("raw disk"):
            if target is floor:  # it keeps no bytes: SQLite would read back zeros
                continue
            with target(root) as directory:
                results[name] = fsync_loops(directory, quick)
                print(f"{name} fsync loops: done", file=sys.stderr)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    table(f"fsync-heavy, on {DISK_BASE} (lower is better)", results, "{:,.2f}")


def used_growth(directory: Path, name: str, data: bytes) -> int:
    """Bytes `df` counts as used after writing and fsyncing data to a new file."""

    def used() -> int:
        st = os.statvfs(directory)
        return (st.f_blocks - st.f_bfree) * st.f_frsize

    before = used()
    fd = os.open(directory / name, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return used() - before


def dedup_oracle(directory: Path) -> tuple[int, int]:
    """What a user who can write into the filesystem sees of a duplicate: df's
    growth for a 4 MiB random file written once, then again under another name."""
    data = os.urandom(4 << 20)
    return used_growth(directory, "oracle-1", data), used_growth(directory, "oracle-2", data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="256 MiB and 2,000 files")
    parser.add_argument("--disk", action="store_true", help=f"the first table on {DISK_BASE} too")
    parser.add_argument("--warm", type=int, default=0, metavar="GIB", help="memory to touch first")
    args = parser.parse_args()
    base = DISK_BASE if args.disk else BASE
    root = base / f"dwfs-bench-mount-{os.getpid()}"
    root.mkdir()
    results: dict[str, dict[str, float]] = {}
    oracle: dict[str, tuple[int, int]] = {}
    try:
        tarball = stdlib_tarball(root)
        for name, target in targets("raw disk" if args.disk else "raw tmpfs"):
            with target(root) as directory:
                results[name] = measure(directory, args.quick, tarball, args.warm)
                oracle[name] = dedup_oracle(directory)
                print(f"{name}: done", file=sys.stderr)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    table(f"measure, on {base}", results, "{:,.0f}")
    print("\n| df growth after write+fsync of 4 MiB random (KiB) | first copy | second copy |")
    print("|---|---|---|")
    for name, (first, second) in oracle.items():
        print(f"| {name} | {first >> 10:,} | {second >> 10:,} |")
    fsync_table(args.quick)


if __name__ == "__main__":
    main()
