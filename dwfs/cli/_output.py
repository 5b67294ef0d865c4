"""Printing for dwfsctl: JSON, human units, and a progress line on terminals."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich import progress
from rich.console import Console


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
    """A progress bar on stderr (rich's), for long jobs on a terminal: nothing
    when stderr is not one. Called with the count of units done and the bytes
    done, and the bytes in all when they are known (a bar, percent and time to
    go; else a pulse)."""

    def __init__(self, what: str, unit: str = "stripes") -> None:
        self.what = what
        self.unit = unit
        self.enabled = sys.stderr.isatty()
        self._bar: progress.Progress | None = None
        self._task: progress.TaskID | None = None

    def __call__(self, count: int, nbytes: int, total: int | None = None) -> None:
        if self._bar is None or self._task is None:
            return
        self._bar.update(self._task, completed=nbytes, total=total, note=f"{count:,} {self.unit}")

    def __enter__(self) -> ProgressLine:
        if self.enabled:
            self._bar = progress.Progress(
                progress.TextColumn("{task.description}"),
                progress.BarColumn(),
                progress.TaskProgressColumn(),
                progress.DownloadColumn(binary_units=True),
                progress.TransferSpeedColumn(),
                progress.TimeRemainingColumn(),
                progress.TextColumn("{task.fields[note]}"),
                console=Console(stderr=True),
            )
            self._bar.start()
            self._task = self._bar.add_task(self.what, total=None, note="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
