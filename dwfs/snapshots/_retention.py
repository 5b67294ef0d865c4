"""The snapshot policy: how often automatic snapshots are taken and which of
them are kept, on restic's `forget --keep-*` rules (sanoid's are the same).

keep-last N keeps the N newest; keep-hourly N keeps, for each of the N newest
hours that have a snapshot, the newest one in that hour; daily, weekly (ISO
weeks), monthly and yearly likewise, all in UTC. A snapshot any rule keeps is
kept. Only automatic snapshots are ever pruned: one taken by hand, or held,
stays whatever the policy says.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
from collections.abc import Callable, Iterable

from dwfs.errors import InvalidArgument

RULES = ("last", "hourly", "daily", "weekly", "monthly", "yearly")
MIN_EVERY = 5
"""Seconds between automatic snapshots at the least: the committer's interval,
which looks at the policy."""
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _utc(ns: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ns // 1_000_000_000, datetime.UTC)


_BUCKETS: dict[str, Callable[[int], object]] = {
    "last": lambda ns: ns,
    "hourly": lambda ns: _utc(ns).strftime("%Y-%m-%d %H"),
    "daily": lambda ns: _utc(ns).date(),
    "weekly": lambda ns: _utc(ns).isocalendar()[:2],
    "monthly": lambda ns: (_utc(ns).year, _utc(ns).month),
    "yearly": lambda ns: _utc(ns).year,
}


@dataclasses.dataclass(frozen=True)
class Policy:
    every: int = 0
    """Seconds between automatic snapshots; 0 takes none."""
    keep: dict[str, int] = dataclasses.field(default_factory=dict)
    """How many to keep by each rule of RULES (missing: 0)."""

    def to_json(self) -> str:
        return json.dumps({"every": self.every, "keep": self.keep}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Policy:
        data = json.loads(text)
        return cls(int(data["every"]), {k: int(v) for k, v in data["keep"].items() if k in RULES})

    def describe(self) -> dict[str, object]:
        return {
            "every": format_every(self.every),
            **{f"keep_{r}": self.keep.get(r, 0) for r in RULES},
        }


def parse_every(text: str) -> int:
    """Seconds in '30s', '15m', '1h', '2d', '1w' (or 'off'/'0': never).

    Raises:
        InvalidArgument: another form, or under MIN_EVERY.
    """
    if text in ("off", "0"):
        return 0
    found = re.fullmatch(r"(\d+)([smhdw])", text)
    if found is None:
        raise InvalidArgument(f"--every {text!r}: give a number and a unit, like 15m, 1h or 1d")
    seconds = int(found[1]) * _UNITS[found[2]]
    if seconds < MIN_EVERY:
        raise InvalidArgument(
            f"--every {text}: automatic snapshots are at most one every {MIN_EVERY} seconds"
        )
    return seconds


def format_every(seconds: int) -> str:
    if not seconds:
        return "off"
    for unit in ("w", "d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def changed(policy: Policy, every: str | None, keep: dict[str, int | None]) -> Policy:
    """The policy with the given settings changed (None leaves one as it is).

    Raises:
        InvalidArgument: a negative count, or automatic snapshots with nothing to keep.
    """
    rules = dict(policy.keep)
    for rule, count in keep.items():
        if count is None:
            continue
        if count < 0:
            raise InvalidArgument(f"--keep-{rule} {count}: a count is 0 or more")
        rules[rule] = count
    new = Policy(policy.every if every is None else parse_every(every), rules)
    if new.every and not any(new.keep.values()):
        raise InvalidArgument(
            "this policy would take snapshots and keep none of them: add --keep-last N "
            "(or another --keep-*)"
        )
    return new


def kept(snapshots: Iterable[tuple[str, int]], policy: Policy) -> set[str]:
    """The names (of (name, created ns) pairs) the policy's rules keep."""
    newest_first = sorted(snapshots, key=lambda s: s[1], reverse=True)
    keep: set[str] = set()
    for rule in RULES:
        wanted = policy.keep.get(rule, 0)
        seen: set[object] = set()
        for name, created in newest_first:
            if len(seen) >= wanted:
                break
            bucket = _BUCKETS[rule](created)
            if bucket not in seen:
                seen.add(bucket)
                keep.add(name)
    return keep
