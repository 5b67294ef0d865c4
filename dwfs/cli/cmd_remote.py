"""dwfsctl remote add|remove|show and dwfsctl sync: the remote tier of a mounted
filesystem, through the mount daemon's control socket; serve() is the daemon's
side of it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dwfs.cli import _mounts
from dwfs.cli._output import human_bytes, print_json
from dwfs.errors import UsageError
from dwfs.tiers import parse_url
from dwfs.vfs import Volume

REMOTE_HELP = (
    "URL is dir:///PATH (a local or network directory), s3://BUCKET[/PREFIX] (any S3 "
    "store: endpoint, region and credentials come from AWS_ENDPOINT_URL, AWS_REGION, "
    "AWS_ACCESS_KEY_ID, AWS_PROFILE and ~/.aws as for every AWS tool, in the environment "
    "of the mount) or rclone:REMOTE:PATH (any remote in rclone's config)."
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "remote",
        help="add, show or remove the remote tier of a mounted filesystem",
        description="A remote tier keeps a complete, encrypted copy of the pool: chunks go "
        "up in the background as they are written, and `dwfsctl sync` makes the remote a "
        "copy that `dwfsctl attach` can bring up on another machine. " + REMOTE_HELP,
    )
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    add = verbs.add_parser(
        "add",
        help="start keeping a copy on a remote",
        description="Check that URL can be reached and written and holds no other pool, "
        "record it, and start uploading. " + REMOTE_HELP,
    )
    add.add_argument("--json", action="store_true", help="print JSON")
    add.add_argument(
        "--bwlimit",
        metavar="RATE",
        type=parse_size,
        help="upload at most RATE bytes a second (K, M, G suffixes; default: no limit)",
    )
    add.add_argument("mountpoint", metavar="MOUNTPOINT", type=Path)
    add.add_argument("url", metavar="URL")
    add.set_defaults(run=run_add)
    show = verbs.add_parser(
        "show",
        help="show the remote and what is left to upload",
        description="Show the remote tier's URL, what is waiting to go up, what is only "
        "on the remote, and the uploads and fetches so far.",
    )
    show.add_argument("--json", action="store_true", help="print JSON")
    show.add_argument("mountpoint", metavar="MOUNTPOINT", type=Path)
    show.set_defaults(run=run_show)
    remove = verbs.add_parser(
        "remove",
        help="stop using the remote",
        description="Stop uploading and forget the remote (its objects stay there). "
        "Refused while some data is only on the remote.",
    )
    remove.add_argument("--json", action="store_true", help="print JSON")
    remove.add_argument("mountpoint", metavar="MOUNTPOINT", type=Path)
    remove.set_defaults(run=run_remove)

    cache = sub.add_parser(
        "cache",
        help="show or bound the local cache of a filesystem with a remote tier",
        description="Show how much file data is kept locally and how much is only on the "
        "remote; with --max-size, keep at most SIZE bytes of it locally, and with "
        "--min-free, evict until the devices have SIZE free (K, M, G, T suffixes). Past "
        "either bound the least recently read data the remote holds is evicted; pinned, "
        "open and not yet uploaded data never is.",
    )
    cache.add_argument("--json", action="store_true", help="print JSON")
    cache.add_argument("--max-size", metavar="SIZE", type=parse_size)
    cache.add_argument("--min-free", metavar="SIZE", type=parse_size)
    cache.add_argument("mountpoint", metavar="MOUNTPOINT", type=Path)
    cache.set_defaults(run=run_cache)

    sync = sub.add_parser(
        "sync",
        help="upload everything pending and make the remote a complete copy",
        description="Store every write, upload every chunk the remote lacks and a "
        "checkpoint of the metadata, then replace the remote's superblock: on exit 0 the "
        "remote holds a complete copy that `dwfsctl attach` can mount elsewhere. Packs "
        "less than half live, and small packs, are repacked first, and packs the new copy "
        "does not need are deleted after.",
    )
    sync.add_argument("--json", action="store_true", help="print JSON")
    sync.add_argument("mountpoint", metavar="MOUNTPOINT", type=Path)
    sync.set_defaults(run=run_sync)


SUFFIXES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """Bytes from "512M", "20G", "1T" or a plain number."""
    number, suffix = text.strip(), ""
    if number[-1:].upper() in SUFFIXES and not number[-1:].isdigit():
        number, suffix = number[:-1], number[-1:].upper()
    try:
        value = float(number) * SUFFIXES[suffix]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (e.g. 512M, 20G)") from None
    if not 0 <= value < 1 << 62:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (e.g. 512M, 20G)")
    return int(value)


def _ask(mountpoint: Path, body: dict[str, Any]) -> Any:
    return _mounts.request(_mounts.find(mountpoint), {"cmd": "remote", **body}, timeout=86400)


def render(shown: dict[str, Any]) -> str:
    if shown.get("url") is None:
        return "no remote tier"
    chunks = shown["chunks"]
    lines = [
        f"remote:       {shown['url']}",
        f"pending:      {shown['pending_chunks']} chunks, {human_bytes(shown['pending_bytes'])}",
        f"chunks:       {chunks['both']} on both, {chunks['local_only']} local only, "
        f"{chunks['remote_only']} remote only",
        f"generation:   {shown['generation']}",
    ]
    if shown.get("journal_txg") is not None:
        lines.append(f"journal:      up to txg {shown['journal_txg']} on the remote")
    if shown.get("bwlimit"):
        lines.append(f"upload limit: {human_bytes(shown['bwlimit'])}/s")
    stats = shown.get("stats") or {}
    if stats:
        lines.append(
            f"this mount:   {human_bytes(stats['bytes_uploaded'])} up in "
            f"{stats['packs_uploaded']} packs, {human_bytes(stats['bytes_fetched'])} down "
            f"in {stats['gets']} GETs; "
            f"{stats['failed_authentication']} failed authentication, "
            f"{stats['unavailable']} timed out"
        )
    if shown.get("last_error"):
        lines.append(f"last error:   {shown['last_error']}")
    return "\n".join(lines)


async def run_add(args: argparse.Namespace) -> int:
    parse_url(args.url)
    if args.bwlimit == 0:
        raise UsageError("--bwlimit 0 would never upload: give a rate, or leave it out")
    shown = _ask(args.mountpoint, {"op": "add", "url": args.url, "bwlimit": args.bwlimit})
    print_json(shown) if args.json else print(render(shown))
    return 0


async def run_show(args: argparse.Namespace) -> int:
    shown = _ask(args.mountpoint, {"op": "show"})
    print_json(shown) if args.json else print(render(shown))
    return 0


async def run_remove(args: argparse.Namespace) -> int:
    done = _ask(args.mountpoint, {"op": "remove"})
    print_json(done) if args.json else print(f"removed the remote {done['url']}")
    return 0


async def run_cache(args: argparse.Namespace) -> int:
    body = {"op": "cache", "max_size": args.max_size, "min_free": args.min_free}
    shown = _ask(args.mountpoint, body)
    if args.json:
        print_json(shown)
        return 0
    limit = "unbounded" if shown["max_size"] is None else human_bytes(shown["max_size"])
    free = "" if shown["min_free"] is None else f", keep {human_bytes(shown['min_free'])} free"
    print(
        f"local: {human_bytes(shown['local_bytes'])} (at most {limit}{free}); "
        f"only on the remote: {human_bytes(shown['remote_only_bytes'])}; "
        f"devices free: {human_bytes(shown['free_bytes'])}"
    )
    return 0


async def run_sync(args: argparse.Namespace) -> int:
    done = _ask(args.mountpoint, {"op": "sync"})
    if args.json:
        print_json(done)
    else:
        repacked = done["packs_repacked"]
        moved = f", {repacked} mostly dead packs repacked" if repacked else ""
        print(
            f"{done['url']} holds a complete copy at generation {done['generation']} "
            f"(txg {done['txg']}; {done['chunks_uploaded']} chunks uploaded{moved})"
        )
    return 0


async def serve(volume: Volume, request: dict[str, Any]) -> Any:
    """The mount daemon's answer to a remote request."""
    op = request.get("op")
    if op == "add":
        url, rate = request.get("url"), request.get("bwlimit")
        if not isinstance(url, str) or not (rate is None or (type(rate) is int and rate > 0)):
            raise UsageError("a remote add request names a URL and a rate in bytes a second")
        return await volume.remote.add(url, rate)
    if op == "show":
        return volume.remote.show()
    if op == "remove":
        return await volume.remote.remove()
    if op == "sync":
        return await volume.remote.sync()
    if op == "cache":
        sizes = [request.get("max_size"), request.get("min_free")]
        if not all(v is None or (type(v) is int and v >= 0) for v in sizes):
            raise UsageError("a cache request's sizes are byte counts")
        if sizes == [None, None]:
            return volume.remote.cache()
        return await volume.remote.set_cache_limits(*sizes)
    if op in ("pin", "unpin", "hydrate", "dehydrate"):
        paths = request.get("paths")
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise UsageError(f"a {op} request names paths")
        inos = [volume.remote.resolve(p.encode("utf-8", "surrogateescape")) for p in paths]
        if op in ("pin", "unpin"):
            return await volume.remote.pin(inos, op == "pin")
        if op == "hydrate":
            return await volume.remote.hydrate(inos)
        return await volume.remote.dehydrate(inos)
    raise UsageError(f"unknown remote request {op!r}")
