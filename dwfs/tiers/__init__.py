"""Remote tiers: a directory, an S3 bucket or anything rclone reaches, holding
opaque sealed objects under opaque names, beside the devices.

Knows nothing of chunks, files or keys beyond the MAC key of the remote's
superblock it is handed.
"""

from __future__ import annotations

from dwfs.tiers._backend import MAX_OBJECT as MAX_OBJECT
from dwfs.tiers._backend import Backend as Backend
from dwfs.tiers._backend import check_name as check_name
from dwfs.tiers._backend import get_bounded as get_bounded
from dwfs.tiers._backend import probe as probe
from dwfs.tiers._superblock import MAX_SIZE as MAX_SUPERBLOCK
from dwfs.tiers._superblock import OBJECT as SUPERBLOCK
from dwfs.tiers._superblock import RemoteSuperblock as RemoteSuperblock
from dwfs.tiers._superblock import Unverified as Unverified
from dwfs.tiers._superblock import decode as decode_superblock
from dwfs.tiers._superblock import encode as encode_superblock
from dwfs.tiers._url import RemoteURL as RemoteURL
from dwfs.tiers._url import parse_url as parse_url


def open_backend(url: str | RemoteURL) -> Backend:
    """A backend for the remote a URL names (nothing is contacted yet, except
    that a dir:// remote's directory is opened, and made if its parent exists).

    Raises:
        UsageError: the URL is malformed.
        RemoteError: the remote cannot be set up.
    """
    parsed = parse_url(url) if isinstance(url, str) else url
    if parsed.scheme == "dir":
        from dwfs.tiers._dir import DirBackend

        return DirBackend(parsed)
    if parsed.scheme == "s3":
        from dwfs.tiers._s3 import S3Backend

        return S3Backend(parsed)
    from dwfs.tiers._rclone import RcloneBackend

    return RcloneBackend(parsed)


__all__ = [
    "MAX_OBJECT",
    "MAX_SUPERBLOCK",
    "SUPERBLOCK",
    "Backend",
    "RemoteSuperblock",
    "RemoteURL",
    "Unverified",
    "check_name",
    "decode_superblock",
    "encode_superblock",
    "get_bounded",
    "open_backend",
    "parse_url",
    "probe",
]
