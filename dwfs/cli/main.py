"""dwfsctl: create, inspect, repair and manage dwfs pools.

Each command, or family of commands, lives in cmd_<name>.py with register() and
async run functions; this module parses, runs the verb under trio, and turns
every error into one line on stderr and an exit status (errors.ExitCode). A
traceback reaches the user only when DWFS_DEBUG=1 asks for it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import sys
import traceback
from typing import NoReturn

import trio

from dwfs import __version__, _accel
from dwfs.cli import (
    _secrets,
    cmd_attach,
    cmd_create,
    cmd_fsck,
    cmd_hydrate,
    cmd_key,
    cmd_mount,
    cmd_remote,
    cmd_replace,
    cmd_scrub,
    cmd_snapshot,
    cmd_stats,
    cmd_status,
    cmd_umount,
)
from dwfs.errors import ExitCode, find_dwfs_error

COMMANDS = (
    cmd_create,
    cmd_mount,
    cmd_umount,
    cmd_status,
    cmd_stats,
    cmd_snapshot,
    cmd_remote,
    cmd_hydrate,
    cmd_attach,
    cmd_scrub,
    cmd_fsck,
    cmd_replace,
    cmd_key,
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that says where to look."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(ExitCode.USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="dwfsctl",
        description="Create, inspect, repair and manage dwfs pools: encrypted, deduplicated, "
        "RAID-protected storage.",
        epilog="Secrets are never taken from the command line: use --passphrase-file, "
        "DWFS_PASSPHRASE_FILE, or answer the prompt.",
    )
    parser.add_argument("--version", action="version", version=f"dwfs {__version__}")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    for command in COMMANDS:
        command.register(sub)
    return parser


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"dwfsctl: error: {message}\n")
    return code


def _raise_open_files() -> None:
    """Lift the soft limit of open files to the hard one, as Go programs do at
    start: a device keeps two descriptors per segment it has read (one for
    writes, one for direct reads), so a pool of a few hundred GiB outgrows the
    usual soft limit of 1,024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):  # an unlimited hard limit
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _accel.tune_allocator()
    _raise_open_files()
    _secrets.protect_process()
    try:
        result: int = trio.run(args.run, args)
        return result
    except KeyboardInterrupt:
        return _fail("interrupted", ExitCode.INTERRUPTED)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        return _fail(f"{exc.strerror or exc}{where}", ExitCode.FAILURE)
    except Exception as exc:  # the last line of defence: report, never a traceback
        known = find_dwfs_error(exc)
        if known is not None:
            return _fail(str(known), known.exit_code)
        if os.environ.get("DWFS_DEBUG") == "1":
            traceback.print_exc()
        return _fail(
            f"internal error {type(exc).__name__}: {exc} (rerun with DWFS_DEBUG=1 and report it)",
            ExitCode.FAILURE,
        )


if __name__ == "__main__":
    sys.exit(main())
