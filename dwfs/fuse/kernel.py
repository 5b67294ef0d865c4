"""What both front ends tell the kernel, and how they read what it hands over:
how long it may cache, and the open flags it passes on."""

from __future__ import annotations

import os

ATTR_TIMEOUT = 10.0
"""Seconds the kernel may cache attributes and entries: this mount is their only writer."""


def open_flags(flags: int, writeback: bool = True) -> int:
    """The flags an open hands the vfs. With the writeback cache the kernel
    places appends itself and hands us positioned writes; O_APPEND must not
    move them again (libfuse's passthrough_ll does the same)."""
    return flags & ~os.O_APPEND if writeback else flags
