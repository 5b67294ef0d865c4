"""dwfsctl pin|unpin|hydrate|dehydrate PATH...: where the data of files in a mounted
filesystem with a remote tier is kept. PATHs are anywhere inside one mount; the
mount daemon does the work."""

from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import Any

import trio

from dwfs.cli import _mounts
from dwfs.cli._output import ProgressLine, human_bytes, print_json
from dwfs.errors import UsageError

VERBS = {
    "pin": (
        "keep files local, fetching what is on the remote only",
        "Pin files and directories (recursively; new files in a pinned directory are "
        "pinned too): their data is fetched now and never evicted from the local cache. "
        "The same as setting the xattr user.dwfs.pinned to 1.",
    ),
    "unpin": (
        "let files' data be evicted again",
        "Unpin files and directories (recursively): their data may be evicted from the "
        "local cache again once the remote holds it.",
    ),
    "hydrate": (
        "fetch files' data from the remote now",
        "Fetch every chunk of these files and directories (recursively) that is only on "
        "the remote, so they read at local speed and offline. Eviction may take them "
        "again later unless they are pinned.",
    ),
    "dehydrate": (
        "free local space taken by files the remote holds",
        "Evict the local copies of these files' data (recursively) that the remote holds: "
        "their space comes back as compaction runs. Data not yet uploaded, data a pinned "
        "file shares and data an open file reads stay.",
    ),
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for verb, (short, long) in VERBS.items():
        p = sub.add_parser(verb, help=short, description=long)
        p.add_argument("--json", action="store_true", help="print JSON")
        p.add_argument("paths", metavar="PATH", type=Path, nargs="+")
        p.set_defaults(run=run, verb=verb)


def _one_mount(paths: list[Path]) -> tuple[dict[str, Any], list[str]]:
    found = [_mounts.containing(p) for p in paths]
    mounts = {info["mountpoint"] for info, _ in found}
    if len(mounts) > 1:
        raise UsageError("the paths are in different mounts: name paths of one at a time")
    return found[0][0], [rel for _, rel in found]


async def run(args: argparse.Namespace) -> int:
    info, paths = _one_mount(args.paths)
    body = {"cmd": "remote", "op": args.verb, "paths": paths}
    if args.verb in ("pin", "hydrate") and not args.json:
        done = await _with_progress(args.verb, info, body)
    else:
        done = _mounts.request(info, body, timeout=86400)
    if args.json:
        print_json(done)
        return 0
    print(describe(args.verb, done))
    return 0


def _fetched(info: dict[str, Any]) -> tuple[int, int]:
    stats = _mounts.request(info, {"cmd": "remote", "op": "show"}).get("stats") or {}
    return int(stats.get("chunks_fetched", 0)), int(stats.get("bytes_fetched", 0))


async def _with_progress(verb: str, info: dict[str, Any], body: dict[str, Any]) -> Any:
    """The request's answer, with what the mount fetched meanwhile shown on a
    terminal (polled from the mount's remote statistics)."""
    answer: dict[str, Any] = {}
    with ProgressLine(verb, "chunks") as progress:
        chunks0, bytes0 = _fetched(info) if progress.enabled else (0, 0)

        async def ask(cancel: trio.CancelScope) -> None:
            answer["done"] = await trio.to_thread.run_sync(
                functools.partial(_mounts.request, info, body, timeout=86400)
            )
            cancel.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, nursery.cancel_scope)
            while progress.enabled:
                await trio.sleep(0.2)
                chunks, nbytes = await trio.to_thread.run_sync(_fetched, info)
                progress(chunks - chunks0, nbytes - bytes0)
    return answer["done"]


def describe(verb: str, done: dict[str, Any]) -> str:
    if verb in ("pin", "unpin"):
        line = f"{verb}ned {done.get(verb + 'ned', 0)} files and directories"
        if verb == "pin":
            line += f"; fetched {human_bytes(done['bytes_fetched'])}"
        return line
    if verb == "hydrate":
        return (
            f"fetched {done['chunks_fetched']} chunks ({human_bytes(done['bytes_fetched'])}) "
            f"for {done['files']} files and directories"
        )
    return (
        f"evicted {done['chunks_evicted']} chunks ({human_bytes(done['bytes_freed'])}); "
        f"{done['chunks_kept']} stay (not uploaded yet, shared with a pinned file, or open)"
    )
