"""What changed between two snapshots, or a snapshot and the live tree.

Only inodes with a row born or ended between the two txgs are looked at, so the
work follows what changed (plus one pass over the row tables to find them),
not the size of the tree. Each is then compared as both views show it: present
in the second only (added), in the first only (removed), under another path
(renamed), with other contents or times of change (modified), or with only
other attributes or xattrs (metadata). Directories whose entries changed are
modified, as ZFS's diff reports them. A file with several links is named by
one of them.
"""

from __future__ import annotations

import dataclasses

from dwfs.meta import LIVE, ROOT_INO, TreeRows, View

MAX_DEPTH = 4096
"""Directories a path may climb through before the walk gives up (a loop)."""
END_OF_ANY_FILE = 1 << 62


@dataclasses.dataclass(frozen=True)
class Change:
    path: str
    change: str
    """added, removed, modified, renamed or metadata"""
    old_path: str | None = None
    """Where a renamed file was."""


def path_of(rows: TreeRows, ino: int, view: View) -> str | None:
    """A path naming `ino` in the view, or None if none does."""
    names: list[bytes] = []
    while ino != ROOT_INO:
        named = rows.name_of(ino, view)
        if named is None or len(names) >= MAX_DEPTH:
            return None
        ino, name = named
        names.append(name)
    return "/" + "/".join(n.decode("utf-8", "surrogateescape") for n in reversed(names))


def _contents(rows: TreeRows, ino: int, view: View) -> tuple[object, ...]:
    return rows.inline(ino, view), rows.extents(ino, 0, END_OF_ANY_FILE, view)


def _attributes(rows: TreeRows, ino: int, view: View) -> tuple[object, ...]:
    row = rows.inode(ino, view)
    assert row is not None
    xattrs = [(n, rows.xattr(ino, n, view)) for n in rows.xattr_names(ino, view)]
    return (*row[1:5], row[9], row[10], xattrs)


def diff(rows: TreeRows, first: int, second: int | None) -> list[Change]:
    """The changes from the snapshot at txg `first` to the one at `second` (None:
    the live tree), sorted by path."""
    old, new = View(first), (LIVE if second is None else View(second))
    low, high = (first, second) if second is None or first <= second else (second, first)
    changes = []
    for ino in rows.changed(low, high):
        was = rows.inode(ino, old) is not None and path_of(rows, ino, old)
        now = rows.inode(ino, new) is not None and path_of(rows, ino, new)
        if not was and not now:
            continue
        if not was:
            changes.append(Change(str(now), "added"))
        elif not now:
            changes.append(Change(str(was), "removed"))
        elif was != now:
            changes.append(Change(now, "renamed", was))
        elif _contents(rows, ino, old) != _contents(rows, ino, new) or _times(
            rows, ino, old
        ) != _times(rows, ino, new):
            changes.append(Change(now, "modified"))
        elif _attributes(rows, ino, old) != _attributes(rows, ino, new):
            changes.append(Change(now, "metadata"))
    return sorted(changes, key=lambda c: (c.path, c.change))


def _times(rows: TreeRows, ino: int, view: View) -> tuple[object, ...]:
    """Size and modification time: what changes when contents or entries do."""
    row = rows.inode(ino, view)
    assert row is not None
    return row[5], row[7]
