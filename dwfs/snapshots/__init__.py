"""Snapshots (taking, listing, deleting) and the reclaiming of space, which
must respect them: compaction of mostly dead segments and garbage collection
of dead ones."""

from dwfs.snapshots._compact import Compactor as Compactor
from dwfs.snapshots._compact import compact as compact
from dwfs.snapshots._gc import collect as collect_garbage
from dwfs.snapshots._snapshot import Deletion as Deletion
from dwfs.snapshots._snapshot import check_name as check_name
from dwfs.snapshots._snapshot import delete as delete
from dwfs.snapshots._snapshot import describe as describe
from dwfs.snapshots._snapshot import iso as iso
from dwfs.snapshots._snapshot import plan_deletion as plan_deletion
from dwfs.snapshots._snapshot import take as take

__all__ = [
    "Compactor",
    "Deletion",
    "check_name",
    "collect_garbage",
    "compact",
    "delete",
    "describe",
    "iso",
    "plan_deletion",
    "take",
]
