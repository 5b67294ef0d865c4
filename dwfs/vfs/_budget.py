"""The budget of unstored writes across all files.

Each file stores its writes once it holds 32 MiB of them, but many files at
once could still hold any amount: with `allow_other`, one user writing to
thousands of files would make the daemon run out of memory and lose everyone's
unstored writes. The budget bounds the total; a write that would exceed it first
stores the largest holders' writes itself, so writers slow to the pace of the
store (as the kernel throttles writers to writeback) instead of memory growing.

The counts are what the volume last saw per inode; a count may be stale-high
(its file stored meanwhile), never stale-low, since only a write adds bytes and
every write is counted. A stale count corrects itself when its file is picked.
"""

from __future__ import annotations

import os

DEFAULT_LIMIT = 512 * 1024 * 1024
"""At most this much, and at most an eighth of the machine's memory."""


def default_limit() -> int:
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return DEFAULT_LIMIT
    return max(64 * 1024 * 1024, min(DEFAULT_LIMIT, memory // 8))


class WriteBudget:
    """Unstored bytes per inode and in all, against a limit."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = default_limit() if limit is None else limit
        self.total = 0
        self._held: dict[int, int] = {}

    def update(self, ino: int, nbytes: int) -> None:
        """Say that inode ino now holds nbytes unstored."""
        old = self._held.pop(ino, 0)
        if nbytes:
            self._held[ino] = nbytes
        self.total += nbytes - old

    def room_for(self, nbytes: int) -> bool:
        """Whether nbytes more fit (a write larger than the limit fits an empty budget)."""
        return self.total + nbytes <= self.limit or not self.total

    def room(self) -> int:
        """Bytes more that fit before the limit."""
        return max(0, self.limit - self.total)

    def covered_by(self, free: int) -> bool:
        """Whether free bytes of pool hold every write the budget can let in twice
        over (sealing, padding and parity's rounding add to a write's size, never
        double it), so storing writes after close() cannot run out of room."""
        return free >= 2 * self.limit

    def largest(self) -> int:
        """The inode holding the most unstored bytes (the budget is not empty)."""
        return max(self._held, key=self._held.__getitem__)
