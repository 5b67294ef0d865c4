"""Snapshots (taking, listing, deleting) and the reclaiming of space, which
must respect them: compaction of mostly dead segments and garbage collection
of dead ones."""

from dwfs.snapshots._compact import Compactor as Compactor
from dwfs.snapshots._compact import compact as compact
from dwfs.snapshots._diff import Change as Change
from dwfs.snapshots._diff import diff as diff
from dwfs.snapshots._fsck import fsck as fsck
from dwfs.snapshots._gc import collect as collect_garbage
from dwfs.snapshots._replica import RemoteJournal as RemoteJournal
from dwfs.snapshots._replica import attach as attach
from dwfs.snapshots._replica import sync as sync_remote
from dwfs.snapshots._replica import upload_journal as upload_journal
from dwfs.snapshots._replica import upload_pending as upload_pending
from dwfs.snapshots._retention import RULES as RULES
from dwfs.snapshots._retention import Policy as Policy
from dwfs.snapshots._snapshot import Deletion as Deletion
from dwfs.snapshots._snapshot import check_name as check_name
from dwfs.snapshots._snapshot import delete as delete
from dwfs.snapshots._snapshot import describe as describe
from dwfs.snapshots._snapshot import due as due
from dwfs.snapshots._snapshot import find as find
from dwfs.snapshots._snapshot import hold as hold
from dwfs.snapshots._snapshot import iso as iso
from dwfs.snapshots._snapshot import parse_date as parse_date
from dwfs.snapshots._snapshot import plan_deletion as plan_deletion
from dwfs.snapshots._snapshot import policy as policy
from dwfs.snapshots._snapshot import prunable as prunable
from dwfs.snapshots._snapshot import release as release
from dwfs.snapshots._snapshot import set_policy as set_policy
from dwfs.snapshots._snapshot import take as take

__all__ = [
    "attach",
    "sync_remote",
    "upload_journal",
    "upload_pending",
    "RemoteJournal",
    "Change",
    "Compactor",
    "Deletion",
    "Policy",
    "RULES",
    "check_name",
    "collect_garbage",
    "compact",
    "delete",
    "describe",
    "diff",
    "due",
    "find",
    "fsck",
    "hold",
    "iso",
    "parse_date",
    "plan_deletion",
    "policy",
    "prunable",
    "release",
    "set_policy",
    "take",
]
