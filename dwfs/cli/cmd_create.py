"""dwfsctl create: make a new pool on one or more device directories."""

from __future__ import annotations

import argparse
from pathlib import Path

from dwfs.chunks import (
    CIPHERS,
    COMPRESSIONS,
    KDF_PRESETS,
    PADDINGS,
    RECOVERY,
    PoolOptions,
    create_pool,
    new_recovery_key,
    open_pool,
)
from dwfs.cli import _secrets
from dwfs.devices import LAYOUT_NAMES


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "create",
        help="create a pool on device directories",
        description="Create an encrypted, RAID-protected pool. Each DEVICE is a directory "
        "(new, or empty) that should sit on its own disk.",
    )
    p.add_argument(
        "--raid",
        metavar="LAYOUT",
        help=f"{', '.join(LAYOUT_NAMES)} or K+M such as 4+2 (default: raidz1 for 3+ devices, "
        "raid1 for 2, raid0 for 1)",
    )
    p.add_argument("--cipher", choices=sorted(CIPHERS), default="aes-256-gcm")
    p.add_argument("--compression", choices=sorted(COMPRESSIONS), default="zstd")
    p.add_argument(
        "--padding",
        choices=sorted(PADDINGS),
        default="none",
        help="padme pads each sealed chunk to one of few lengths (at most 12%% more space) "
        "so its size says less about its content (docs/crypto.md)",
    )
    p.add_argument(
        "--kdf",
        choices=sorted(KDF_PRESETS),
        default="standard",
        help="what each guess of the passphrase costs an attacker: standard (Argon2id, "
        "64 MiB, about 0.2 s to unlock) or strong (1 GiB as LUKS2, about 3 s)",
    )
    p.add_argument(
        "--recovery-key",
        action="store_true",
        help="also make a printable recovery key and print it once",
    )
    _secrets.add_unlock_options(p)
    p.add_argument("devices", metavar="DEVICE", nargs="+", type=Path)
    p.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    credential = _secrets.credential(args, confirm=True)
    options = PoolOptions(
        layout=args.raid,
        cipher=args.cipher,
        compression=args.compression,
        padding=args.padding,
        kdf=dict(KDF_PRESETS[args.kdf]),
    )
    try:
        pool_id = create_pool(args.devices, credential, options)
        recovery = None
        if args.recovery_key:
            recovery = new_recovery_key()
            async with open_pool(args.devices[0], credential) as pool:
                pool.add_keyslot(RECOVERY, recovery.encode())
    finally:
        credential.wipe()
    print(f"created pool {pool_id} on {len(args.devices)} device(s)")
    if recovery:
        print(f"recovery key (store it somewhere safe; it is shown only now): {recovery}")
    return 0
