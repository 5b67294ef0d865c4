"""Snapshots (not built yet) and garbage collection, which must respect them."""

from dwfs.snapshots._gc import collect as collect_garbage

__all__ = ["collect_garbage"]
