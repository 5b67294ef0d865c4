"""The journal's tail: the txgs closed since the remote tier last received them.

A pool with a remote keeps each closed txg's operations here, in order, until
they go up as a segment of the remote's journal (dwfs.snapshots._replica) or a
sync's checkpoint holds them. It is bounded: past MAX_TAIL_BYTES the oldest
txgs are dropped, which leaves a gap only a sync (a checkpoint on the remote)
can close, so a remote that stays away costs no more memory than that.
"""

from __future__ import annotations

import collections

from dwfs.meta._db import Statement

MAX_TAIL_BYTES = 64 << 20


def _size(statements: list[Statement]) -> int:
    """About the bytes a txg's operations take in a record."""
    return sum(
        8 + len(op) + sum(len(v) if isinstance(v, bytes | str) else 9 for v in values)
        for op, values in statements
    )


class Tail:
    """Closed txgs, oldest first, at most MAX_TAIL_BYTES of them."""

    def __init__(self, since: int, limit: int = MAX_TAIL_BYTES) -> None:
        self.limit = limit
        self.dropped = since
        """The newest txg not here (closed before the tail began, or dropped for
        room): a segment cannot follow a txg older than it."""
        self._txgs: collections.deque[tuple[int, list[Statement], int]] = collections.deque()
        self.bytes = 0

    def add(self, txg: int, statements: list[Statement], size: int | None = None) -> None:
        """Keep a txg just closed; size is its record's, when known."""
        size = _size(statements) if size is None else size
        self._txgs.append((txg, statements, size))
        self.bytes += size
        while self.bytes > self.limit:
            dropped, _, freed = self._txgs.popleft()
            self.bytes -= freed
            self.dropped = dropped

    def after(self, txg: int, through: int) -> list[tuple[int, list[Statement]]]:
        """The txgs in (txg, through], provided they follow txg without a gap;
        [] where they do not (the remote needs a sync first)."""
        if not self.follows(txg):
            return []
        taken = [(t, s) for t, s, _ in self._txgs if txg < t <= through]
        if not taken or taken[0][0] != txg + 1:
            return []
        return taken

    def follows(self, txg: int) -> bool:
        """Whether nothing closed after txg is missing here."""
        return self.dropped <= txg

    def drop_through(self, txg: int) -> None:
        """Forget the txgs up to txg (the remote holds them)."""
        while self._txgs and self._txgs[0][0] <= txg:
            _, _, freed = self._txgs.popleft()
            self.bytes -= freed
