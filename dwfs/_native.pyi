from collections.abc import Sequence

def simd_level() -> int: ...
def tune_allocator() -> bool: ...
def force_level(level: int, /) -> int: ...
def gf_matmul(
    matrix: bytes, rows: int, cols: int, inputs: Sequence[bytes | bytearray | memoryview], /
) -> list[bytes]: ...
def cdc_cuts(
    data: bytes | bytearray | memoryview,
    min_size: int,
    avg_size: int,
    max_size: int,
    mask_s: int,
    mask_l: int,
    gear: bytes,
    final: bool,
    /,
) -> list[int]: ...
def join(parts: Sequence[bytes | bytearray | memoryview], /) -> bytes: ...
