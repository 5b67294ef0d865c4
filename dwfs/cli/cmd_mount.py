"""dwfsctl mount: serve a pool at a mountpoint.

Without --foreground, dwfsctl starts the mount daemon (this command again, with
--foreground, in its own session), hands it the secret through a pipe, and
returns once the filesystem answers, or with the daemon's error. The daemon
logs to $DWFS_STATE_DIR/<pool>/mount.log.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio

from dwfs.chunks import HOOK_SECONDS, KEYFILE, LIVE_SHARE, append_private, private_dir, state_root
from dwfs.cli import _metrics, _mounts, _secrets, cmd_remote, cmd_snapshot
from dwfs.errors import Busy, DwfsError, NotADirectory, NotFound, UsageError, find_dwfs_error
from dwfs.fuse import ALLOWED_OPTIONS, FRONTEND_OPTION, frontend_of, option_value, serve
from dwfs.vfs import Volume, open_volume

log = logging.getLogger(__name__)

MOUNT_OPTIONS = ALLOWED_OPTIONS | {"degraded", "accept_rollback"}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "mount",
        help="mount a pool as a directory",
        description="Mount the pool that DEVICE belongs to at MOUNTPOINT (an existing, "
        "empty directory). Returns once the filesystem answers; the daemon keeps running "
        "until `dwfsctl umount MOUNTPOINT`.",
    )
    _secrets.add_unlock_options(p)
    p.add_argument("--foreground", action="store_true", help="serve from this process")
    p.add_argument(
        "-o",
        dest="options",
        default="",
        metavar="OPTS",
        help="comma-separated: allow_other (other users may use it), nonempty (mount over "
        "a non-empty directory), kernel_limits (keep the kernel's FUSE writeback and "
        "read-ahead limits, which a root mount otherwise relaxes), degraded (mount even "
        "though devices are missing or faulted), accept_rollback (take devices restored "
        "from a backup on purpose as they are, though this machine saw newer state: what "
        "was written since the backup is gone), remote_timeout=SECONDS (how long a read "
        "waits for the remote tier before it fails with EIO; default 30), "
        "metrics=HOST:PORT (serve Prometheus metrics at http://HOST:PORT/metrics, HOST a "
        "loopback address), "
        "frontend=native|pyfuse3 (how requests reach dwfs: native, C over libfuse3, the "
        "default where it was built, or pyfuse3), and the kernel's noexec, nosuid, nodev, "
        "noatime, nodiratime, exec, suid, dev, rw",
    )
    p.add_argument(
        "--event-hook",
        metavar="CMD",
        help="a program (with its arguments) run for each event (a device missing, faulted "
        "or back, checksum errors, a scrub or resilver finished, the pool nearly full), "
        "the event as one JSON object on its stdin; killed after "
        f"{HOOK_SECONDS:.0f} s, and never holding up the filesystem",
    )
    p.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    p.add_argument("device", metavar="DEVICE", type=Path, help="any device of the pool")
    p.add_argument("mountpoint", metavar="MOUNTPOINT", type=Path)
    p.set_defaults(run=run)


TIMEOUT_OPTION = "remote_timeout="


def remote_timeout(options: set[str]) -> float | None:
    """The remote_timeout=SECONDS option's value, if given.

    Raises:
        UsageError: it is not a number of seconds from 1 to 3600.
    """
    text = option_value(options, TIMEOUT_OPTION)
    if text is None:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 1 <= seconds <= 3600:
        raise UsageError(f"remote_timeout={text} is not a number of seconds from 1 to 3600")
    return seconds


def parse_options(text: str) -> set[str]:
    options = {o.strip() for o in text.split(",") if o.strip()}
    remote_timeout(options)
    frontend_of(options)
    _metrics.listen_address(options)
    valued = (TIMEOUT_OPTION, FRONTEND_OPTION, _metrics.METRICS_OPTION)
    unknown = {o for o in options if not o.startswith(valued)} - MOUNT_OPTIONS
    if unknown:
        raise UsageError(
            f"unknown mount option {sorted(unknown)[0]!r}: dwfs takes "
            f"{', '.join(sorted(MOUNT_OPTIONS))}"
        )
    return options


def check_mountpoint(path: Path, options: set[str]) -> None:
    if not path.exists():
        raise NotFound(f"mountpoint {path} does not exist: create the directory first")
    if not path.is_dir():
        raise NotADirectory(f"mountpoint {path} is not a directory")
    if os.path.ismount(path):
        raise Busy(f"{path} is already a mountpoint: unmount it first")
    if "nonempty" not in options and any(path.iterdir()):
        raise UsageError(f"mountpoint {path} is not empty: use an empty directory or -o nonempty")


def event_hook(text: str | None) -> list[str] | None:
    """The hook's argv, its program found (as an absolute path, since the daemon
    runs from /).

    Raises:
        UsageError: it is empty, cannot be split, or names no program.
    """
    if text is None:
        return None
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"--event-hook {text!r} cannot be split into words: {exc}") from None
    program = shutil.which(argv[0]) if argv else None
    if program is None:
        raise UsageError(f"--event-hook {text!r} names no program that can run: give its path")
    return [str(Path(program).resolve()), *argv[1:]]


async def run(args: argparse.Namespace) -> int:
    options = parse_options(args.options)
    check_mountpoint(args.mountpoint, options)
    hook = event_hook(args.event_hook)
    args.event_hook = None if hook is None else shlex.join(hook)
    if args.foreground:
        await _serve(args, options)
        return 0
    return _spawn(args)


def _report(fd: int | None, message: str, done: bool = True) -> None:
    """Tell the waiting `dwfsctl mount` one line (warning, ready or error); done
    closes the pipe, which ends its wait."""
    if fd is None:
        return
    try:
        os.write(fd, message.encode() + b"\n")
        if done:
            os.close(fd)
    except OSError:
        pass


def notify_systemd(state: str) -> None:
    """Tell systemd how the service stands (a Type=notify unit), if it asked: the
    sd_notify protocol, one datagram to the socket NOTIFY_SOCKET names."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.sendto(state.encode(), address)
        except OSError as exc:
            log.warning("could not tell systemd %s: %s", state, exc)


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _OneLine(logging.Formatter):
    """The log's lines as a terminal shows them (a mount in the foreground):
    without tracebacks, which stay in mount.log."""

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text
        record.exc_info, record.exc_text = None, None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text = saved


