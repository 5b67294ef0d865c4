"""RAID layouts: which linear code a stripe uses and which device holds each shard.

Every layout is a systematic linear code over GF(2^8): a generator matrix whose
first k rows are the identity (the data shards) and whose remaining rows make the
redundancy. Reed-Solomon layouts use a Cauchy matrix (any k of the k+m shards
rebuild the data); raid1 and raid10 use copies. Pure functions only.
"""

from __future__ import annotations

import dataclasses
import functools
import re

from dwfs._accel import gf
from dwfs.errors import UsageError

MAX_WIDTH = 64
LAYOUT_NAMES = ("raid0", "raid1", "raid10", "raid5", "raidz1", "raid6", "raidz2", "raidz3")


@dataclasses.dataclass(frozen=True, slots=True)
class Layout:
    """A stripe layout over n devices.

    k data shards and width - k redundancy shards per stripe; m is how many lost
    or corrupt devices every stripe survives (width - k for Reed-Solomon, 1 for
    raid10, whose shards are mirrored pairs).
    """

    name: str
    k: int
    m: int
    width: int
    n: int

    @property
    def declustered(self) -> bool:
        return self.width < self.n

    @property
    def mirrored(self) -> bool:
        return self.name == "raid10"

    def describe(self) -> str:
        spread = f" declustered over {self.n} devices" if self.declustered else ""
        return f"{self.name} (k={self.k}, m={self.m}){spread}"

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "k": self.k, "m": self.m, "width": self.width, "n": self.n}

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Layout:
        layout = parse_layout(str(obj["name"]), int(str(obj["n"])))
        if (layout.k, layout.m, layout.width) != (obj["k"], obj["m"], obj["width"]):
            raise UsageError(f"layout {obj['name']} does not match its recorded shape")
        return layout


def default_layout_name(n: int) -> str:
    if n >= 3:
        return "raidz1"
    return "raid1" if n == 2 else "raid0"


def _need(name: str, n: int, minimum: int) -> None:
    if n < minimum:
        raise UsageError(
            f"layout {name} needs at least {minimum} devices, {n} given: "
            "add devices or choose another --raid"
        )


def parse_layout(spec: str, n: int) -> Layout:
    """The layout that `spec` (raid5, 4+2, ...) names on n devices.

    Raises:
        UsageError: the name is unknown or does not fit n devices.
    """
    name = spec.strip().lower()
    if n < 1:
        raise UsageError("a pool needs at least one device")
    if n > MAX_WIDTH:
        raise UsageError(f"at most {MAX_WIDTH} devices per pool, {n} given")
    match = re.fullmatch(r"(\d+)\+(\d+)", name)
    if match:
        k, m = int(match.group(1)), int(match.group(2))
        if k < 1:
            raise UsageError(f"layout {spec}: k must be at least 1")
        _need(name, n, k + m)
        return Layout(f"{k}+{m}", k, m, k + m, n)
    if name == "raid0":
        return Layout(name, n, 0, n, n)
    if name == "raid1":
        _need(name, n, 2)
        return Layout(name, 1, n - 1, n, n)
    if name == "raid10":
        _need(name, n, 4)
        if n % 2:
            raise UsageError(f"layout raid10 needs an even number of devices, {n} given")
        return Layout(name, n // 2, 1, n, n)
    parity = {"raid5": 1, "raidz1": 1, "raid6": 2, "raidz2": 2, "raidz3": 3}.get(name)
    if parity is None:
        raise UsageError(
            f"unknown layout {spec!r}: use one of {', '.join(LAYOUT_NAMES)} or K+M such as 4+2"
        )
    _need(name, n, parity + 2)
    return Layout(name, n - parity, parity, n, n)


@functools.lru_cache(maxsize=128)
def generator(layout: Layout) -> list[list[int]]:
    """The width x k generator matrix; row i makes shard i from the k data shards."""
    k, extra = layout.k, layout.width - layout.k
    identity = [[1 if r == c else 0 for c in range(k)] for r in range(k)]
    if layout.mirrored:
        return identity + [row[:] for row in identity]
    if extra == 0:
        return identity
    if k == 1 or extra == 1:
        return identity + [[1] * k for _ in range(extra)]
    return identity + gf.cauchy(extra, k)


def device_of(layout: Layout, seq: int, shard: int) -> int:
    """The device index holding shard `shard` of stripe `seq`.

    Stripes rotate by one device each, so parity moves across devices (raid5
    style) and, when width < n, stripes spread over every device (declustered).
    """
    return (seq + shard) % layout.n


def shards_on(layout: Layout, seq: int) -> dict[int, int]:
    """device index -> shard index for the devices stripe `seq` uses."""
    return {device_of(layout, seq, i): i for i in range(layout.width)}
