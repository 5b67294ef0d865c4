"""Finding a mount's backing device in mountinfo text (pure)."""

from __future__ import annotations

from pathlib import Path

from dwfs.fuse.bdi import device_number

MOUNTINFO = """\
22 1 0:21 / / rw,relatime - overlay overlay rw
95 22 0:40 / /srv/my\\040data rw,nosuid,nodev,relatime - fuse.dwfs dwfs:1 rw,user_id=0
96 22 0:41 / /mnt rw,nosuid,nodev,relatime - fuse.dwfs dwfs:2 rw,user_id=0
97 96 0:42 / /mnt rw,nosuid,nodev,relatime - fuse.dwfs dwfs:3 rw,user_id=0
"""


def test_the_newest_mount_at_a_path_wins() -> None:
    assert device_number(MOUNTINFO, Path("/mnt")) == "0:42"


def test_escaped_spaces_are_read_back() -> None:
    assert device_number(MOUNTINFO, Path("/srv/my data")) == "0:40"


def test_no_mount_is_none() -> None:
    assert device_number(MOUNTINFO, Path("/srv")) is None