def _log_to(path: Path, foreground: bool) -> None:
    stream = open(append_private(path), "a", encoding="utf-8")  # noqa: SIM115 (logging owns it)
    handlers: list[logging.Handler] = [logging.StreamHandler(stream)]
    if foreground:
        terminal = logging.StreamHandler()
        terminal.setFormatter(_OneLine(LOG_FORMAT))
        handlers.append(terminal)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, handlers=handlers, force=True)


def _control(volume: Volume, mountpoint: Path) -> _mounts.Handler:
    async def handle(request: dict[str, Any]) -> Any:
        if request.get("cmd") == "status":
            status = volume.pool.status()
            status["mount"] = {
                "mountpoint": str(mountpoint),
                "pid": os.getpid(),
                "front_end": volume.front_end(),
            }
            status["remote"] = volume.remote.show()
            return status
        if request.get("cmd") == "stats":
            return volume.stats()
        if request.get("cmd") == "sync":
            await volume.sync_all()
            return {}
        if request.get("cmd") == "fsck":
            return await volume.fsck(bool(request.get("repair")))
        if request.get("cmd") == "snapshot":
            return await cmd_snapshot.serve(volume, request)
        if request.get("cmd") == "remote":
            return await cmd_remote.serve(volume, request)
        if request.get("cmd") == "scrub":
            return _scrub(volume, request)
        if request.get("cmd") == "replace":
            old, new = request.get("old"), request.get("new")
            if not isinstance(old, str) or not isinstance(new, str):
                raise UsageError("replace needs the old device and the new directory")
            await volume.replace(old, Path(new))
            return volume.pool.status()
        raise UsageError(f"unknown control request {request.get('cmd')!r}")

    return handle


def _scrub(volume: Volume, request: dict[str, Any]) -> dict[str, Any]:
    scrubber, op = volume.pool.scrubber, request.get("op")
    if op == "start":
        share = request.get("share", LIVE_SHARE)
        if not isinstance(share, (int, float)):
            raise UsageError(f"a scrub's share must be a number, not {share!r}")
        return scrubber.start(float(share)).to_json()
    if op == "pause":
        return scrubber.pause().to_json()
    if op == "stop":
        return scrubber.stop().to_json()
    if op == "show" and scrubber.job is not None:
        return scrubber.job.to_json()
    raise UsageError(f"unknown scrub request {op!r}")


