"""dwfsctl key: list, add, remove and change the keyslots that unlock a pool."""

from __future__ import annotations

import argparse
from pathlib import Path

from dwfs.chunks import KEYFILE, PASSPHRASE, RECOVERY, new_recovery_key
from dwfs.cli import _secrets
from dwfs.cli._output import print_json


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "key",
        help="manage keyslots (passphrases, key files, recovery keys)",
        description="Each keyslot wraps the pool's master key under one passphrase, key "
        "file or recovery key. Changing them never rewrites data.",
    )
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    ls = verbs.add_parser("list", help="list keyslots")
    ls.add_argument("--json", action="store_true", help="print JSON")

    add = verbs.add_parser("add", help="add a keyslot")
    new = add.add_mutually_exclusive_group()
    new.add_argument(
        "--new-passphrase-file", metavar="F", help="the new passphrase (else a prompt)"
    )
    new.add_argument("--new-key-file", metavar="F", help="a key file to accept")
    new.add_argument("--recovery", action="store_true", help="make and print a recovery key")

    rm = verbs.add_parser("remove", help="remove a keyslot (never the last)")
    rm.add_argument("--slot", type=int, required=True, help="the keyslot number")

    change = verbs.add_parser("change", help="give a passphrase keyslot a new passphrase")
    change.add_argument(
        "--slot", type=int, help="the keyslot number (default: the one that unlocked)"
    )
    change.add_argument("--new-passphrase-file", metavar="F", help="the new passphrase")

    for verb in (ls, add, rm, change):
        _secrets.add_unlock_options(verb)
        verb.add_argument("device", metavar="DEVICE", type=Path, help="any device of the pool")
    p.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    async with _secrets.unlocked_pool(args) as pool:
        if args.verb == "list":
            slots = pool.keyslots()
            if args.json:
                print_json(slots)
            for s in [] if args.json else slots:
                used = "  (unlocked this time)" if s["id"] == pool.unlocked_with else ""
                print(f"{s['id']:>3}  {s['kind']:<10}  created {s['created']}{used}")
        elif args.verb == "add":
            if args.recovery:
                key = new_recovery_key()
                slot = pool.add_keyslot(RECOVERY, key.encode())
                print(f"keyslot {slot}: recovery key (shown only now): {key}")
            elif args.new_key_file:
                slot = pool.add_keyslot(KEYFILE, _secrets.new_key_file(args.new_key_file))
                print(f"keyslot {slot}: key file added")
            else:
                slot = pool.add_keyslot(
                    PASSPHRASE, _secrets.new_passphrase(args.new_passphrase_file)
                )
                print(f"keyslot {slot}: passphrase added")
        elif args.verb == "remove":
            pool.remove_keyslot(args.slot)
            print(f"keyslot {args.slot} removed")
        else:
            slot = pool.unlocked_with if args.slot is None else args.slot
            pool.change_keyslot(slot, PASSPHRASE, _secrets.new_passphrase(args.new_passphrase_file))
            print(f"keyslot {slot}: passphrase changed")
    return 0
