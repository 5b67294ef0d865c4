"""`make bench` (scrub part): how much slower the mount gets while the pool is
scrubbed through it, at several shares of the time, beside the same measures
with no scrub, in one run on tmpfs. A scrub that ends is started again, so one
runs through every measure.

    python scripts/bench_scrub.py [--quick]

Prints a markdown table of each measure and its ratio to the first no-scrub
row; a second no-scrub row at the end shows the run's noise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from bench_mount import BASE, DWFSCTL, drop_caches, dwfs, fio, sh, small_files


@contextlib.contextmanager
def scrubbing(mnt: Path, share: str | None) -> Iterator[None]:
    """A scrub at share percent running throughout (none if share is None)."""
    if share is None:
        yield
        return
    stop = threading.Event()

    def keep_going() -> None:
        while not stop.is_set():
            status = json.loads(sh(*DWFSCTL, "status", "--json", mnt))
            if (status.get("scan") or {}).get("state") != "running":
                sh(*DWFSCTL, "scrub", "--no-wait", "--share", share, mnt)
            time.sleep(0.2)

    worker = threading.Thread(target=keep_going)
    worker.start()
    try:
        yield
    finally:
        stop.set()
        worker.join()
        with contextlib.suppress(RuntimeError):
            sh(*DWFSCTL, "scrub", "--stop", mnt)


def measure(mnt: Path, here: Path, quick: bool) -> dict[str, float]:
    out: dict[str, float] = {}
    drop_caches()
    out["seq read MB/s"] = fio(mnt, "data", "read", "1M", "256M" if quick else "1G")["MB/s"]
    out["rand 4k read IOPS"] = fio(mnt, "rnd", "randread", "4k", "64M", 5)["IOPS"]
    out["rand 4k write IOPS"] = fio(mnt, "rnd", "randwrite", "4k", "64M", 5)["IOPS"]
    for label, rate in small_files(here, 1000).items():
        out[f"small files {label}/s"] = rate
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    root = Path(tempfile.mkdtemp(dir=BASE))
    rows: dict[str, dict[str, float]] = {}
    with dwfs(root, "native") as mnt:
        fio(mnt, "data", "write", "1M", "256M" if quick else "1G")
        fio(mnt, "rnd", "write", "1M", "64M")
        os.sync()
        measure(mnt, mnt, quick)  # warm up: the first pass over fresh files is slower
        for n, share in enumerate((None, "25", "50", "100", None)):
            here = mnt / f"s{n}"
            here.mkdir()
            label = "no scrub" if share is None else f"scrub at {share}%"
            label += " (again)" if label in rows else ""
            with scrubbing(mnt, share):
                rows[label] = measure(mnt, here, quick)
            print(label, {k: round(v) for k, v in rows[label].items()}, flush=True)
    base = rows["no scrub"]
    print("\n| measure | " + " | ".join(rows) + " |")
    print("|---|" + "---|" * len(rows))
    for key in base:
        cells = [f"{rows[r][key]:,.0f} ({rows[r][key] / base[key]:.2f})" for r in rows]
        print(f"| {key} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
