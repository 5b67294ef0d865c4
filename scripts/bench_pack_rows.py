"""The remote tier's per-pack statements at scale: a repack runs each once per
pack it empties, on the trio thread, so one that costs in proportion to the
whole pool (a scan of every chunk) stalls the mount for as long as that takes
times the packs.

For each per-pack operation (every one of dwfs.meta._ops whose statement picks
rows by pack): an in-memory metadata database with CHUNKS live chunks and PACKS
packs of 20 of them in the remote table, and the operation run once per pack.

    python scripts/bench_pack_rows.py [CHUNKS] [PACKS]   (default 200000 100)

Run by `make bench`; figures go in docs/performance.md.
"""

from __future__ import annotations

import os
import sys
import time

from dwfs.meta import MetaDB
from dwfs.meta._ops import OPS

PER_PACK = sorted(name for name, sql in OPS.items() if "WHERE pack = ?" in sql)
IN_PACK = 20


def filled(chunks: int, packs: list[bytes]) -> MetaDB:
    db = MetaDB()
    rows = [(os.urandom(32), 1, 1, 0, 1, 1, 1) for _ in range(chunks)]
    db.conn.executemany("INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    remote = [
        (rows[i][0], packs[i // IN_PACK], i % IN_PACK, 1) for i in range(len(packs) * IN_PACK)
    ]
    db.conn.executemany("INSERT INTO remote VALUES (?, ?, ?, ?)", remote)
    return db


def main() -> None:
    chunks = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    packs = [os.urandom(16) for _ in range(count)]
    print(f"| per-pack operation, {chunks:,} chunks | ms per pack |")
    print("|---|---|")
    for name in PER_PACK:
        db = filled(chunks, packs)
        start = time.perf_counter()
        for pack in packs:
            db.execute(name, (pack,))
        elapsed = time.perf_counter() - start
        print(f"| {name} | {elapsed * 1000 / count:.3f} |", flush=True)


if __name__ == "__main__":
    main()
