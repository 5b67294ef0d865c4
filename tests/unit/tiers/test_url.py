"""Remote URLs: the three shapes parse, everything else is refused with one line."""

from __future__ import annotations

import pytest

from dwfs.errors import UsageError
from dwfs.tiers import RemoteURL, parse_url


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("dir:///srv/backup", RemoteURL("dir", "/srv/backup")),
        ("dir:///srv//backup/", RemoteURL("dir", "/srv/backup")),
        ("s3://my-bucket", RemoteURL("s3", "my-bucket")),
        ("s3://my-bucket/a/b/", RemoteURL("s3", "my-bucket", "a/b")),
        ("rclone:gdrive:pools/home", RemoteURL("rclone", "gdrive", "pools/home")),
        ("rclone:nas:", RemoteURL("rclone", "nas", "")),
        ("rclone:disk:/srv/pools/", RemoteURL("rclone", "disk", "/srv/pools")),
    ],
)
def test_the_three_shapes_parse_and_print_back(text: str, parsed: RemoteURL) -> None:
    assert parse_url(text) == parsed
    assert parse_url(str(parsed)) == parsed


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "has no scheme"),
        ("/srv/backup", "has no scheme"),
        ("ftp://host/x", "unknown scheme 'ftp'"),
        ("dir://srv/backup", "absolute path"),
        ("dir:///srv/../etc", ". or .."),
        ("s3://", "valid bucket"),
        ("s3://Upper", "valid bucket"),
        ("s3://b", "valid bucket"),
        ("s3://bucket/a b", "prefix"),
        ("s3://bucket/../x", "prefix"),
        ("rclone:", "rclone remote"),
        ("rclone::path", "rclone remote"),
        ("rclone:nas", "rclone remote"),
        ("rclone:nas:../up", ". or .."),
        ("s3://bucket/\x1b[31m", "control characters"),
        ("s3://" + "a" * 2000, "too long"),
    ],
)
def test_anything_else_is_refused_naming_the_shapes(text: str, why: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_url(text)
    message = str(caught.value)
    assert why in message
    assert "dir:///PATH, s3://BUCKET[/PREFIX] or rclone:REMOTE:PATH" in message
    assert "\n" not in message and "\x1b" not in message
