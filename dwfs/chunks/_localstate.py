"""Per-pool state kept on this machine, outside the pool.

For now: the newest superblock generation this machine has seen, so a pool whose
devices were all rolled back to older copies is noticed (a single stale device
is noticed from the other devices). The directory is DWFS_STATE_DIR, else
$XDG_STATE_HOME/dwfs, else ~/.local/state/dwfs; it is read when a pool opens,
never at import.
"""

from __future__ import annotations

import os
from pathlib import Path


def state_root() -> Path:
    explicit = os.environ.get("DWFS_STATE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "dwfs"


class LocalState:
    def __init__(self, pool: str, root: Path | None = None) -> None:
        self.dir = (root or state_root()) / pool

    def last_generation(self) -> int:
        try:
            return int((self.dir / "generation").read_text().strip())
        except (OSError, ValueError):
            return 0

    def record_generation(self, generation: int) -> None:
        if generation <= self.last_generation():
            return
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.dir / "generation.tmp"
        tmp.write_text(f"{generation}\n")
        tmp.replace(self.dir / "generation")
