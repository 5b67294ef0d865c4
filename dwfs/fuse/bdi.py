"""The kernel's writeback and read-ahead limits for a FUSE mount.

Every FUSE mount gets a backing device info (/sys/class/bdi/MAJOR:MINOR) with
strict_limit=1 and max_ratio=1: the mount may hold about 1% of the system's
dirty-page allowance (45 MB on a 24 GiB machine) and writers are throttled to
the daemon's writeback pace long before that, a guard against unprivileged
daemons that never answer. Its read-ahead is 128 KiB. A root-mounted dwfs is a
trusted daemon like a disk driver, so the mount gives itself what a disk has
(no strict limit, a larger share of dirty pages) and reads ahead one MiB, about
four chunks. Writing these files needs root; elsewhere, or with
`-o kernel_limits`, the kernel's defaults stay.

Durability does not change: dirty pages are not durable on any filesystem until
fsync, and fsync still writes them back and commits.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

SETTINGS = {"strict_limit": "0", "max_ratio": "50", "read_ahead_kb": "1024"}
SYSFS = Path("/sys/class/bdi")


def device_number(mountinfo: str, mountpoint: Path) -> str | None:
    """MAJOR:MINOR of the newest mount at mountpoint, from /proc/self/mountinfo text.

    Read from mountinfo rather than by stat(): the mount is served by this very
    process, which cannot answer a getattr while it is still setting up.
    """
    found = None
    target = str(mountpoint)
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4 and _unescape(fields[4]) == target:
            found = fields[2]
    return found


def _unescape(path: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        path = path.replace(code, char)
    return path


def relax(mountpoint: Path) -> None:
    """Apply SETTINGS to the mount's bdi where permitted, and log what was set."""
    number = device_number(Path("/proc/self/mountinfo").read_text(), mountpoint)
    if number is None:
        log.warning("no mount found at %s; kernel limits left alone", mountpoint)
        return
    applied = {}
    for name, value in SETTINGS.items():
        try:
            (SYSFS / number / name).write_text(value)
        except OSError as exc:
            log.info("bdi %s: %s left at the kernel's default (%s)", number, name, exc.strerror)
            continue
        applied[name] = value
    if applied:
        log.info("bdi %s: %s", number, ", ".join(f"{k}={v}" for k, v in applied.items()))
