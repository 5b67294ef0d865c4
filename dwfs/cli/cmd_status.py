"""dwfsctl status: a pool's health, layout, devices and capacity."""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path
from typing import Any

from dwfs import _accel
from dwfs.cli import _mounts, _secrets
from dwfs.cli._output import human_bytes, print_json


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "status",
        help="show a pool's health, devices and capacity",
        description="Show a pool's state (online, degraded, faulted), its layout, each "
        "device's state and error counters, and its capacity.",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    _secrets.add_unlock_options(p)
    p.add_argument(
        "device",
        metavar="DEVICE|MOUNTPOINT",
        type=Path,
        help="any device of the pool, or where it is mounted",
    )
    p.set_defaults(run=run)


_ADVICE = {
    "degraded": "One or more devices are missing or faulted; the pool works without "
    "redundancy to spare.\naction: bring the devices back, or `dwfsctl replace`.",
    "faulted": "More devices are missing or faulted than the layout can rebuild from; "
    "data may be unreadable.\naction: bring the missing devices back.",
}


def render(status: dict[str, Any]) -> str:
    """Text in the shape of `zpool status`."""
    layout = status["layout"]
    lines = [
        f"  pool: {status['pool']}",
        f" state: {status['state'].upper()}",
    ]
    if status["state"] in _ADVICE:
        first, action = _ADVICE[status["state"]].split("\naction: ")
        lines += [f"status: {first}", f"action: {action}"]
    lines += [
        f"layout: {layout['name']} (k={layout['k']}, m={layout['m']}), "
        f"{status['cipher']}, compression {status['compression']}",
        "config:",
        "",
        f"\t{'NAME':<44} {'STATE':<8} {'READ':>5} {'CKSUM':>6} {'WRITE':>6}",
    ]
    for d in status["devices"]:
        note = f"  ({d['reason']})" if d["reason"] else ""
        lines.append(
            f"\t  {d['path']:<42} {d['state'].upper():<8} {d['read_errors']:>5} "
            f"{d['checksum_errors']:>6} {d['write_errors']:>6}{note}"
        )
    cap = status["capacity"]
    pct = 100 * cap["used"] / cap["size"] if cap["size"] else 0
    errors = sum(d["checksum_errors"] + d["read_errors"] for d in status["devices"])
    lines += [
        "",
        f"capacity: {human_bytes(cap['used'])} used of {human_bytes(cap['size'])} ({pct:.0f}%), "
        f"{human_bytes(cap['free'])} free, {status['chunks']} chunks",
        f"  errors: {'No known data errors' if not errors else f'{errors} shard errors seen'}",
        f" kernels: {status['kernels']}",
    ]
    if status.get("scan"):
        lines.insert(-2, f"    scan: {scan_line(status['scan'])}")
    if status.get("resilver"):
        done = status["resilver"]
        share = 100 * done["bytes_done"] / done["bytes"] if done["bytes"] else 0
        lines.insert(
            -2,
            f"    scan: resilver running: {done['stripes_done']} stripes, "
            f"{human_bytes(done['bytes_done'])} of {human_bytes(done['bytes'])} per device "
            f"({share:.0f}%)",
        )
    if "mount" in status:
        mount = status["mount"]
        front = mount.get("front_end") or {}
        answered = f", {front['reads_in_c']} reads answered in C" if "reads_in_c" in front else ""
        lines.append(
            f"   mount: {mount['mountpoint']} (pid {mount['pid']}, "
            f"{front.get('name', 'unknown')} front end{answered})"
        )
    remote = status.get("remote") or {}
    if remote.get("url"):
        stats = remote.get("stats", {})
        lines.append(
            f"  remote: {remote['url']}: {remote['pending_chunks']} chunks to upload, "
            f"{stats.get('failed_authentication', 0)} failed authentication, "
            f"{stats.get('unavailable', 0)} timed out"
            + (f"; {remote['last_error']}" if remote.get("last_error") else "")
        )
    return "\n".join(lines)


def scan_line(job: dict[str, Any]) -> str:
    """The last scrub, in the shape of zpool status's `scan:` line."""
    found = (
        f"{job['errors_found']} bad shards found, {job['errors_repaired']} repaired, "
        f"{job['unrepairable']} stripes unrepairable"
    )
    began = _when(job["started"])
    if job["state"] == "finished":
        return (
            f"scrub finished {_when(job['ended'])}: {job['stripes_checked']} stripes "
            f"({human_bytes(job['bytes_checked'])}) in {_duration(job['ended'] - job['started'])}; "
            f"{found}"
        )
    if job["state"] == "running":
        eta = "" if job["eta"] is None else f", {_duration(job['eta'])} to go"
        return (
            f"scrub running since {began}: {job['percent']}% done "
            f"({human_bytes(job['examined'])} of {human_bytes(job['to_examine'])} at "
            f"{human_bytes(job['speed'])}/s{eta}); {found}"
        )
    if job["state"] == "paused":
        resume = "`dwfsctl scrub` resumes it"
        return f"scrub paused at {job['percent']}% (began {began}; {resume}); {found}"
    why = f" by an error: {job['error']}" if job.get("error") else ""
    return f"scrub stopped{why} at {job['percent']}% {_when(job['ended'])}; {found}"


def _when(stamp: float) -> str:
    return time.strftime("on %a %b %d %H:%M:%S %Y", time.localtime(stamp))


def _duration(seconds: float) -> str:
    whole = math.ceil(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


async def run(args: argparse.Namespace) -> int:
    if os.path.ismount(args.device):
        status = _mounts.request(_mounts.find(args.device), {"cmd": "status"})
    else:
        async with _secrets.unlocked_pool(args) as pool:
            status = pool.status()
    status["kernels"] = _accel.implementation()
    if args.json:
        print_json(status)
    else:
        print(render(status))
    return 0