async def _serve(args: argparse.Namespace, options: set[str]) -> None:
    mountpoint = args.mountpoint.resolve()
    credential = _secrets.credential(args)
    logging_to_file = False
    try:
        degraded = "degraded" in options
        accept_rollback = "accept_rollback" in options
        timeout = remote_timeout(options)
        metrics = _metrics.listen_address(options)
        options = {
            o for o in options if not o.startswith((TIMEOUT_OPTION, _metrics.METRICS_OPTION))
        }
        async with open_volume(
            args.device,
            credential,
            degraded=degraded,
            remote_timeout=timeout,
            accept_rollback=accept_rollback,
        ) as volume:
            credential.wipe()
            volume.pool.events.hook = event_hook(args.event_hook)
            pool_dir = private_dir(state_root() / volume.pool.id)
            _log_to(pool_dir / "mount.log", args.ready_fd is None)
            logging_to_file = True
            log.info("pool %s mounted at %s", volume.pool.id, mountpoint)
            sock = pool_dir / "control.sock"
            listener = None if metrics is None else await _metrics.bind(metrics)
            with _mounts.registered(volume.pool.id, mountpoint, sock):
                async with trio.open_nursery() as nursery:
                    await nursery.start(_mounts.serve_control, sock, _control(volume, mountpoint))
                    if listener is not None:
                        nursery.start_soon(_metrics.serve, listener, volume.stats)
                    for warning in volume.meta.warnings:
                        _report(args.ready_fd, f"warning {warning}", done=False)
                    ready = f"ready {volume.pool.id}"

                    def answering() -> None:
                        _report(args.ready_fd, ready)
                        notify_systemd("READY=1")

                    await serve(volume, mountpoint, options, answering)
                    nursery.cancel_scope.cancel()
            log.info("unmounted; storing and checkpointing")
    except Exception as exc:  # also from inside the volume's nursery, in a group
        known = find_dwfs_error(exc)
        if known is not None:
            _report(args.ready_fd, f"error {int(known.exit_code)} {known}")
        if logging_to_file:  # the mount log, not the terminal, gets the traceback
            log.error("the mount ended on an error: %s", known or exc, exc_info=exc)
        raise
    finally:
        credential.wipe()


def _spawn(args: argparse.Namespace) -> int:
    credential = _secrets.credential(args)
    read_end, write_end = os.pipe()
    command = [
        sys.executable,
        "-m",
        "dwfs.cli.main",
        "mount",
        "--foreground",
        "--ready-fd",
        str(write_end),
    ]
    if credential.kind == KEYFILE:
        command += ["--key-file", str(Path(args.key_file).resolve())]
    else:
        command += ["--passphrase-file", "-"]
    if args.options:
        command += ["-o", args.options]
    if args.event_hook:
        command += ["--event-hook", args.event_hook]
    command += [str(args.device.resolve()), str(args.mountpoint.resolve())]
    daemon_log = private_dir(state_root()) / "mount-daemon.log"
    with open(append_private(daemon_log), "ab") as errors:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            pass_fds=(write_end,),
            start_new_session=True,
            cwd="/",
        )
    os.close(write_end)
    assert proc.stdin is not None
    try:
        if credential.kind != KEYFILE:
            proc.stdin.write(bytes(credential.secret))
        proc.stdin.close()
    finally:
        credential.wipe()
    with os.fdopen(read_end, "rb") as ready:
        lines = ready.read().decode(errors="replace").strip().splitlines()
    for line in lines[:-1]:
        if line.startswith("warning "):
            sys.stderr.write(f"dwfsctl: warning: {line.removeprefix('warning ')}\n")
    message = lines[-1] if lines else ""
    if message.startswith("ready "):
        os.stat(args.mountpoint)
        print(f"mounted pool {message.split()[1]} at {args.mountpoint} (pid {proc.pid})")
        return 0
    if message.startswith("error "):
        _, exit_code, text = message.split(" ", 2)
        proc.wait()
        raise _mounts.RemoteError(text, int(exit_code))
    status = proc.wait()
    raise DwfsError(
        f"the mount process exited with status {status} before the filesystem answered: "
        f"see {daemon_log}"
    )
