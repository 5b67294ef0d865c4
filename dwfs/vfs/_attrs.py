"""Inode attributes as the filesystem reports them."""

from __future__ import annotations

import dataclasses
import stat
import sys
import time
from typing import Any

from dwfs.meta import ROOT_INO as ROOT_INO

MAX_NAME = 255
BLOCK = 4096


if sys.platform == "linux":
    _REALTIME_COARSE = 5
    """CLOCK_REALTIME_COARSE of <linux/time.h>, which Python's time module does not name."""

    def now_ns() -> int:
        """The time changes are stamped with: the clock the kernel stamps a cached
        file's mtime and ctime with itself, so that its stamps and ours never
        run backwards against each other (one fine and one coarse clock can,
        by a tick)."""
        return time.clock_gettime_ns(_REALTIME_COARSE)

else:

    def now_ns() -> int:
        """The time changes are stamped with."""
        return time.time_ns()


@dataclasses.dataclass
class Attr:
    ino: int
    mode: int
    uid: int
    gid: int
    nlink: int
    size: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int
    rdev: int
    target: bytes | None

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Attr:
        return cls(*row)

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    @property
    def is_reg(self) -> bool:
        return stat.S_ISREG(self.mode)

    @property
    def blocks(self) -> int:
        """512-byte blocks, as st_blocks counts them."""
        return -(-self.size // 512)
