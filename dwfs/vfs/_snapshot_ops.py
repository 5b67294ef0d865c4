"""The snapshot commands of a mounted volume: take, list, delete, diff, restore,
roll back, hold and release, and the policy the committer applies.

Each stores what it needs stored first (a snapshot holds every write made
before it was asked for), commits what it changes, and tells the kernel to
forget the names it made or removed behind its back.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from dwfs import snapshots
from dwfs.errors import Exists, InvalidArgument, NotFound
from dwfs.meta import View
from dwfs.snapshots import Deletion
from dwfs.vfs import _snapshot_tree as snapdir
from dwfs.vfs._attrs import ROOT_INO, now_ns

if TYPE_CHECKING:
    from dwfs.vfs._volume import Volume

log = logging.getLogger(__name__)


def _parts(path: bytes) -> list[bytes]:
    """The names in a path relative to the root ('.' and empty ones dropped).

    Raises:
        InvalidArgument: it climbs out with '..'.
    """
    parts = [p for p in path.split(b"/") if p not in (b"", b".")]
    if b".." in parts:
        raise InvalidArgument("a path inside the filesystem cannot hold '..'")
    return parts


class SnapshotOps:
    def __init__(self, volume: Volume) -> None:
        self.volume = volume
        self.meta = volume.meta
        self.lock = trio.Lock()
        """Held by commands that store every write first, so two never interleave."""

    async def create(self, name: str | None, auto: bool = False) -> dict[str, object]:
        """Store every write made so far, then snapshot (a row and a commit); the
        snapshot as `snapshot list` shows it, without the space figures."""
        async with self.lock:
            await self.volume.sync_all()
            prefix = "auto-" if auto else ""
            snap = await snapshots.take(self.meta, name, now_ns(), auto, prefix)
        self.volume.forget_name(snapdir.DIR_INO, snap.name.encode("utf-8", "surrogateescape"))
        return snapshots.describe(self.meta, snap, now_ns(), space=False)

    def listing(self) -> list[dict[str, object]]:
        now = now_ns()
        return [snapshots.describe(self.meta, s, now) for s in self.meta.snapshot_rows.all()]

    def _in_snapshot(self, txg: int, path: bytes) -> int:
        """The inode at `path` (relative to the root) in the snapshot at txg."""
        ino = ROOT_INO
        view = View(txg)
        for part in _parts(path):
            child = self.volume.tree.rows.dirent(ino, part, view)
            if child is None:
                raise NotFound(f"the snapshot holds no {path.decode(errors='replace')}")
            ino = child
        return ino

    def _live_parent(self, path: bytes) -> tuple[int, bytes]:
        """The live directory that would hold `path`, and the last name in it."""
        parts = _parts(path)
        if not parts:
            raise InvalidArgument("the root cannot be replaced: name a DEST below it")
        if parts[0] == snapdir.NAME:
            raise snapdir.refuse()
        parent = ROOT_INO
        for part in parts[:-1]:
            try:
                parent = self.volume.tree.lookup(parent, part)
            except NotFound:
                where = b"/".join(parts[:-1]).decode(errors="replace")
                raise NotFound(f"{where} does not exist: make it first") from None
        return parent, parts[-1]

    async def restore(self, name: str, path: bytes, dest: bytes | None) -> dict[str, Any]:
        """Put a file or tree back from a snapshot, at its path or at `dest`, sharing
        its chunks (no data is copied, so a big file takes as long as a small one)."""
        snap = snapshots.find(self.meta, name)
        ino = self._in_snapshot(snap.txg, path)
        target = dest if dest is not None else path
        parent, leaf = self._live_parent(target)
        self.volume.check_writable(parent, leaf)
        if self.volume.tree.find(parent, leaf) is not None:
            raise Exists(
                f"{target.decode(errors='replace')} exists: give a DEST that does not, or move "
                "it away first"
            )
        attr = self.volume.tree.restore(snap.txg, ino, parent, leaf)
        await self.meta.commit()
        self.volume.forget_name(parent, leaf)
        self.volume.forget_inode(parent)
        return {"path": target.decode(errors="surrogateescape"), "ino": attr.ino}

    async def rollback(self, name: str) -> dict[str, Any]:
        """Make the live filesystem the snapshot's, after a snapshot of it as it is
        now (so nothing is lost; later snapshots stay). Files open meanwhile keep
        their content, unlinked, as after a rename over them. All or nothing."""
        async with self.lock:
            snap = snapshots.find(self.meta, name)
            await self.volume.sync_all()
            before = {n for _, n, _ in self.volume.tree.entries(ROOT_INO, 0, 1 << 30)}
            saved = await snapshots.take(self.meta, None, now_ns(), prefix="pre-rollback-")
            while self.volume.db.has_pending():  # the rollback must be alone in its txg
                await self.meta.commit()
            self.volume.tree.roll_back(snap.txg, keep_open=sorted(self.volume.open_inodes()))
            await self.meta.commit()
            after = {n for _, n, _ in self.volume.tree.entries(ROOT_INO, 0, 1 << 30)}
        for entry in before | after:
            self.volume.forget_name(ROOT_INO, entry)
        self.volume.forget_inode(ROOT_INO)
        self.volume.forget_name(snapdir.DIR_INO, saved.name.encode("utf-8", "surrogateescape"))
        return {"rolled_back_to": snap.name, "saved_as": saved.name}

    async def diff(self, name: str, other: str | None) -> list[dict[str, Any]]:
        """What changed from snapshot `name` to snapshot `other` (None: the live
        filesystem, with every write made so far stored first)."""
        first = snapshots.find(self.meta, name)
        second = None if other is None else snapshots.find(self.meta, other).txg
        if other is None:
            await self.volume.sync_all()
        changes = snapshots.diff(self.volume.tree.rows, first.txg, second)
        return [{"path": c.path, "change": c.change, "from": c.old_path} for c in changes]

    async def policy(
        self, every: str | None = None, keep: dict[str, int | None] | None = None
    ) -> dict[str, object]:
        """The snapshot policy, changed first if asked (and applied at once)."""
        if every is not None or any(v is not None for v in (keep or {}).values()):
            await snapshots.set_policy(self.meta, every, keep or {})
            await self.apply_policy()
        return snapshots.policy(self.meta).describe()

    async def apply_policy(self) -> None:
        """Take the automatic snapshot the policy wants now, and prune the
        automatic ones its rules no longer keep (the committer calls this)."""
        rules = snapshots.policy(self.meta)
        if snapshots.due(self.meta, rules, now_ns()):
            await self.create(None, auto=True)
        doomed = snapshots.prunable(self.meta, rules, now_ns())
        if doomed:
            done = await self.delete(doomed)
            log.info("snapshot policy pruned %d automatic snapshots", len(done.names))

    async def hold(self, name: str, until: str | None) -> dict[str, object]:
        """Hold a snapshot (until released, or until a date that only grows)."""
        now = now_ns()
        when = None if until is None else snapshots.parse_date(until, now)
        snap = snapshots.hold(self.meta, name, when, now)
        await self.meta.commit()
        return snapshots.describe(self.meta, snap, now, space=False)

    async def release(self, name: str) -> dict[str, object]:
        now = now_ns()
        snap = snapshots.release(self.meta, name, now)
        await self.meta.commit()
        return snapshots.describe(self.meta, snap, now, space=False)

    async def delete(self, names: list[str], dry_run: bool = False) -> Deletion:
        """Delete snapshots (all or none); with dry_run, only say what it would free."""
        async with self.lock:
            if dry_run:
                return snapshots.plan_deletion(self.meta, names, now_ns())
            done = await snapshots.delete(self.meta, names, now_ns())
        for name in done.names:
            self.volume.forget_name(snapdir.DIR_INO, name.encode("utf-8", "surrogateescape"))
        return done
