"""Where secrets come from: a file, the file DWFS_PASSPHRASE_FILE names, or a prompt.

Never from argv, where any user of the machine could read them in ps. A secret
file that other users can read or write is refused, as ssh refuses such a
private key: the secret in it is no longer ours alone. And a process holding
keys makes no core dumps and cannot be attached to by other processes of its
user (protect_process).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import getpass
import os
import resource
import stat
import sys
from collections.abc import AsyncIterator

from dwfs.chunks import KEYFILE, PASSPHRASE, Credential, Pool, open_pool
from dwfs.errors import UsageError

ENV = "DWFS_PASSPHRASE_FILE"


MAX_SECRET_FILE = 1024 * 1024
"""The most read of a passphrase or key file."""


def protect_process() -> None:
    """No core dumps, and no ptrace by other processes of this user (Linux)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


_PR_SET_DUMPABLE = 4


def _read(path: str, what: str) -> bytearray:
    if path == "-":
        return bytearray(sys.stdin.buffer.read(MAX_SECRET_FILE))
    try:
        with open(path, "rb") as file:
            mode = os.fstat(file.fileno()).st_mode
            if stat.S_ISREG(mode) and mode & 0o077:
                raise UsageError(
                    f"the {what} file {path} can be read or written by other users: "
                    f"`chmod 600 {path}` (a secret must be yours alone)"
                )
            return bytearray(file.read(MAX_SECRET_FILE))
    except OSError as exc:
        raise UsageError(f"cannot read the {what} file {path}: {exc.strerror}") from None


def _strip_newline(data: bytearray) -> bytearray:
    for ending in (b"\r\n", b"\n"):
        if data.endswith(ending):
            del data[-len(ending) :]
            break
    return data


def _prompt(prompt: str, confirm: bool) -> bytearray:
    if not sys.stdin.isatty():
        raise UsageError(
            f"no passphrase given: use --passphrase-file FILE or set {ENV}, "
            "or run on a terminal to be asked"
        )
    first = bytearray(getpass.getpass(prompt).encode())
    if confirm and bytearray(getpass.getpass("Repeat: ").encode()) != first:
        raise UsageError("the passphrases do not match: nothing was changed")
    return first


def credential(args: argparse.Namespace, confirm: bool = False) -> Credential:
    """The credential that unlocks (or, with confirm, creates) a pool."""
    if getattr(args, "key_file", None):
        return Credential(KEYFILE, _read(args.key_file, "key"))
    source = args.passphrase_file or os.environ.get(ENV)
    if source:
        return Credential(PASSPHRASE, _strip_newline(_read(source, "passphrase")))
    return Credential(PASSPHRASE, _prompt("Passphrase: ", confirm))


@contextlib.asynccontextmanager
async def unlocked_pool(args: argparse.Namespace) -> AsyncIterator[Pool]:
    """The pool that args.device names, unlocked with the credential args give; the
    secret is wiped once the pool is open or has failed to open."""
    secret = credential(args)
    try:
        async with open_pool(args.device, secret) as pool:
            secret.wipe()
            yield pool
    finally:
        secret.wipe()


def new_passphrase(path: str | None) -> bytearray:
    if path:
        return _strip_newline(_read(path, "new passphrase"))
    return _prompt("New passphrase: ", confirm=True)


def new_key_file(path: str) -> bytearray:
    return _read(path, "new key")


def add_unlock_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--passphrase-file",
        metavar="F",
        help=f"read the passphrase (or recovery key) from F, a file only you can read "
        f"(chmod 600), or '-' for stdin; default: ${ENV}, else a prompt",
    )
    group.add_argument("--key-file", metavar="F", help="unlock with a key file instead")
