"""Metadata: the tree's rows in an in-memory SQLite database, journaled and
checkpointed into the pool. Knows nothing of FUSE or POSIX semantics; every
statement over the rows is here (TreeRows, ChunkRows), with the rule of which
rows a View sees written once."""

from dwfs.meta._check import Problem as Problem
from dwfs.meta._check import check as check
from dwfs.meta._check import repair as repair
from dwfs.meta._chunk_rows import NOT_LOCAL as NOT_LOCAL
from dwfs.meta._chunk_rows import ChunkRows as ChunkRows
from dwfs.meta._chunk_rows import RemoteRows as RemoteRows
from dwfs.meta._db import MetaDB as MetaDB
from dwfs.meta._db import Statement as Statement
from dwfs.meta._journal import pack_txgs as pack_txgs
from dwfs.meta._journal import tag_of as tag_of
from dwfs.meta._journal import unpack_txgs as unpack_txgs
from dwfs.meta._metadata import Metadata as Metadata
from dwfs.meta._rows import INODE_COLUMNS as INODE_COLUMNS
from dwfs.meta._rows import LIVE as LIVE
from dwfs.meta._rows import ROOT_INO as ROOT_INO
from dwfs.meta._rows import TreeRows as TreeRows
from dwfs.meta._rows import View as View
from dwfs.meta._snapshot_rows import SnapshotRow as SnapshotRow
from dwfs.meta._snapshot_rows import SnapshotRows as SnapshotRows
from dwfs.meta._tail import Tail as Tail

__all__ = [
    "INODE_COLUMNS",
    "LIVE",
    "ROOT_INO",
    "NOT_LOCAL",
    "ChunkRows",
    "RemoteRows",
    "Metadata",
    "MetaDB",
    "SnapshotRow",
    "SnapshotRows",
    "Statement",
    "Tail",
    "TreeRows",
    "View",
    "check",
    "pack_txgs",
    "repair",
    "tag_of",
    "unpack_txgs",
]
