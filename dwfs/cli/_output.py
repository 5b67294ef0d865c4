"""Printing for dwfsctl: JSON, human units, and a progress line on terminals."""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


class ProgressLine:
    """A one-line progress report on stderr, redrawn at most ten times a second."""

    def __init__(self, what: str, unit: str = "stripes") -> None:
        self.what = what
        self.unit = unit
        self.enabled = sys.stderr.isatty()
        self._start = time.monotonic()
        self._last = 0.0

    def __call__(self, count: int, nbytes: int) -> None:
        now = time.monotonic()
        if not self.enabled or now - self._last < 0.1:
            return
        self._last = now
        rate = nbytes / max(now - self._start, 1e-6)
        sys.stderr.write(
            f"\r{self.what}: {count} {self.unit}, {human_bytes(nbytes)} ({human_bytes(rate)}/s)   "
        )
        sys.stderr.flush()

    def __enter__(self) -> ProgressLine:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled and self._last:
            sys.stderr.write("\n")
