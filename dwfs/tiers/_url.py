"""Remote URLs: `dir:///path`, `s3://bucket/prefix` and `rclone:REMOTE:path`.

Parsing is pure and strict: a URL that is not one of these three shapes is
refused with a line that says which shapes there are. Credentials never go in
a URL (they come from the AWS environment and files, or rclone's config), so a
URL can be shown and logged.
"""

from __future__ import annotations

import dataclasses
import re

from dwfs.errors import UsageError

SCHEMES = ("dir", "s3", "rclone")
SHAPES = "dir:///PATH, s3://BUCKET[/PREFIX] or rclone:REMOTE:PATH"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX = re.compile(r"^[A-Za-z0-9._/-]*$")
_RCLONE_REMOTE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_. -]*$")
MAX_URL = 1024


@dataclasses.dataclass(frozen=True)
class RemoteURL:
    """A parsed remote URL: its scheme and, per scheme, where it points."""

    scheme: str
    location: str
    """dir: the absolute path; s3: the bucket; rclone: the remote's name."""
    prefix: str = ""
    """s3: the path inside the bucket, no slash at either end; rclone: the path on the
    remote, no slash at its end (a leading one is kept: for local and sftp remotes
    it makes the path absolute)."""

    def __str__(self) -> str:
        if self.scheme == "dir":
            return f"dir://{self.location}"
        if self.scheme == "s3":
            return f"s3://{self.location}" + (f"/{self.prefix}" if self.prefix else "")
        return f"rclone:{self.location}:{self.prefix}"


def _refuse(text: str, why: str) -> UsageError:
    shown = text if len(text) <= 80 and text.isprintable() else repr(text[:80])
    return UsageError(f"remote URL {shown} {why}: use {SHAPES}")


def parse_url(text: str) -> RemoteURL:
    """The remote a URL names.

    Raises:
        UsageError: it is not one of the three shapes, or names nothing usable.
    """
    if len(text) > MAX_URL or not text.isprintable():
        raise _refuse(text, "is too long or holds control characters")
    if text.startswith("rclone:"):
        return _rclone(text)
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise _refuse(text, "has no scheme")
    if scheme == "dir":
        return _dir(text, rest)
    if scheme == "s3":
        return _s3(text, rest)
    raise _refuse(text, f"has the unknown scheme {scheme!r}")


def _dir(text: str, rest: str) -> RemoteURL:
    if not rest.startswith("/"):
        raise _refuse(text, "does not name an absolute path (dir:///path has three slashes)")
    parts = [p for p in rest.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise _refuse(text, "has . or .. in its path")
    return RemoteURL("dir", "/" + "/".join(parts))


def _s3(text: str, rest: str) -> RemoteURL:
    bucket, _, prefix = rest.partition("/")
    prefix = prefix.strip("/")
    if not _BUCKET.match(bucket):
        raise _refuse(text, "does not name a valid bucket (3-63 of a-z, 0-9, '.', '-')")
    if not _PREFIX.match(prefix) or any(p in (".", "..") for p in prefix.split("/")):
        raise _refuse(text, "has a prefix with characters other than A-Z a-z 0-9 . _ / -")
    return RemoteURL("s3", bucket, "/".join(p for p in prefix.split("/") if p))


def _rclone(text: str) -> RemoteURL:
    _, remote, path = text.split(":", 2) if text.count(":") >= 2 else (None, "", "")
    if not remote or not _RCLONE_REMOTE.match(remote):
        raise _refuse(text, "does not name an rclone remote (rclone:REMOTE:path)")
    path = path.rstrip("/") if path != "/" else path
    if any(p in (".", "..") for p in path.split("/")):
        raise _refuse(text, "has . or .. in its path")
    return RemoteURL("rclone", remote, path)
