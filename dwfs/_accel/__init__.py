"""Native kernels or their pure-Python twins, chosen once at import.

This package is the only importer of the dwfs._native extension. Callers use the
functions below and never learn which implementation ran, except through
implementation(), which `dwfsctl status` reports.
"""

from __future__ import annotations

import sys
from types import ModuleType

from dwfs._accel import _gf as gf
from dwfs._accel import _pure
from dwfs.types import Buffer

_LEVELS = {0: "portable C", 1: "SSSE3", 2: "AVX2"}


_native: ModuleType | None
try:
    from dwfs._native import cdc_cuts as cdc_cuts
    from dwfs._native import gf_matmul as gf_matmul
    from dwfs._native import join as join
    from dwfs._native import read_direct_many as read_direct_many
    from dwfs._native import uninitialized as uninitialized
    from dwfs._native import write_flush as write_flush

    _native = sys.modules["dwfs._native"]
except ImportError:  # the extension was not built: stay correct, only slower
    _native = None
    gf_matmul = _pure.gf_matmul
    cdc_cuts = _pure.cdc_cuts
    join = _pure.join
    read_direct_many = _pure.read_direct_many
    uninitialized = _pure.uninitialized
    write_flush = _pure.write_flush


def implementation() -> str:
    """Which kernels run: 'native (AVX2)', 'native (portable C)', or 'pure Python'."""
    if _native is None:
        return "pure Python"
    return f"native ({_LEVELS[_native.simd_level()]})"


def tune_allocator() -> bool:
    """Have glibc keep large freed buffers for reuse; whether it took effect.

    A process that moves stripes (dwfsctl, the mount daemon, benchmarks) calls
    this once at start: without it every stripe-sized buffer is a fresh mmap
    whose pages fault on first touch, which costs more than the coding.
    """
    return _native.tune_allocator() if _native is not None else False


def start_writeback(fd: int) -> int:
    """Start writing a file's dirty pages to its disk without waiting (Linux's
    sync_file_range): 0, or the errno of a refusal, which only means the
    kernel's own writeback will write them. Without the native extension it
    does nothing: a hint has no pure twin to fall back on."""
    return _native.start_writeback(fd) if _native is not None else 0


def force_simd_level(level: int) -> str:
    """Cap the native vector path (0 portable, 1 SSSE3, 2 AVX2); for tests and benchmarks."""
    if _native is not None:
        _native.force_level(level)
    return implementation()


__all__ = [
    "Buffer",
    "cdc_cuts",
    "force_simd_level",
    "gf",
    "gf_matmul",
    "implementation",
    "read_direct_many",
    "start_writeback",
    "tune_allocator",
    "uninitialized",
    "write_flush",
]
