"""What every remote offers: whole objects put once, read back by range.

A backend holds opaque sealed bytes under names dwfs chooses (opaque ids). Its
methods block and are safe to call from several worker threads at once. A put
is atomic (a reader sees the whole object or none) and durable when it
returns. Every failure is a RemoteError (refused: a missing bucket, bad
credentials, a missing object) or a TierUnavailable (cannot be reached now);
nothing else escapes.
"""

from __future__ import annotations

import re
import secrets
from typing import Protocol

from dwfs.errors import RemoteError, UsageError
from dwfs.types import Buffer

MAX_OBJECT = 1 << 30
"""No object dwfs writes is larger; a listing or size claiming more is refused."""
_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]*(/[a-z0-9][a-z0-9.-]*)*$")


def check_name(name: str) -> str:
    """An object name dwfs may use: lowercase, digits, '.', '-', slash-separated."""
    if not _NAME.match(name) or len(name) > 200:
        raise UsageError(f"{name!r} is not an object name dwfs uses")
    return name


def probe(backend: Backend) -> None:
    """Raise unless the remote can be reached and written (a bucket exists,
    credentials are accepted, the directory is ours): a small object is put and
    removed."""
    name = f"probe-{secrets.token_hex(8)}"
    backend.put(name, b"dwfs")
    backend.delete(name)


def get_bounded(backend: Backend, name: str, limit: int) -> bytes | None:
    """A whole object of at most `limit` bytes, or None if there is none of that
    name: its size is asked first, so a hostile remote cannot make dwfs read an
    object larger than any it writes.

    Raises:
        RemoteError: the object is larger than limit.
    """
    size = backend.size(name)
    if size is None:
        return None
    if size > limit:
        raise RemoteError(f"{name} on {backend.url} is larger than any object dwfs writes there")
    return backend.get(name, 0, size)


class Backend(Protocol):
    """One remote's objects."""

    @property
    def url(self) -> str:
        """The remote's URL, as the user gave it (it holds no credentials)."""

    def put(self, name: str, data: Buffer) -> None:
        """Store an object, atomically and durably, replacing any of that name."""

    def get(self, name: str, start: int = 0, length: int | None = None) -> bytes:
        """An object's bytes [start, start + length), or from start to its end.

        Raises:
            RemoteError: the object is missing or shorter than asked.
        """

    def size(self, name: str) -> int | None:
        """An object's length, or None if there is none of that name."""

    def list(self, prefix: str) -> list[str]:
        """The names of every object under prefix (a folder: it ends with '/'),
        in its subfolders too."""

    def delete(self, name: str) -> None:
        """Remove an object; nothing happens if there is none."""

    def close(self) -> None:
        """Let go of connections and descriptors."""
