"""Live mounts on this machine: a registry file and a control socket per mounted pool.

The daemon writes $DWFS_STATE_DIR/<pool>/mount.json (mountpoint, pid, socket)
and listens on control.sock beside it, both readable by the mounting user only.
dwfsctl finds a mount by its mountpoint and talks to it with one JSON line each way.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import trio

from dwfs.chunks import private_dir, read_private, state_root, write_private
from dwfs.errors import Busy, DwfsError, ExitCode, NotFound, find_dwfs_error

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[Any]]


def registry(pool: str) -> Path:
    return state_root() / pool / "mount.json"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def find(mountpoint: Path) -> dict[str, Any]:
    """The registry entry of the live dwfs mount at mountpoint.

    Raises:
        NotFound: no dwfs filesystem of this user is mounted there.
    """
    target = str(mountpoint.resolve())
    for path in sorted(state_root().glob("*/mount.json")):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            info: dict[str, Any] = json.loads(read_private(path) or b"null")
            if info["mountpoint"] == target and alive(int(info["pid"])):
                return info
    raise NotFound(f"no dwfs filesystem is mounted at {mountpoint} (see `mount -t fuse.dwfs`)")


def containing(path: Path) -> tuple[dict[str, Any], str]:
    """(the registry entry of the dwfs mount that holds path, path relative to its
    mountpoint).

    Raises:
        NotFound: path is not inside a dwfs filesystem of this user's.
    """
    target = path.resolve()
    mounts: dict[str, dict[str, Any]] = {}
    for entry in sorted(state_root().glob("*/mount.json")):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            info: dict[str, Any] = json.loads(read_private(entry) or b"null")
            if alive(int(info["pid"])):
                mounts[info["mountpoint"]] = info
    for place in (target, *target.parents):
        if str(place) in mounts:
            return mounts[str(place)], str(target.relative_to(place))
    raise NotFound(f"{path} is not inside a mounted dwfs filesystem")


@contextlib.contextmanager
def registered(pool: str, mountpoint: Path, sock: Path) -> Iterator[None]:
    path = registry(pool)
    private_dir(path.parent)
    info = {
        "pool": pool,
        "mountpoint": str(mountpoint.resolve()),
        "pid": os.getpid(),
        "socket": str(sock),
    }
    write_private(path, json.dumps(info).encode())
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


SUN_PATH_MAX = 107
"""The longest path a unix socket address holds (sockaddr_un's sun_path, less its NUL)."""


@contextlib.contextmanager
def _reachable(path: Path) -> Iterator[str]:
    """An address for the socket at path that fits a unix socket address: the path
    itself, or, when it is too long (a deep state directory), the same file
    reached through a descriptor of its directory (/proc/self/fd/N/NAME)."""
    if len(os.fsencode(str(path))) <= SUN_PATH_MAX:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


async def serve_control(
    sock_path: Path, handler: Handler, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Answer control requests on a unix socket only this user can reach."""
    sock_path.unlink(missing_ok=True)
    listener = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        with _reachable(sock_path) as address:
            await listener.bind(address)
    finally:
        os.umask(old)
    listener.listen(8)
    task_status.started()
    try:
        async with trio.open_nursery() as nursery:
            while True:
                conn, _ = await listener.accept()
                nursery.start_soon(_answer, trio.SocketStream(conn), handler)
    finally:
        listener.close()
        sock_path.unlink(missing_ok=True)


async def _answer(stream: trio.SocketStream, handler: Handler) -> None:
    async with stream:
        data = b""
        while not data.endswith(b"\n"):
            chunk = await stream.receive_some(65536)
            if not chunk:
                return
            data += chunk
        try:
            reply = {"ok": True, "result": await handler(json.loads(data))}
        except Exception as exc:
            known = find_dwfs_error(exc)  # also inside a nursery's exception group
            if known is not None:
                reply = {"ok": False, "error": str(known), "exit": int(known.exit_code)}
            else:
                log.exception("control request failed")
                reply = {
                    "ok": False,
                    "error": f"internal error: {exc}",
                    "exit": int(ExitCode.FAILURE),
                }
        await stream.send_all(json.dumps(reply).encode() + b"\n")


class RemoteError(DwfsError):
    """An error the mount daemon reported, with its exit status."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = ExitCode(exit_code)


def request(info: dict[str, Any], body: dict[str, Any], timeout: float = 30.0) -> Any:
    """Send one request to a mount's control socket; its result."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            with _reachable(Path(info["socket"])) as address:
                sock.connect(address)
            sock.sendall(json.dumps(body).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError as exc:
            raise Busy(f"the mount at {info['mountpoint']} does not answer: {exc}") from None
    reply = json.loads(data)
    if not reply["ok"]:
        raise RemoteError(reply["error"], reply["exit"])
    return reply["result"]
