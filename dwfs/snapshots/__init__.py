"""Snapshots (not built yet), and the reclaiming of space, which must respect
them: compaction of mostly dead segments and garbage collection of dead ones."""

from dwfs.snapshots._compact import Compactor as Compactor
from dwfs.snapshots._compact import compact as compact
from dwfs.snapshots._gc import collect as collect_garbage

__all__ = ["Compactor", "collect_garbage", "compact"]
