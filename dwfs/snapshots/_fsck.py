"""dwfsctl fsck: the metadata's invariants, and every live chunk read back.

A chunk is live while a row (the live tree's or a snapshot's) references it;
each one with a local copy is looked up in the index and read, which
authenticates it and, through the store, repairs what redundancy can. One
only the remote tier holds must have a place there (it is not downloaded:
`dwfsctl hydrate` reads files back). Problems are reported; with repair,
those meta can fix without guessing are fixed and committed, and the rest are
left for a person to judge.
"""

from __future__ import annotations

from typing import Any

from dwfs.errors import DwfsError
from dwfs.meta import Metadata, Problem, check, repair
from dwfs.types import PoolServices


async def fsck(
    meta: Metadata, pool: PoolServices, fix: bool = False, open_inodes: frozenset[int] = frozenset()
) -> dict[str, Any]:
    """What is wrong (and, with fix, what was fixed); "ok" when nothing is left."""
    problems = check(meta.db, open_inodes)
    fixed = 0
    if fix and problems:
        fixed = repair(meta.db, meta.rows, open_inodes)
        await meta.commit()
        problems = check(meta.db, open_inodes)
    live = meta.chunk_rows.live()
    for chunk, _ in live:
        try:
            await pool.store.get(chunk)
        except DwfsError as exc:
            problems.append(Problem("unreadable chunk", f"chunk {chunk.hex()[:16]}: {exc}"))
    return {
        "ok": not problems,
        "problems": [p.to_json() for p in problems],
        "repaired": fixed,
        "chunks_read": len(live),
        "inodes": meta.rows.inode_count(),
        "snapshots": len(meta.snapshot_rows.all()),
    }
