"""The remote tier beside the plain client on the same server, in one run.

For moto's S3 server and rclone serving S3 (both started here on loopback), and
for rclone with a local remote: a pool of one device on /var/tmp holds a file
of SIZE random bytes; `dwfsctl sync` uploads it, and a new machine attaches the
pool and reads the file through its mount (hydration); beside them, boto3 (or
`rclone copy`) puts the same bytes as plain objects of PACK bytes and gets
them back into files on the same disk.
Then the time to first byte of a remote-only file (open + 4 KiB read).

    python scripts/bench_remote.py [REMOTE...]   (SIZE_MIB, DWFS_BENCH_DISK tune it;
        REMOTE is one of the rows' names, e.g. "rclone local")

Run by `make bench`; figures go in docs/performance.md.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.servers import S3Server, moto_s3, rclone_s3

MiB = 1 << 20
SIZE = int(os.environ.get("SIZE_MIB", "256")) * MiB
PACK = 16 * MiB
PASS = b"bench passphrase\n"


def ctl(env: dict[str, str], *args: object) -> str:
    command = [sys.executable, "-m", "dwfs.cli.main", *map(str, args)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"dwfsctl {args[0]}: {done.stderr.strip()}")
    return done.stdout


@contextlib.contextmanager
def mounted(env: dict[str, str], device: Path, mnt: Path, pw: Path) -> Iterator[Path]:
    mnt.mkdir(exist_ok=True)
    ctl(env, "mount", "--passphrase-file", pw, device, mnt)
    try:
        yield mnt
    finally:
        subprocess.run(
            [sys.executable, "-m", "dwfs.cli.main", "umount", mnt], env=env, capture_output=True
        )


def dwfs_round(root: Path, url: str, env: dict[str, str], data: bytes) -> dict[str, float]:
    pw = root / "pass"
    pw.write_bytes(PASS)
    pw.chmod(0o600)
    env_a = {**env, "DWFS_STATE_DIR": str(root / "state-a")}
    env_b = {**env, "DWFS_STATE_DIR": str(root / "state-b")}
    ctl(env_a, "create", "--passphrase-file", pw, root / "a0")
    with mounted(env_a, root / "a0", root / "mnt-a", pw) as mnt:
        (mnt / "file").write_bytes(data)
        (mnt / "small").write_bytes(os.urandom(1 * MiB))
        subprocess.run(["sync"], check=True)
        start = time.perf_counter()  # uploads begin in the background at remote add
        ctl(env_a, "remote", "add", mnt, url)
        ctl(env_a, "sync", mnt)
        up = time.perf_counter() - start
    ctl(env_b, "attach", "--passphrase-file", pw, url, root / "b0")
    with mounted(env_b, root / "b0", root / "mnt-b", pw) as mnt:
        start = time.perf_counter()
        with open(mnt / "small", "rb") as f:
            f.read(4096)
        first = time.perf_counter() - start
        start = time.perf_counter()
        with open(mnt / "file", "rb") as f:
            while f.read(MiB):
                pass
        down = time.perf_counter() - start
    return {"up": SIZE / up / 1e6, "down": SIZE / down / 1e6, "first_ms": first * 1e3}


def boto_round(server: S3Server, data: bytes, back: Path) -> dict[str, float]:
    """boto3 puts the bytes as PACK-sized objects, then gets them into files in
    back (as `rclone copy` and a hydration both leave them on the local disk)."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=server.key,
        aws_secret_access_key=server.secret,
        region_name="us-east-1",
    )
    bucket = server.new_bucket()
    parts = [data[i : i + PACK] for i in range(0, len(data), PACK)]
    start = time.perf_counter()
    for i, part in enumerate(parts):
        client.put_object(Bucket=bucket, Key=f"plain/{i}", Body=part)
    up = time.perf_counter() - start
    start = time.perf_counter()
    back.mkdir()
    for i in range(len(parts)):
        (back / str(i)).write_bytes(
            client.get_object(Bucket=bucket, Key=f"plain/{i}")["Body"].read()
        )
    down = time.perf_counter() - start
    return {"up": SIZE / up / 1e6, "down": SIZE / down / 1e6}


def rclone_round(root: Path, env: dict[str, str], data: bytes) -> dict[str, float]:
    rclone = str(Path(sys.executable).parent / "rclone")
    source, back, remote = root / "plain", root / "plain-back", f"bench:{root}/rc-plain"
    source.mkdir()
    for i in range(0, len(data), PACK):
        (source / str(i // PACK)).write_bytes(data[i : i + PACK])
    start = time.perf_counter()
    subprocess.run([rclone, "copy", source, remote], env=env, check=True)
    up = time.perf_counter() - start
    start = time.perf_counter()
    subprocess.run([rclone, "copy", remote, back], env=env, check=True)
    down = time.perf_counter() - start
    return {"up": SIZE / up / 1e6, "down": SIZE / down / 1e6}


def row(name: str, dwfs: dict[str, float], plain: dict[str, float]) -> str:
    return (
        f"| {name} | {dwfs['up']:.0f} | {plain['up']:.0f} | {dwfs['up'] / plain['up']:.2f}x "
        f"| {dwfs['down']:.0f} | {plain['down']:.0f} | {dwfs['down'] / plain['down']:.2f}x "
        f"| {dwfs['first_ms']:.0f} |"
    )


def main() -> None:
    only = sys.argv[1:]
    base = Path(os.environ.get("DWFS_BENCH_DISK", "/var/tmp")) / f"dwfs-remote-{os.getpid()}"
    base.mkdir()
    data = os.urandom(SIZE)
    print(f"{SIZE // MiB} MiB of random bytes; MB/s; ratio dwfs / plain client")
    print(
        "| remote | dwfs sync | plain put | ratio | dwfs hydrate | plain get | ratio | "
        "first byte, ms |"
    )
    print("|---|---|---|---|---|---|---|---|")
    try:
        for name, serve in (("moto S3", moto_s3), ("rclone serve s3", rclone_s3)):
            if only and name not in only:
                continue
            work = base / name.replace(" ", "-")
            work.mkdir()
            with serve(work) as server:
                env = {**os.environ, **server.env()}
                plain = boto_round(server, data, work / "plain-back")
                dwfs = dwfs_round(work, f"s3://{server.new_bucket()}", env, data)
                print(row(name, dwfs, plain))
        if only and "rclone local" not in only:
            return
        work = base / "rclone-local"
        work.mkdir()
        env = {**os.environ, "RCLONE_CONFIG": os.devnull, "RCLONE_CONFIG_BENCH_TYPE": "local"}
        plain = rclone_round(work, env, data)
        dwfs = dwfs_round(work, f"rclone:bench:{work}/remote", env, data)
        print(row("rclone local", dwfs, plain))
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
