"""dwfsctl attach: new local devices for a pool that exists on a remote."""

from __future__ import annotations

import argparse
from pathlib import Path

from dwfs import snapshots
from dwfs.cli import _secrets
from dwfs.cli._output import print_json
from dwfs.cli.cmd_remote import REMOTE_HELP
from dwfs.devices import LAYOUT_NAMES


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "attach",
        help="make local devices for a pool that exists on a remote",
        description="Read the pool's newest complete copy on URL (made by `dwfsctl sync`), "
        "unlock it with its passphrase, key file or recovery key, and make the new, empty "
        "DEVICE directories its local devices: every file, directory, xattr and snapshot "
        "is there at once, and every file's data stays on the remote until it is read. "
        "Mount the pool with `dwfsctl mount` as usual. " + REMOTE_HELP,
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--raid",
        metavar="LAYOUT",
        help=f"the new devices' layout: {', '.join(LAYOUT_NAMES)} or K+M (default as for create)",
    )
    _secrets.add_unlock_options(p)
    p.add_argument("url", metavar="URL")
    p.add_argument("devices", metavar="DEVICE", type=Path, nargs="+")
    p.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    credential = _secrets.credential(args)
    try:
        done = await snapshots.attach(args.url, args.devices, credential, args.raid)
    finally:
        credential.wipe()
    if args.json:
        print_json(done)
    else:
        print(
            f"attached pool {done['pool']} from {done['url']} (generation {done['generation']}, "
            f"{done['inodes']} inodes) on {len(args.devices)} devices: mount it with "
            f"`dwfsctl mount {args.devices[0]} MOUNTPOINT`"
        )
    return 0
