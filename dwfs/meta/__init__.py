"""Metadata: the tree's rows in an in-memory SQLite database, journaled and
checkpointed into the pool. Knows nothing of FUSE or POSIX semantics."""

from dwfs.meta._db import MetaDB as MetaDB
from dwfs.meta._metadata import Metadata as Metadata

__all__ = ["MetaDB", "Metadata"]
